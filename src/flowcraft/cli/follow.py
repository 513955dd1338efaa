"""Waiting for a run of the job engine (``run --executor redis``, ``run --store``): the
progress display fed by the run's events, an optional time limit, and side watchers
(e.g. the warning that no worker took the run's first job)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TextIO

from ..engine.errors import RunBlockedError
from ..errors import AbortError, WorkflowError
from ..events import RunEvent
from ..waits import RunSuspended
from .progress import ProgressDisplay

if TYPE_CHECKING:
    from ..engine.client import RunHandle

__all__ = ["Outcome", "follow_run"]


@dataclasses.dataclass(slots=True)
class Outcome:
    """How waiting ended: the final ``action``, or the ``error`` the run ended with, or
    ``timed_out`` (the run goes on)."""

    action: Any = None
    error: BaseException | None = None
    timed_out: bool = False
    suspended: RunSuspended | None = None
    """The run parked on waits for input (it goes on when resumed)."""


async def follow_run(
    handle: RunHandle,
    display: ProgressDisplay | None,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - handed to RunHandle.result
    watchers: tuple[Awaitable[None], ...] = (),
    stream: TextIO,
    on_stop: str = "",
) -> Outcome:
    """Wait for the run behind ``handle`` to end (at most ``timeout`` seconds).

    ``display`` is fed the run's events (a run started with ``events=True``); a failure
    to read them only ends the display. ``watchers`` run meanwhile and are cancelled at
    the end. A ``WorkflowError`` / ``AbortError`` / ``RunBlockedError`` the run ended with
    is returned in the outcome, not raised. When waiting is interrupted (Ctrl-C), ``on_stop``
    is written to ``stream`` before the interruption goes on.
    """
    waiter = asyncio.ensure_future(handle.result(timeout=timeout))
    stop = asyncio.Event()
    reader = asyncio.ensure_future(_feed(handle, display)) if display is not None else None
    ticker = asyncio.ensure_future(display.tick(stop)) if display is not None and display.live else None
    helpers = [asyncio.ensure_future(watcher) for watcher in watchers]
    outcome = Outcome()
    try:
        await asyncio.wait([waiter])
        try:
            outcome.action = waiter.result()
        except (WorkflowError, AbortError, RunBlockedError) as failure:
            outcome.error = failure
        except TimeoutError:  # RunTimeoutError: the run goes on
            outcome.timed_out = True
        except RunSuspended as paused:  # parked on a wait: no end marker to read up to
            outcome.suspended = paused
        if (
            reader is not None and not outcome.timed_out and outcome.suspended is None
        ):  # the reader ends at the run's end marker
            await asyncio.wait([reader], timeout=5.0)
    finally:
        stop.set()
        for helper in [*helpers, reader, ticker]:
            if helper is None:
                continue
            if helper is not ticker:
                helper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await helper
        if not waiter.done():
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await waiter
            if on_stop:
                stream.write(on_stop)
                stream.flush()
    return outcome


async def _feed(handle: RunHandle, display: ProgressDisplay) -> None:
    """Feed the run's events to ``display``."""
    with contextlib.suppress(Exception):
        event: RunEvent
        async for event in handle.events():
            display(event)
