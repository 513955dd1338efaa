"""Distributed runs from the command line: ``run --executor redis``, ``worker``, ``status``, ``cancel``."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar

from ..actions import action_label
from ..errors import AbortError, WorkflowError
from ..graph import WorkflowBlueprint
from .errors import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from .loading import RedisTarget
from .output import print_result, progress_display, to_json
from .progress import ProgressDisplay

if TYPE_CHECKING:
    from ..budget import Budget
    from ..distributed import DistributedExecutor, RunHandle, RunStatus

__all__ = ["cancel_command", "require_distributed", "run_distributed", "status_command"]

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


def _with_executor(redis: RedisTarget, work: Callable[[DistributedExecutor], Awaitable[T]]) -> T:
    distributed = require_distributed()

    async def main() -> T:
        async with distributed.DistributedExecutor(redis.url, queue=redis.queue, prefix=redis.prefix) as executor:
            return await work(executor)

    try:
        return asyncio.run(main())
    except distributed.RunNotFoundError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    except distributed.BackendError as error:
        raise CliError(f"cannot use Redis at {redis.redacted()}: {error}", EXIT_ENVIRONMENT) from None


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
) -> int:
    """Start the run on the Redis workers; wait for it unless ``detach``.

    Detached, the run id is printed as a bare line (so ``flowcraft status $(flowcraft run
    ... --detach)`` works), or as ``{"run_id": ...}`` with ``as_json``.

    While waiting, the run's events (recorded because a display is shown) drive the same
    progress display as in-memory runs (``node_ids``: the nodes to show).
    """
    stream = sys.stderr
    display = None if detach else progress_display(progress, stream, node_ids)

    async def work(executor: DistributedExecutor) -> tuple[Any, dict[str, Any], BaseException | None, str]:
        handle = await executor.start(blueprint, context, params=params, events=display is not None, budget=budget)
        if detach:
            return None, {}, None, handle.run_id
        if progress != "none":
            stream.write(
                f"run {handle.run_id} started on {redis.redacted()} (queue {redis.queue!r}); waiting for workers "
                f"(follow it with `flowcraft status {handle.run_id}`)\n"
            )
            stream.flush()
        started = time.monotonic()
        waiter = asyncio.ensure_future(handle.result())
        stop = asyncio.Event()
        helpers: list[asyncio.Future[None]] = []
        if display is not None:
            helpers.append(asyncio.ensure_future(_follow(handle, display)))
            if display.live:
                helpers.append(asyncio.ensure_future(display.tick(stop)))
        try:
            await asyncio.wait([waiter])
            try:
                action, error = waiter.result(), None
            except (WorkflowError, AbortError) as failure:
                action, error = None, failure
            if helpers:  # the event reader ends at the run's end marker; never wait long for it
                await asyncio.wait(helpers[:1], timeout=5.0)
        finally:
            stop.set()
            for helper in helpers:
                if not helper.done() and helper is helpers[0]:
                    helper.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await helper
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await waiter
                stream.write(
                    f"\nstopped waiting; the run goes on: `flowcraft status {handle.run_id}`, "
                    f"`flowcraft cancel {handle.run_id}`\n"
                )
        if progress != "none":
            stream.write(f"run {handle.run_id} ended after {time.monotonic() - started:.2f}s\n")
        return action, await handle.context(), error, handle.run_id

    action, final, error, run_id = _with_executor(redis, work)
    if detach:
        print(to_json({"run_id": run_id}) if as_json else run_id)
        return EXIT_OK
    print_result(action, final, error, run_id=run_id)
    if error is not None:
        what = "cancelled" if isinstance(error, AbortError) else "failed"
        raise CliError(f"run {run_id} {what}: {error}", EXIT_FAILED)
    return EXIT_OK


async def _follow(handle: RunHandle, display: ProgressDisplay) -> None:
    """Feed the run's events to ``display`` (a failure to read them only ends the display)."""
    with contextlib.suppress(Exception):
        async for event in handle.events():
            display(event)


def status_command(run_id: str, redis: RedisTarget, *, with_context: bool) -> int:
    """Print a distributed run's status (and context) as JSON."""

    async def work(executor: DistributedExecutor) -> dict[str, Any]:
        handle = await executor.handle(run_id)
        out = _status_dict(await handle.status())
        if with_context:
            out["context"] = await handle.context()
        return out

    print(to_json(_with_executor(redis, work)))
    return EXIT_OK


def cancel_command(run_id: str, redis: RedisTarget, reason: str) -> int:
    """Cancel a distributed run; prints its status afterwards."""

    async def work(executor: DistributedExecutor) -> dict[str, Any]:
        handle = await executor.handle(run_id)
        before = await handle.status()
        if before.finished:
            raise CliError(f"run {run_id} already ended ({before.state}); nothing to cancel", EXIT_FAILED)
        await handle.cancel(reason)
        return _status_dict(await handle.status())

    print(to_json(_with_executor(redis, work)))
    return EXIT_OK
