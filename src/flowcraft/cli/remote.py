"""Runs kept outside the command's process: ``run --executor redis`` (on Redis workers),
and ``status``, ``show``, ``runs``, ``cancel`` on Redis (``--redis``) or on a run store
file (``--store``, written by ``run --store``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from ..actions import action_label
from ..durable.sqlite import SqliteRunStore
from ..engine.client import JobExecutor, RunHandle, RunStatus
from ..engine.errors import RunBlockedError, RunNotFoundError, StoreError
from ..engine.jobs import RunSummary, job_id
from ..engine.memory import MemoryJobQueue
from ..errors import AbortError
from ..graph import WorkflowBlueprint
from ..waits import InvalidResumeValue, UnknownWaitError, Wait, WaitAlreadyResolved
from .errors import EXIT_AWAITING, EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, CliError
from .follow import Outcome, follow_run
from .loading import DEFAULT_REDIS_URL, RedisTarget, StoreTarget
from .output import print_result, progress_display, to_json

if TYPE_CHECKING:
    from ..budget import Budget
    from ..distributed import DistributedExecutor

__all__ = [
    "NO_WORKER_WARNING_AFTER",
    "Target",
    "cancel_command",
    "finish_run",
    "require_distributed",
    "run_distributed",
    "runs_command",
    "show_command",
    "status_command",
]

T = TypeVar("T")


def require_distributed() -> Any:
    """The ``flowcraft.distributed`` module, or a [`CliError`][flowcraft.cli.CliError] (exit 3)
    naming the extra to install."""
    try:
        # local import: the redis extra is optional; only the distributed commands load it
        import flowcraft.distributed as distributed
    except ImportError as error:
        missing = f"{error.name or 'a dependency'} is missing"
        raise CliError(
            f"distributed runs and workers need the redis extra ({missing}): pip install 'flowcraft-py[redis]'",
            EXIT_ENVIRONMENT,
        ) from None
    return distributed


Target = RedisTarget | StoreTarget
"""Where runs are read: Redis (``--redis``) or a run store file (``--store``)."""


class _StoreClient(JobExecutor):
    """Reads and cancels the runs of a store file without running any of them (entering
    a ``DurableExecutor`` would take orphaned runs over)."""

    def __init__(self, store: SqliteRunStore) -> None:
        super().__init__(store=store, queue=MemoryJobQueue())
        self.sqlite = store

    async def runs(self, state: str | None = None, limit: int = 100) -> list[RunSummary]:
        """The stored runs, newest first."""
        return await self.sqlite.runs(state, limit)


def _with_executor(target: Target, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(executor)`` on a client of ``target``: a ``DistributedExecutor`` for
    Redis, a read-only client of the store file otherwise."""
    if isinstance(target, StoreTarget):
        return _with_store(target, work)
    distributed = require_distributed()

    async def main() -> T:
        async with distributed.DistributedExecutor(
            target.url, queue=target.queue, prefix=target.prefix, cluster=target.cluster,
            queue_shards=target.queue_shards,
        ) as executor:  # fmt: skip
            return await work(executor)

    try:
        return asyncio.run(main())
    except distributed.RunNotFoundError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    except distributed.BackendError as error:
        raise CliError(f"cannot use Redis at {target.redacted()}: {error}", EXIT_ENVIRONMENT) from None


def _with_store(target: StoreTarget, work: Callable[[Any], Awaitable[T]]) -> T:
    if not os.path.isfile(target.path):
        raise CliError(f"--store {target.path!r} does not exist (give the file `flowcraft run --store` wrote)")

    async def main() -> T:
        async with _StoreClient(SqliteRunStore(target.path)) as client:
            return await work(client)

    try:
        return asyncio.run(main())
    except RunNotFoundError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    except StoreError as error:
        raise CliError(str(error), EXIT_USAGE) from None


def _status_dict(status: RunStatus) -> dict[str, Any]:
    out: dict[str, Any] = {"run_id": status.run_id, "state": status.state}
    if status.last_action is not None:
        out["last_action"] = action_label(status.last_action)
    if status.error is not None:
        out["error"] = {
            "node": status.error.node_id,
            "phase": status.error.phase,
            "type": status.error.type,
            "message": status.error.message,
        }
    if status.cancel_reason:
        out["cancel_reason"] = status.cancel_reason
    if status.usage is not None:
        out["usage"] = status.usage
    if status.created_at is not None:
        out["created_at"] = status.created_at
    if status.ended_at is not None:
        out["ended_at"] = status.ended_at
        if status.created_at is not None:
            out["duration"] = round(status.ended_at - status.created_at, 3)
    return out


NO_WORKER_WARNING_AFTER = 5.0
"""Seconds after which ``run --executor redis`` warns that no worker took the run's first job."""


def run_distributed(
    blueprint: WorkflowBlueprint,
    context: dict[str, Any],
    params: dict[str, Any],
    redis: RedisTarget,
    *,
    progress: str,
    detach: bool,
    as_json: bool = False,
    node_ids: Collection[str] | None = None,
    budget: Budget | None = None,
    timeout: float | None = None,
    run_id: str | None = None,
) -> int:
    """Start the run on the Redis workers; wait for it unless ``detach``.

    Detached, the run id is printed as a bare line (so ``flowcraft status $(flowcraft run
    ... --detach)`` works), or as ``{"run_id": ...}`` with ``as_json``.

    While waiting, the run's events (recorded because a display is shown) drive the same
    progress display as in-memory runs (``node_ids``: the nodes to show). When no worker
    has taken the first job after ``NO_WORKER_WARNING_AFTER`` seconds, a warning says
    so; after ``timeout`` seconds the command stops waiting (exit 124), the run goes on.
    """
    stream = sys.stderr
    display = None if detach else progress_display(progress, stream, node_ids)

    async def work(executor: DistributedExecutor) -> tuple[Outcome, dict[str, Any], str, float]:
        try:
            handle = await executor.start(
                blueprint, context, params=params, events=display is not None, run_id=run_id, budget=budget
            )
        except ValueError as error:
            raise CliError(f"{error} on {redis.redacted()}: choose another --run-id, or follow it with "
                           f"`flowcraft status {run_id}`") from None  # fmt: skip
        if detach:
            return Outcome(), {}, handle.run_id, 0.0
        if progress != "none":
            stream.write(
                f"run {handle.run_id} started on {redis.redacted()} (queue {redis.queue!r}); waiting for workers "
                f"(follow it with `flowcraft status {handle.run_id}`)\n"
            )
            stream.flush()
        started = time.monotonic()
        first_job = job_id(handle.run_id, blueprint.start_node_id, 1)
        outcome = await follow_run(
            handle, display, timeout=timeout, stream=stream,
            watchers=(_warn_without_worker(executor, handle, first_job, redis, stream),),
            on_stop=f"\nstopped waiting; the run goes on: `flowcraft status {handle.run_id}`, "
            f"`flowcraft cancel {handle.run_id}`\n",
        )  # fmt: skip
        elapsed = time.monotonic() - started
        if progress != "none" and not outcome.timed_out:
            stream.write(f"run {handle.run_id} ended after {elapsed:.2f}s\n")
        return outcome, await handle.context(), handle.run_id, elapsed

    outcome, final, started_id, elapsed = _with_executor(redis, work)
    if detach:
        print(to_json({"run_id": started_id}) if as_json else started_id)
        return EXIT_OK
    if outcome.timed_out:
        where = _redis_options(redis)
        raise CliError(
            f"run {started_id} did not end within {timeout:g}s ({elapsed:.1f}s waited); it goes on: follow it with "
            f"`flowcraft status {started_id}{where}`, stop it with `flowcraft cancel {started_id}{where}`",
            EXIT_TIMEOUT,
        )
    return finish_run(outcome, final, started_id)


def finish_run(outcome: Outcome, final: dict[str, Any], run_id: str) -> int:
    """Print the outcome of a run that ended (or paused) as JSON; the exit code (a failure raises)."""
    if outcome.suspended is not None:
        waits = [wait_dict(wait) for wait in outcome.suspended.waits]
        print(to_json({"run_id": run_id, "state": "awaiting", "waits": waits, "context": final}))
        return EXIT_AWAITING
    print_result(outcome.action, final, outcome.error, run_id=run_id)
    error = outcome.error
    if error is not None:
        what = "failed"
        if isinstance(error, (AbortError, RunBlockedError)):
            what = "cancelled" if isinstance(error, AbortError) else "blocked"
        raise CliError(f"run {run_id} {what}: {error}", EXIT_FAILED)
    return EXIT_OK


def _redis_options(redis: RedisTarget) -> str:
    """The options naming ``redis`` when they differ from the defaults (for hints)."""
    out = ""
    if redis.url != os.environ.get("FLOWCRAFT_REDIS_URL", DEFAULT_REDIS_URL):
        out += f" --redis {redis.redacted()}"
    if redis.queue != "flowcraft":
        out += f" --queue {redis.queue}"
    if redis.prefix != "flowcraft":
        out += f" --prefix {redis.prefix}"
    if redis.cluster:
        out += " --cluster"
    if redis.queue_shards > 1:
        out += f" --queue-shards {redis.queue_shards}"
    return out


async def _warn_without_worker(
    executor: DistributedExecutor, handle: RunHandle, first_job: str, redis: RedisTarget, stream: TextIO
) -> None:
    """Warn once when the run's first job still waits in the queue after a few seconds."""
    await asyncio.sleep(NO_WORKER_WARNING_AFTER)
    with contextlib.suppress(Exception):
        if (await handle.status()).state != "pending":
            return
        state_of = getattr(executor.queue, "state", None)  # BullMQJobQueue.state
        state = await state_of(first_job) if state_of is not None else "waiting"
        if state not in ("waiting", "wait", "prioritized"):
            return
        stream.write(
            f"\nflowcraft: warning: no worker has taken run {handle.run_id}'s first job after "
            f"{NO_WORKER_WARNING_AFTER:g}s: is a worker running on {redis.redacted()} with queue {redis.queue!r} "
            f"and prefix {redis.prefix!r}? (start one: `flowcraft worker --registry module:NAME"
            f"{_redis_options(redis)}`)\n"
        )
        stream.flush()


def status_command(run_id: str, target: Target, *, with_context: bool) -> int:
    """Print a run's status (and context) as JSON."""

    async def work(executor: JobExecutor) -> dict[str, Any]:
        handle = await executor.handle(run_id)
        out = _status_dict(await handle.status())
        if with_context:
            out["context"] = await handle.context()
        return out

    print(to_json(_with_executor(target, work)))
    return EXIT_OK


def wait_dict(wait: Wait) -> dict[str, Any]:
    """A wait as JSON: id, node, kind, request, actions, fire_at."""
    out: dict[str, Any] = {"id": wait.id, "node": wait.node_id, "kind": wait.kind, "request": wait.request}
    if wait.actions:
        out["actions"] = list(wait.actions)
    if wait.fire_at is not None:
        out["fire_at"] = wait.fire_at
    return out


def resume_on_redis(
    target: RedisTarget,
    run_id: str,
    wait_id: str,
    *,
    value: Any,
    action: str | None,
    idempotency_key: str | None,
    timeout: float | None,
    progress: str,
) -> int:
    """Resume a wait of a Redis run (the workers run it on) and wait for the outcome, as ``run`` does."""
    stream = sys.stderr

    async def work(executor: DistributedExecutor) -> tuple[Outcome, dict[str, Any]]:
        try:
            handle = await executor.resume(run_id, wait_id, value, action=action, idempotency_key=idempotency_key)
        except (UnknownWaitError, InvalidResumeValue, WaitAlreadyResolved) as error:
            raise CliError(str(error), EXIT_USAGE) from None
        if progress != "none":
            stream.write(f"run {run_id}: wait {wait_id} resumed; the workers run it on\n")
        outcome = await follow_run(handle, None, timeout=timeout, stream=stream)
        return outcome, ({} if outcome.timed_out else await handle.context())

    outcome, final = _with_executor(target, work)
    if outcome.timed_out:
        raise CliError(f"run {run_id} did not end within {timeout}s; it goes on: `flowcraft status {run_id}`",
                       EXIT_TIMEOUT)  # fmt: skip
    return finish_run(outcome, final, run_id)


def show_command(run_id: str, target: Target) -> int:
    """Print everything known about a run as JSON: state, error, times, context (and, for a
    run of ``flowcraft run --store``, how it was started)."""

    async def work(executor: JobExecutor) -> dict[str, Any]:
        handle = await executor.handle(run_id)
        out = _status_dict(await handle.status())
        meta = await executor.store.meta(run_id)
        if meta.get("updated_at"):
            out["updated_at"] = float(meta["updated_at"])
        extra = json.loads(meta.get("extra") or "{}")
        if extra:
            out["started_with"] = extra
        if meta.get("owner") and out["state"] in ("pending", "running"):
            out["owner"] = meta["owner"]
            out["lease_until"] = float(meta.get("lease_until") or 0)
        waits = await handle.waits()
        if waits:
            out["waits"] = [wait_dict(wait) for wait in waits]
        out["context"] = await handle.context()
        return out

    print(to_json(_with_executor(target, work)))
    return EXIT_OK


def runs_command(target: Target, *, state: str | None, limit: int, as_json: bool) -> int:
    """List the runs of ``target``, newest first: a table, or JSON with ``as_json``."""

    async def work(executor: Any) -> list[RunSummary]:
        found: list[RunSummary] = await executor.runs(state, limit)
        return found

    found = _with_executor(target, work)
    if as_json:
        print(to_json([dataclasses.asdict(run) for run in found]))
        return EXIT_OK
    if not found:
        where = "in " + target.path if isinstance(target, StoreTarget) else "on " + target.redacted()
        print(f"no {state + ' ' if state else ''}runs {where}", file=sys.stderr)
        return EXIT_OK
    width = max(len("RUN ID"), *(len(run.run_id) for run in found))
    print(f"{'RUN ID':<{width}}  {'STATE':<9}  {'CREATED':<19}  UPDATED")
    for run in found:
        print(f"{run.run_id:<{width}}  {run.state:<9}  {_when(run.created_at)}  {_when(run.updated_at)}")
    return EXIT_OK


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def cancel_command(run_id: str, target: Target, reason: str) -> int:
    """Cancel a run; prints its status afterwards."""

    async def work(executor: JobExecutor) -> dict[str, Any]:
        handle = await executor.handle(run_id)
        before = await handle.status()
        if before.finished:
            raise CliError(f"run {run_id} already ended ({before.state}); nothing to cancel", EXIT_FAILED)
        await handle.cancel(reason)
        return _status_dict(await handle.status())

    print(to_json(_with_executor(target, work)))
    return EXIT_OK
