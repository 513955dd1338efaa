"""Time and chance for run policies: the one seam tests replace.

Retry delays (sleeps, jitter, ``max_elapsed``) and budget deadlines read the clock
through [`current`][flowcraft.clock.current]; [`flowcraft.testing.FakeClock`][flowcraft.testing.FakeClock]
installs a clock that never
really sleeps and draws jitter from a fixed seed.
"""

from __future__ import annotations

import random
import time

from .abort import AbortSignal, sleep

__all__ = ["Clock", "current", "install"]


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


_current: Clock = Clock()


def current() -> Clock:
    """The clock run policies use now."""
    return _current


def install(clock: Clock) -> Clock:
    """Make ``clock`` the current clock; returns the one it replaces."""
    global _current
    previous, _current = _current, clock
    return previous
