"""``flowcraft run --store FILE``: a durable run in this process, kept in a SQLite file.

Every node's commit is stored, so a run whose process was killed goes on where it
stopped: running the same command again with ``--run-id`` re-attaches to the run,
recovers it when its process died, and prints the outcome as ``run`` does. The run
record keeps the ``--registry`` reference (and the builder options), so re-running needs
no ``--registry``.

Only the run named by ``--run-id`` is taken over: other orphaned runs in the file may
need another registry, and are left to whoever opens the store with theirs.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
import time
from typing import Any

from ..budget import Budget
from ..durable import DurableExecutor, SqliteRunStore
from ..engine.errors import RunConflictError, StoreError
from ..engine.jobs import STOPPED_STATES
from ..errors import GraphError
from ..waits import InvalidResumeValue, UnknownWaitError, WaitAlreadyResolved
from .errors import EXIT_TIMEOUT, EXIT_USAGE, CliError
from .follow import Outcome, follow_run
from .loading import BuilderOptions, StoreTarget, load_builder, parse_context, parse_params, read_graph, user_node_ids
from .output import progress_display
from .remote import finish_run

__all__ = ["REGISTRY_REQUIRED", "run_durable"]

REGISTRY_REQUIRED = (
    "the following arguments are required: --registry (a run kept with --store remembers it: "
    "`flowcraft run GRAPH --store FILE --run-id ID` needs none)"
)


class _OneRunStore(SqliteRunStore):
    """A store whose orphaned runs, for this command, are only the run it was asked for."""

    def __init__(self, path: str, run_id: str | None) -> None:
        super().__init__(path)
        self.only = run_id

    async def orphans(self, limit: int = 1000) -> list[tuple[str, str, float]]:
        if self.only is None:
            return []
        return [orphan for orphan in await super().orphans(limit) if orphan[0] == self.only]


def run_durable(
    path: str,
    registry: str | None,
    options: BuilderOptions,
    *,
    store: StoreTarget,
    run_id: str | None,
    context: str | None,
    params: list[str] | None,
    progress: str,
    timeout: float | None,
    budget: Budget | None = None,
) -> int:
    """Run the graph file durably in this process (or re-attach to run ``run_id``); print
    the outcome as JSON like ``run``."""
    if registry is None and run_id is None:
        raise CliError(REGISTRY_REQUIRED)
    graph = read_graph(path)
    initial = parse_context(context)
    run_params = parse_params(params)
    stream = sys.stderr
    graph_path = os.path.abspath(path)
    again = shlex.join(["flowcraft", "run", path, "--store", store.path, "--run-id"])

    async def main() -> tuple[Outcome, dict[str, Any], str, float]:
        sqlite = _OneRunStore(store.path, run_id)
        try:
            existing = await sqlite.meta(run_id) if run_id is not None else {}
        except BaseException:
            await sqlite.aclose()
            raise
        extra: dict[str, Any] = json.loads(existing.get("extra") or "{}")
        ref = registry or extra.get("registry")
        if ref is None:
            await sqlite.aclose()
            if existing:
                raise CliError(
                    f"run {run_id} in {store.path!r} was not started by `flowcraft run` (it names no registry): "
                    "give --registry"
                )
            raise CliError(REGISTRY_REQUIRED)
        chosen = options if registry is not None else BuilderOptions.from_dict(extra.get("builder") or {})
        try:
            builder = load_builder(ref, chosen)
            try:
                result = builder.build(graph)
                blueprint = builder.build_blueprint(graph).blueprint
            except GraphError as error:
                raise CliError(f"graph file {path!r} is invalid: {error} (see `flowcraft validate {path}`)") from None
        except BaseException:
            await sqlite.aclose()
            raise
        ended = existing.get("status") in STOPPED_STATES  # nothing to show: print the outcome
        display = None if ended else progress_display(progress, stream, user_node_ids(result))
        executor = DurableExecutor(sqlite, registry=builder.registry, dependencies=builder.dependencies)
        try:
            await executor.__aenter__()
            try:
                handle = await executor.start(
                    blueprint, initial, params=run_params, run_id=run_id, events=display is not None, budget=budget
                )
            except RunConflictError as error:
                raise CliError(f"{error} (in {store.path!r})", EXIT_USAGE) from None
            if not existing or (registry is not None and registry != extra.get("registry")):
                record = {"registry": ref, "builder": chosen.to_dict(), "graph": graph_path}
                await sqlite.set_extra(handle.run_id, record)
            rerun = f"{again} {shlex.quote(handle.run_id)}"
            if progress != "none" or existing:
                stream.write(_announce(handle.run_id, store.path, existing, executor.taken_over, rerun) + "\n")
                if existing and (context is not None or params):
                    stream.write("(--context and --param start a new run: ignored for this existing run)\n")
                stream.flush()
            started = time.monotonic()
            outcome = await follow_run(
                handle, display, timeout=timeout, stream=stream,
                on_stop=f"\nstopped; run {handle.run_id} is kept in {store.path}: `{rerun}` goes on from its last "
                "commit\n",
            )  # fmt: skip
            elapsed = time.monotonic() - started
            if progress != "none" and not outcome.timed_out:
                stream.write(f"run {handle.run_id} ended after {elapsed:.2f}s\n")
            return outcome, await handle.context(), handle.run_id, elapsed
        finally:
            # nodes still running (the run goes on, or was cancelled) are not waited for:
            # the run's next process runs them again from prep
            await executor.aclose(force=True)

    try:
        outcome, final, started_id, elapsed = asyncio.run(main())
    except StoreError as error:
        raise CliError(f"--store: {error}", EXIT_USAGE) from None
    if outcome.timed_out:
        assert timeout is not None
        raise CliError(
            f"run {started_id} did not end within {timeout:g}s ({elapsed:.1f}s waited); it is kept in {store.path}: "
            f"`{again} {shlex.quote(started_id)}` goes on from its last commit",
            EXIT_TIMEOUT,
        )
    return finish_run(outcome, final, started_id)


def _announce(run_id: str, store: str, existing: dict[str, str], taken_over: list[str], rerun: str) -> str:
    if not existing:
        return f"run {run_id} started in {store} (if it is interrupted, `{rerun}` finishes it)"
    state = existing.get("status", "?")
    if run_id in taken_over:
        return f"run {run_id} found in {store}: its process had stopped; going on from its last commit"
    if state in STOPPED_STATES:
        return f"run {run_id} found in {store}: it already ended ({state})"
    return f"run {run_id} found in {store}: running in another process ({existing.get('owner', '?')}); waiting for it"


def resume_durable(
    store: StoreTarget,
    run_id: str,
    wait_id: str,
    *,
    value: str | None,
    action: str | None,
    idempotency_key: str | None,
    registry: str | None,
    progress: str,
    timeout: float | None,
) -> int:
    """Resume a wait of a durable run and run the run on in this process; print the outcome."""
    if not os.path.isfile(store.path):
        raise CliError(f"--store {store.path!r} does not exist (give the file `flowcraft run --store` wrote)")
    try:
        resume_value = json.loads(value) if value is not None else None
    except json.JSONDecodeError as error:
        raise CliError(f"--value is not JSON ({error}): quote a string as '\"text\"'") from None
    stream = sys.stderr

    async def main() -> tuple[Outcome, dict[str, Any]]:
        sqlite = _OneRunStore(store.path, run_id)
        try:
            meta = await sqlite.meta(run_id)
            if not meta:
                raise CliError(f"run {run_id!r} does not exist in {store.path!r}", EXIT_USAGE)
            extra: dict[str, Any] = json.loads(meta.get("extra") or "{}")
            ref = registry or extra.get("registry")
            builder = load_builder(ref, BuilderOptions.from_dict(extra.get("builder") or {})) if ref else None
        except BaseException:
            await sqlite.aclose()
            raise
        executor = DurableExecutor(
            sqlite,
            registry=builder.registry if builder is not None else None,
            dependencies=builder.dependencies if builder is not None else None,
        )
        try:
            await executor.__aenter__()
            try:
                handle = await executor.resume(
                    run_id, wait_id, resume_value, action=action, idempotency_key=idempotency_key
                )
            except (UnknownWaitError, InvalidResumeValue, WaitAlreadyResolved) as error:
                raise CliError(str(error), EXIT_USAGE) from None
            if progress != "none":
                stream.write(f"run {run_id}: wait {wait_id} resumed; running on\n")
            outcome = await follow_run(handle, None, timeout=timeout, stream=stream)
            return outcome, await handle.context()
        finally:
            await executor.aclose(force=True)

    try:
        outcome, final = asyncio.run(main())
    except StoreError as error:
        raise CliError(f"--store: {error}", EXIT_USAGE) from None
    if outcome.timed_out:
        raise CliError(f"run {run_id} did not end within {timeout}s; it is kept in {store.path}", EXIT_TIMEOUT)
    return finish_run(outcome, final, run_id)
