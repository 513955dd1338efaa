"""In-process notifications by topic: what the stores that live in this process
(``MemoryRunStore``, ``SqliteRunStore``) use where Redis has pub/sub."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

__all__ = ["TopicSubscription", "Topics"]


class TopicSubscription:
    """Messages of one topic, in order; ``poll`` (if given) is asked when none came in
    time (a store that also looks for what other processes wrote)."""

    def __init__(self, queue: asyncio.Queue[str], poll: Callable[[], Awaitable[str | None]] | None = None) -> None:
        self._queue = queue
        self._poll = poll

    async def get(self, wait: float) -> str | None:
        """The next message, or ``None`` (or what ``poll`` finds) after ``wait`` seconds without one."""
        try:
            return await asyncio.wait_for(self._queue.get(), wait)
        except TimeoutError:
            return await self._poll() if self._poll is not None else None


class Topics:
    """Fan-out of messages to the subscriptions open on each topic."""

    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[str]]] = {}

    def publish(self, topic: str, message: str) -> None:
        """Hand ``message`` to every subscription open on ``topic`` now."""
        for queue in self._queues.get(topic, ()):
            queue.put_nowait(message)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, topic: str, poll: Callable[[], Awaitable[str | None]] | None = None
    ) -> AsyncIterator[TopicSubscription]:
        """A subscription to ``topic`` for the block's duration."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        subscribers = self._queues.setdefault(topic, set())
        subscribers.add(queue)
        try:
            yield TopicSubscription(queue, poll)
        finally:
            subscribers.discard(queue)
