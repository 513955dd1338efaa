"""Bad stores and bad runs give specific errors and leave nothing half-written: a file
that is not SQLite, another application's database, a store of a newer schema, a
folder that cannot be written, a context value that cannot be stored; and retention
removes finished runs only."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from flowcraft.durable import DurableExecutor, SqliteRunStore, StoreError
from flowcraft.durable.sqlite_schema import SCHEMA_VERSION
from flowcraft.engine.errors import CodecError


def open_store(path: str) -> None:
    async def main() -> None:
        async with DurableExecutor(path):
            pass

    asyncio.run(main())


def test_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match=r"notes\.db' is not a Flowcraft run store \(not a SQLite database"):
        open_store(str(path))
    assert path.read_text().startswith("these are my notes")  # untouched


def test_another_applications_database(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    with pytest.raises(StoreError, match=r"app\.db' is a SQLite database with tables of another application"):
        open_store(str(path))
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA application_id = 1234")
    with pytest.raises(StoreError, match=r"app\.db' is a SQLite database of another application \(application_id"):
        open_store(str(path))


def test_a_store_of_a_newer_schema(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.db")
    open_store(path)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=rf"written by a newer Flowcraft \(schema {SCHEMA_VERSION + 1}, this one"):
        open_store(path)


def test_a_folder_that_cannot_be_written() -> None:
    # /proc refuses new files even to root (a chmod'ed folder would not stop root in CI)
    with pytest.raises(StoreError, match=r"Cannot (open|write) the run store '/proc/runs\.db'"):
        open_store("/proc/runs.db")


def test_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"the folder '.*nowhere' does not exist"):
        open_store(str(tmp_path / "nowhere" / "runs.db"))


def test_a_context_value_that_cannot_be_stored_leaves_no_run(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.db")

    async def main() -> list[object]:
        async with DurableExecutor(path) as executor:
            with pytest.raises(CodecError, match=r"'lock'.*lock"):
                await executor.start("durable_nodes:make_small", {"ok": 1, "lock": asyncio.Lock()}, run_id="x")
            return list(await executor.runs())

    assert asyncio.run(main()) == []


def test_retention_removes_finished_runs_only(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.db")

    async def main() -> tuple[int, list[str], int]:
        store = SqliteRunStore(path, retention=3600)
        async with DurableExecutor(store) as executor:
            handle = await executor.start("durable_nodes:make_small", run_id="done")
            await handle.result(timeout=10)
            kept_now = await store.cleanup()
        # a run that is still active (its process gone) is never removed
        with sqlite3.connect(path) as db:
            db.execute("INSERT INTO runs (run_id, graph, status, params, created_at, updated_at) "
                       "VALUES ('active', 'g', 'running', '{}', 0, 0)")  # fmt: skip
        store = SqliteRunStore(path, retention=3600)
        removed = await store.cleanup(now=10**10)
        left = [run.run_id for run in await store.runs()]
        with sqlite3.connect(path) as db:
            leftovers = sum(db.execute(f"SELECT count(*) FROM {t} WHERE run_id = 'done'").fetchone()[0]
                            for t in ("context", "jobs", "visits", "events", "memos"))  # fmt: skip
        await store.aclose()
        return kept_now, left, removed + 100 * leftovers

    kept_now, left, removed = asyncio.run(main())
    assert kept_now == 0
    assert left == ["active"]
    assert removed == 1


def test_store_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"synchronous must be 'NORMAL' or 'FULL', got 'SOMETIMES'"):
        SqliteRunStore("x.db", synchronous="SOMETIMES")
    with pytest.raises(ValueError, match=r"retention must be > 0 seconds, got 0"):
        SqliteRunStore("x.db", retention=0)
    with pytest.raises(ValueError, match=r"lease_ttl must be > 0 seconds"):
        DurableExecutor("x.db", lease_ttl=0)
