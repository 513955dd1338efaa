"""Time and chance for run policies: the one seam tests replace.

Retry delays (sleeps, jitter, ``max_elapsed``) and budget deadlines read the clock
through [`current`][flowcraft.clock.current]; [`flowcraft.testing.FakeClock`][flowcraft.testing.FakeClock]
installs a clock that never
really sleeps and draws jitter from a fixed seed.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from .abort import AbortSignal, sleep

__all__ = ["Clock", "current", "install", "scoped"]


class Clock:
    """The system clock: ``monotonic()``, ``time()``, an abortable ``sleep`` and ``uniform``."""

    def __init__(self) -> None:
        self._random = random.Random()

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (durations in one process)."""
        return time.monotonic()

    def time(self) -> float:
        """Wall-clock seconds since the epoch (deadlines shared between processes)."""
        return time.time()

    async def sleep(self, seconds: float, signal: AbortSignal | None) -> None:
        """Sleep ``seconds``; raises [`AbortError`][flowcraft.AbortError] as soon as ``signal`` aborts."""
        await sleep(seconds, signal)

    def uniform(self, low: float, high: float) -> float:
        """A number drawn uniformly from ``[low, high]`` (retry jitter)."""
        return self._random.uniform(low, high)

    def retries_before(self, node: Any) -> tuple[int, float]:
        """Attempts of ``node``'s ``exec`` already made, and the seconds they took, before
        this run of it (a durable job resumed after a retry timer); ``(0, 0.0)`` here."""
        return 0, 0.0

    async def retry_sleep(self, seconds: float, signal: AbortSignal | None, *, node: Any, attempt: int,
                          elapsed: float) -> None:  # fmt: skip
        """The wait between two attempts of ``node``'s ``exec`` (``attempt`` made so far,
        ``elapsed`` seconds since the first): a sleep here; a durable job's clock may park
        the job on a timer instead."""
        await self.sleep(seconds, signal)


_current: Clock = Clock()
_scoped: ContextVar[Clock | None] = ContextVar("flowcraft_clock", default=None)


def current() -> Clock:
    """The clock run policies use now (a scoped one inside [`scoped`][flowcraft.clock.scoped])."""
    found = _scoped.get()
    return _current if found is None else found


@contextlib.contextmanager
def scoped(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the current clock for the code (and the tasks it starts) inside the block."""
    token = _scoped.set(clock)
    try:
        yield clock
    finally:
        _scoped.reset(token)


def install(clock: Clock) -> Clock:
    """Make ``clock`` the current clock; returns the one it replaces."""
    global _current
    previous, _current = _current, clock
    return previous
