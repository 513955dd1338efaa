"""How SqliteRunStore numbers the visits of a node (the job ids ``run:node:visit``): each
visit of a node gets the next number, in loops, next to node ids that share a prefix,
and in a store file of schema 1 (which kept a counter row for every visited node)."""

from __future__ import annotations

import asyncio
import sqlite3

from flowcraft.durable import SqliteRunStore
from flowcraft.durable.sqlite_schema import SCHEMA_VERSION
from flowcraft.engine.jobs import Arrival, Commit, Job, NewRun

GRAPH = '{"factory": "tests:nothing"}'


async def created(path: str) -> SqliteRunStore:
    store = SqliteRunStore(path)
    assert await store.create(NewRun("r", "g", GRAPH, "{}", {}, Job("r:a:1", "r", "a", "g")))
    return store


async def step(store: SqliteRunStore, job: str, node: str, *targets: str) -> tuple[tuple[str, str], ...]:
    """Commit ``job`` (of ``node``) handing control to ``targets``; the successors decided on."""
    commit = Commit(job, node, '"default"', {}, [], [Arrival(target, 1) for target in targets], {})
    completion = await store.commit("r", commit)
    assert completion.outcome == "ok", completion
    return completion.successors


def test_each_visit_of_a_node_gets_the_next_number(db_path: str) -> None:
    async def main() -> list[tuple[tuple[str, str], ...]]:
        store = await created(db_path)
        try:
            return [
                await step(store, "r:a:1", "a", "b", "b:1"),  # "b:1" is another node
                await step(store, "r:b:1:1", "b:1", "c"),
                await step(store, "r:b:1", "b", "a"),  # the start node again
                await step(store, "r:a:2", "a", "b"),
                await step(store, "r:b:2", "b", "b"),  # a node handing control to itself
                await step(store, "r:b:3", "b", "a", "c"),
                await step(store, "r:c:1", "c"),
            ]
        finally:
            await store.aclose()

    assert asyncio.run(main()) == [
        (("b", "r:b:1"), ("b:1", "r:b:1:1")),
        (("c", "r:c:1"),),
        (("a", "r:a:2"),),
        (("b", "r:b:2"),),
        (("b", "r:b:3"),),
        (("a", "r:a:3"), ("c", "r:c:2")),
        (),
    ]


def test_a_redelivered_commit_decides_the_same_successors(db_path: str) -> None:
    async def main() -> tuple[object, object, list[bool]]:
        store = await created(db_path)
        try:
            await step(store, "r:a:1", "a", "b")
            await step(store, "r:b:1", "b", "a")
            first = await step(store, "r:a:2", "a", "b", "c")
            again = await store.commit("r", Commit("r:a:2", "a", '"default"', {}, [], [Arrival("b", 1)], {}))
            return first, again, await store.still_pending("r", ["r:b:2", "r:c:1"])
        finally:
            await store.aclose()

    first, again, pending = asyncio.run(main())
    assert first == (("b", "r:b:2"), ("c", "r:c:1"))
    assert again.outcome == "dup" and again.successors == first  # type: ignore[attr-defined]
    assert pending == [True, True]


def test_a_schema_1_file_is_upgraded_and_its_runs_go_on(db_path: str) -> None:
    async def before() -> None:
        store = await created(db_path)
        try:
            await step(store, "r:a:1", "a", "b")
        finally:
            await store.aclose()

    asyncio.run(before())
    with sqlite3.connect(db_path) as db:  # as schema 1 left it: a counter row for every visited node, an index
        db.execute("INSERT OR IGNORE INTO visits (run_id, node_id, visits) VALUES ('r', 'b', 1)")
        db.execute("CREATE INDEX jobs_pending ON jobs (run_id, job_id) WHERE done IS NULL")
        db.execute("PRAGMA user_version = 1")
    db.close()

    async def after() -> list[tuple[tuple[str, str], ...]]:
        store = SqliteRunStore(db_path)
        try:
            return [
                await step(store, "r:b:1", "b", "a"),
                await step(store, "r:a:2", "a", "b"),
                await step(store, "r:b:2", "b", "c"),
            ]
        finally:
            await store.aclose()

    assert asyncio.run(after()) == [(("a", "r:a:2"),), (("b", "r:b:2"),), (("c", "r:c:1"),)]
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        assert (
            db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'jobs_pending'").fetchall() == []
        )
    db.close()


def test_a_commit_on_an_ended_run_changes_nothing(db_path: str) -> None:
    async def main() -> tuple[str, dict[str, str], list[bool]]:
        store = await created(db_path)
        try:
            await step(store, "r:a:1", "a", "b")
            assert await store.cancel("r", "stop") == "cancelled"
            commit = Commit("r:b:1", "b", '"default"', {"k": "1"}, [], [Arrival("c", 1)], {})
            completion = await store.commit("r", commit)
            return completion.outcome, await store.context("r"), await store.still_pending("r", ["r:b:1", "r:c:1"])
        finally:
            await store.aclose()

    outcome, context, pending = asyncio.run(main())
    assert outcome == "skip" and context == {} and pending == [True, False]
