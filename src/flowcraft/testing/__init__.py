"""Helpers for testing your own nodes and flows.

``MemoryRunStore`` and ``MemoryJobQueue`` are the job engine's in-memory backends: run
a flow through ``flowcraft.engine.JobExecutor`` and ``JobWorker`` without a server.

Examples:
    ```python
    from flowcraft.testing import RecordingLogger, EventRecorder, run_lifecycle

    async def test_fetch_node():
        result = await run_lifecycle(FetchNode(), TypedContext({"url": "x"}))
        assert result.action == "ok"
        assert result.exec_res == {...}
        assert result.context == {"url": "x", "page": {...}}
    ```
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Mapping
from typing import Any, TypeVar

from ..abort import NEVER_ABORTED, AbortSignal
from ..clock import Clock, install
from ..context import Context, TypedContext
from ..engine.memory import MemoryJobQueue, MemoryRunStore
from ..events import NodeEvent, NodeFinished, RunEvent
from ..loggers import LevelLogger, LogLevel
from ..node import AbstractNode, NodeArgs
from .effects import EffectsReport, UndeclaredEffectError, record_effects

__all__ = [
    "EffectsReport",
    "EventRecorder",
    "FakeClock",
    "LifecycleResult",
    "MemoryJobQueue",
    "MemoryRunStore",
    "RecordingLogger",
    "UndeclaredEffectError",
    "record_effects",
    "run_lifecycle",
]

EventT = TypeVar("EventT", bound=RunEvent)


class FakeClock(Clock):
    """A clock for tests of run policies: retry sleeps return at once and advance
    ``now``, jitter comes from a fixed ``seed``, budget deadlines read ``now``.

    Examples:
        ```python
        with FakeClock(seed=1) as clock:
            await flow.run(ctx)
        assert clock.sleeps == [1.0, 2.0]  # the retry delays, in order
        ```
    """

    def __init__(self, start: float = 0.0, *, seed: int = 0) -> None:
        super().__init__()
        self._random = random.Random(seed)
        self.now = start
        self.sleeps: list[float] = []
        self._previous: list[Clock] = []

    def monotonic(self) -> float:
        """``now``."""
        return self.now

    def time(self) -> float:
        """``now``."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward (a node "taking" ``seconds``)."""
        self.now += seconds

    async def sleep(self, seconds: float, signal: AbortSignal | None) -> None:
        """Record ``seconds`` in ``sleeps`` and advance ``now`` (one loop turn, no real wait)."""
        if signal is not None:
            signal.throw_if_aborted()
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
        if signal is not None:
            signal.throw_if_aborted()

    def __enter__(self) -> FakeClock:
        self._previous.append(install(self))
        return self

    def __exit__(self, *exc: object) -> None:
        install(self._previous.pop())


class RecordingLogger(LevelLogger):
    """A logger that keeps every record as ``(level, message, context)`` for assertions."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def log(self, level: LogLevel, message: str, context: dict[str, Any]) -> None:
        """Record one message."""
        self.records.append((level, message, context))

    def messages(self, level: str | None = None) -> list[str]:
        """The recorded messages, optionally only those of ``level``."""
        return [message for lvl, message, _ in self.records if level is None or lvl == level]


class EventRecorder:
    """A run-event listener that keeps every event (pass it as ``on_event``)."""

    def __init__(self) -> None:
        self.events: list[RunEvent] = []

    def __call__(self, event: RunEvent) -> None:
        """Record one event."""
        self.events.append(event)

    def of_type(self, event_type: type[EventT]) -> list[EventT]:
        """The recorded events of ``event_type`` (subclasses included), in order."""
        return [event for event in self.events if isinstance(event, event_type)]

    def finished_nodes(self) -> list[str | None]:
        """Ids of the nodes that finished, in the order they finished."""
        return [event.node_id for event in self.of_type(NodeFinished)]

    def node_events(self, node_id: str) -> list[NodeEvent]:
        """Every event about the node ``node_id``, in order."""
        return [event for event in self.of_type(NodeEvent) if event.node_id == node_id]


@dataclasses.dataclass(frozen=True, slots=True)
class LifecycleResult:
    """What one standalone lifecycle run produced."""

    action: Any
    prep_res: Any
    exec_res: Any
    context: dict[str, Any]


async def run_lifecycle(
    node: AbstractNode,
    ctx: Context | Mapping[str, Any] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    signal: AbortSignal | None = None,
    logger: Any = None,
) -> LifecycleResult:
    """Run ``node``'s lifecycle once, outside any flow, and return every intermediate result.

    ``ctx`` may be a context or a plain mapping (copied into a fresh ``TypedContext``);
    the node's own params are merged over ``params``. Errors propagate as in a run.
    """
    if not isinstance(node, AbstractNode):
        raise TypeError(f"run_lifecycle() expects a node, got {type(node).__name__}: {node!r}")
    context: Context = ctx if isinstance(ctx, Context) else TypedContext(ctx or {})
    merged = {**(params or {}), **node.params}
    if logger is None:
        logger = RecordingLogger()
    args: NodeArgs[Any, Any] = NodeArgs(
        context, merged, signal or NEVER_ABORTED, logger, name=type(node).__name__, node=node
    )
    action = await node.run_lifecycle(args)
    return LifecycleResult(action, args.prep_res, args.exec_res, context.to_dict())
