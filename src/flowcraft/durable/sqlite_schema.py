"""The SQLite file of [`SqliteRunStore`][flowcraft.durable.SqliteRunStore]: opening it, checking
that it is ours and of a version we read, and creating the tables.

The file says what it is in ``PRAGMA application_id`` (``FLOWCRAFT_APP_ID``) and which
schema it holds in ``PRAGMA user_version``. A file of another application, a corrupted
file, or one written by a newer Flowcraft is refused with [`StoreError`][flowcraft.durable.sqlite_schema.StoreError].
"""

from __future__ import annotations

import os
import sqlite3
import time

from ..engine.errors import StoreError

__all__ = ["FLOWCRAFT_APP_ID", "SCHEMA_VERSION", "open_database"]

FLOWCRAFT_APP_ID = 0x46_4C_43_52  # "FLCR"
SCHEMA_VERSION = 2
"""The schema this Flowcraft writes. 2: a node that is not a join keeps no ``visits`` row
until its second visit (its first visit's job row is the record), and ``jobs`` has no
partial index of the unfinished jobs (``jobs_pending``: SQLite's planner never chose it
over the primary key's ``run_id`` prefix, and keeping it cost a page write per commit).
A file of schema 1 is upgraded when opened (its rows are valid as they are; the index is
dropped); a Flowcraft that reads only schema 1 refuses a file of schema 2."""

_TABLES = """
CREATE TABLE graphs (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    used_at REAL NOT NULL
);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    graph TEXT NOT NULL,
    status TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    ended_at REAL,
    last_action TEXT,
    error_node TEXT, error_phase TEXT, error_type TEXT, error_message TEXT,
    cancel_reason TEXT,
    events INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    budget TEXT,
    usage TEXT,
    details TEXT,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_by_status ON runs (status, updated_at);
CREATE TABLE context (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE jobs (
    run_id TEXT NOT NULL, job_id TEXT NOT NULL, node_id TEXT NOT NULL,
    action TEXT,
    done TEXT,
    parked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, job_id)
) WITHOUT ROWID;
CREATE TABLE visits (
    run_id TEXT NOT NULL, node_id TEXT NOT NULL,
    visits INTEGER NOT NULL DEFAULT 0,
    open INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, node_id)
) WITHOUT ROWID;
CREATE TABLE arrivals (
    run_id TEXT NOT NULL, node_id TEXT NOT NULL, visit INTEGER NOT NULL, source TEXT NOT NULL,
    PRIMARY KEY (run_id, node_id, visit, source)
) WITHOUT ROWID;
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX events_by_run ON events (run_id, id);
CREATE TABLE charges (
    run_id TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL,
    PRIMARY KEY (run_id, key, kind)
) WITHOUT ROWID;
CREATE TABLE waits (
    run_id TEXT NOT NULL, wait_id TEXT NOT NULL, job_id TEXT NOT NULL, node_id TEXT NOT NULL,
    kind TEXT NOT NULL, request TEXT NOT NULL, actions TEXT NOT NULL, fire_at REAL, on_timeout TEXT,
    state TEXT NOT NULL, value TEXT, action TEXT, resolve_key TEXT,
    created_at REAL NOT NULL, resolved_at REAL,
    PRIMARY KEY (run_id, wait_id)
) WITHOUT ROWID;
CREATE INDEX waits_due ON waits (fire_at) WHERE state = 'open' AND fire_at IS NOT NULL;
CREATE TABLE memos (
    run_id TEXT NOT NULL, job_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run_id, job_id, key)
) WITHOUT ROWID;
"""

RUN_TABLES = ("context", "jobs", "visits", "arrivals", "events", "memos", "charges", "waits")
"""Tables with rows per run (removed with the run)."""


def open_database(path: str, *, synchronous: str, busy_timeout: float) -> sqlite3.Connection:
    """Open (creating if needed) the store file at ``path``, in WAL mode.

    Raises:
        StoreError: the file is not a SQLite database, belongs to another application,
            was written by a newer schema, or cannot be created (names the file).
    """
    if path != ":memory:":
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise StoreError(f"Cannot create the run store {path!r}: the folder {folder!r} does not exist", path=path)
    try:
        connection = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as error:
        raise StoreError(f"Cannot open the run store {path!r}: {error}", path=path) from error
    try:
        _prepare(connection, path, synchronous, busy_timeout)
    except BaseException:
        connection.close()
        raise
    return connection


def _prepare(connection: sqlite3.Connection, path: str, synchronous: str, busy_timeout: float) -> None:
    try:
        connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        app_id, version = _identity(connection)
        if app_id not in (0, FLOWCRAFT_APP_ID) or (app_id == 0 and version != 0):
            raise StoreError(
                f"{path!r} is a SQLite database of another application (application_id {app_id:#x}); "
                "give the run store a file of its own",
                path=path,
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The run store {path!r} was written by a newer Flowcraft (schema {version}, this one reads "
                f"up to {SCHEMA_VERSION}); upgrade flowcraft-py to use it",
                path=path,
            )
        _use_wal(connection, path, busy_timeout)
        connection.execute(f"PRAGMA synchronous = {synchronous}")
        if version == 0:
            _create(connection, path)
        elif version < SCHEMA_VERSION:
            _upgrade(connection)
    except sqlite3.DatabaseError as error:
        message = str(error)
        if "file is not a database" in message or "malformed" in message:
            raise StoreError(
                f"{path!r} is not a Flowcraft run store (not a SQLite database, or corrupted: {message})", path=path
            ) from error
        if "readonly" in message or "unable to open" in message:
            raise StoreError(f"Cannot write the run store {path!r}: {message}", path=path) from error
        raise StoreError(f"Cannot open the run store {path!r}: {message}", path=path) from error


def _use_wal(connection: sqlite3.Connection, path: str, busy_timeout: float) -> None:
    """Put the file in WAL mode, waiting up to ``busy_timeout`` seconds for another
    connection's lock.

    SQLite does not call the busy handler for this switch: while another process holds a
    write lock on a file not yet in WAL mode (it is creating the tables of a new store),
    the pragma fails at once with "database is locked", whatever ``busy_timeout`` says. So
    it is retried here, as the busy handler would.
    """
    deadline = time.monotonic() + busy_timeout
    pause = 0.001
    while True:
        try:
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
        else:
            if mode in ("wal", "memory"):  # ("memory": an in-memory database keeps its own)
                return
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"Cannot put the run store {path!r} in WAL mode (it stayed in {mode!r} mode for "
                    f"{busy_timeout} s; another process keeps it locked, or the file system lacks shared memory)",
                    path=path,
                )
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _identity(connection: sqlite3.Connection) -> tuple[int, int]:
    """The file's application id and schema version, read in one statement (one snapshot)."""
    row = connection.execute("SELECT * FROM pragma_application_id(), pragma_user_version()").fetchone()
    return int(row[0]), int(row[1])


def _create(connection: sqlite3.Connection, path: str) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        _, version = _identity(connection)  # another process may have created it meanwhile
        if version == 0:
            tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise StoreError(
                    f"{path!r} is a SQLite database with tables of another application; "
                    "give the run store a file of its own",
                    path=path,
                )
            for statement in _TABLES.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(f"PRAGMA application_id = {FLOWCRAFT_APP_ID}")
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _upgrade(connection: sqlite3.Connection) -> None:
    """Bring a file of an older schema to ``SCHEMA_VERSION`` (1 → 2 changes no row, drops
    an index)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        _, version = _identity(connection)  # another process may have upgraded it meanwhile
        if version < SCHEMA_VERSION:
            connection.execute("DROP INDEX IF EXISTS jobs_pending")
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
