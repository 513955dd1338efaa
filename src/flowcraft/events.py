"""Run events: a typed stream of what happens during a run.

Pass a listener to ``flow.run(ctx, on_event=listener)``; it is called with each event
as it happens (run started/finished/failed/cancelled, node started/finished/failed/
skipped, retry attempts, fallbacks used, context keys changed). When no listener is
given, nothing is built and the run pays nothing. A listener that raises is logged
and ignored: it can never break a run. Listeners are plain functions; to consume events
asynchronously, pass an [`EventStream`][flowcraft.EventStream] and iterate over it.

Examples:
    ```python
    def show(event: RunEvent) -> None:
        if isinstance(event, NodeFinished):
            print(f"{event.node_id} -> {event.action!r} in {event.duration:.3f}s")

    await flow.run(ctx, on_event=show)
    ```
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import AbortError, BudgetExceededError, WorkflowError

if TYPE_CHECKING:
    from .context import Context
    from .loggers import Logger
    from .middleware import NextFn
    from .node import AbstractNode, NodeArgs

__all__ = [
    "BudgetExceeded",
    "ContextChanged",
    "EventListener",
    "EventStream",
    "FallbackUsed",
    "NodeEvent",
    "NodeFailed",
    "NodeFinished",
    "NodeSkipped",
    "NodeStarted",
    "RetryAttempt",
    "RunAwaiting",
    "RunCancelled",
    "RunEvent",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "WaitResolved",
]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RunEvent:
    """Base of every event: which run, and when (``time.time()``)."""

    run_id: str
    time: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(RunEvent):
    """A run began."""

    flow: str
    params: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(RunEvent):
    """A run ended normally with ``action``."""

    action: Any
    duration: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RunFailed(RunEvent):
    """A run ended with ``error``."""

    error: BaseException
    duration: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RunCancelled(RunEvent):
    """A run was aborted or its task cancelled."""

    reason: Any
    duration: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RunAwaiting(RunEvent):
    """A node parked the run (or its branch) on a wait: ``wait_id`` (``node_id#visit``),
    its ``kind`` (``"input"`` or ``"timer"``) and ``fire_at`` (when it times out or fires)."""

    wait_id: str
    node_id: str
    kind: str
    fire_at: float | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WaitResolved(RunEvent):
    """A wait was resolved — by a resume (``by="resume"``) or its timer (``by="timer"``) —
    with ``action``; the wait node's ``post`` runs next."""

    wait_id: str
    action: Any
    by: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NodeEvent(RunEvent):
    """Base of node events: the node's id (``None`` if it has none) and class name."""

    node_id: str | None
    node_name: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NodeStarted(NodeEvent):
    """A node's lifecycle began."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NodeFinished(NodeEvent):
    """A node finished and returned ``action``."""

    action: Any
    duration: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NodeFailed(NodeEvent):
    """A node failed in ``phase`` (``None`` when the error came from outside its lifecycle)."""

    error: BaseException
    phase: str | None
    duration: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NodeSkipped(NodeEvent):
    """A node was reached but not run (``reason`` says why)."""

    reason: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RetryAttempt(NodeEvent):
    """Attempt ``attempt`` of ``max_attempts`` failed with ``error``; another follows after
    ``wait`` s (the delay chosen: backoff, jitter or the error's ``retry_after``)."""

    attempt: int
    max_attempts: int
    error: BaseException
    wait: float

    @property
    def delay(self) -> float:
        """The delay chosen before the next attempt (``wait``)."""
        return self.wait


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BudgetExceeded(RunEvent):
    """The run used up a limit of its budget (``kind``, ``limit``, ``used``) at ``node_id``
    (``None``: between nodes); ``usage`` holds every kind. The run then fails with
    [`BudgetExceededError`][flowcraft.BudgetExceededError]."""

    kind: str
    limit: float
    used: float
    node_id: str | None
    usage: dict[str, float]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FallbackUsed(NodeEvent):
    """Every attempt failed; ``exec_fallback`` runs with ``error``."""

    error: BaseException


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ContextChanged(NodeEvent):
    """A node set or deleted context keys."""

    keys_set: tuple[str, ...]
    keys_deleted: tuple[str, ...]


EventListener = Callable[[RunEvent], object]
"""A function called with each [`RunEvent`][flowcraft.RunEvent] (its return value is ignored)."""


def _node_id(node: AbstractNode | None) -> str | None:
    return None if node is None or node.id is None else str(node.id)


class EventEmitter:
    """Delivers a run's events to one listener; the run never sees a listener's error."""

    __slots__ = ("listener", "logger", "run_id")

    def __init__(self, listener: EventListener, logger: Logger, run_id: str | None = None) -> None:
        self.listener = listener
        self.logger = logger
        self.run_id = run_id or os.urandom(16).hex()

    def emit(self, event_type: type[RunEvent], **fields: Any) -> None:
        """Build an event of ``event_type`` and hand it to the listener."""
        try:
            self.listener(event_type(run_id=self.run_id, time=time.time(), **fields))
        except Exception as error:
            self.logger.error(f"run event listener raised {type(error).__name__}: {error}", error=error)

    def node(self, event_type: type[NodeEvent], node: AbstractNode | None, **fields: Any) -> None:
        """Emit a node event for ``node``."""
        name = type(node).__name__ if node is not None else ""
        self.emit(event_type, node_id=_node_id(node), node_name=name, **fields)

    def retry(self, node: AbstractNode, *, attempt: int, max_attempts: int, error: BaseException, wait: float) -> None:
        """Emit [`RetryAttempt`][flowcraft.RetryAttempt]: attempt ``attempt`` of ``node`` failed
        and another follows."""
        self.node(RetryAttempt, node, attempt=attempt, max_attempts=max_attempts, error=error, wait=wait)

    def budget_exceeded(self, error: BudgetExceededError) -> None:
        """Emit [`BudgetExceeded`][flowcraft.events.BudgetExceeded] for ``error``."""
        self.emit(
            BudgetExceeded, kind=error.kind, limit=error.limit, used=error.used, node_id=error.node_id,
            usage=dict(error.usage),
        )  # fmt: skip

    def fallback(self, node: AbstractNode, *, error: BaseException) -> None:
        """Emit [`FallbackUsed`][flowcraft.FallbackUsed]: every attempt of ``node`` failed, its
        ``exec_fallback`` runs."""
        self.node(FallbackUsed, node, error=error)

    def observe(self, innermost: NextFn) -> NextFn:
        """Wrap a node runner so it emits started / finished / failed / context events."""

        async def observed(args: NodeArgs[Any, Any]) -> Any:
            node = args.node
            self.node(NodeStarted, node)
            recorder = ChangeRecorder(args.ctx)
            args = args.replace(ctx=recorder)
            started = time.perf_counter()
            try:
                action = await innermost(args)
            except BaseException as error:
                self._changes(node, recorder)
                if not isinstance(error, (AbortError, asyncio.CancelledError)):
                    phase = error.phase if isinstance(error, WorkflowError) else None
                    self.node(NodeFailed, node, error=error, phase=phase, duration=time.perf_counter() - started)
                raise
            self._changes(node, recorder)
            self.node(NodeFinished, node, action=action, duration=time.perf_counter() - started)
            return action

        return observed

    def _changes(self, node: AbstractNode | None, recorder: ChangeRecorder) -> None:
        if recorder.keys_set or recorder.keys_deleted:
            self.node(
                ContextChanged,
                node,
                keys_set=tuple(recorder.keys_set),
                keys_deleted=tuple(recorder.keys_deleted),
            )


class ChangeRecorder:
    """A [`Context`][flowcraft.Context] view that records which keys are set or deleted."""

    __slots__ = ("inner", "keys_deleted", "keys_set")

    def __init__(self, inner: Context) -> None:
        self.inner = inner
        self.keys_set: dict[str, None] = {}
        self.keys_deleted: dict[str, None] = {}

    async def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        return await self.inner.get(key, default)

    async def set(self, key: str, value: Any) -> ChangeRecorder:
        """Store ``value`` under ``key`` and record the change."""
        await self.inner.set(key, value)
        name = str.__str__(key)
        self.keys_deleted.pop(name, None)
        self.keys_set[name] = None
        return self

    async def has(self, key: str) -> bool:
        """Whether ``key`` is set."""
        return await self.inner.has(key)

    async def update(self, key: str, fn: Callable[[Any], Any], default: Any = None) -> Any:
        """Atomically update ``key`` (see [`Context.update`][flowcraft.Context.update]) and record the change."""
        value = await self.inner.update(key, fn, default)
        name = str.__str__(key)
        self.keys_deleted.pop(name, None)
        self.keys_set[name] = None
        return value

    async def delete(self, key: str) -> bool:
        """Remove ``key`` and record the change."""
        removed = await self.inner.delete(key)
        if removed:
            name = str.__str__(key)
            self.keys_set.pop(name, None)
            self.keys_deleted[name] = None
        return removed

    def keys(self) -> Iterator[str]:
        """Iterate over the key names."""
        return self.inner.keys()

    def values(self) -> Iterator[Any]:
        """Iterate over the values."""
        return self.inner.values()

    def entries(self) -> Iterator[tuple[str, Any]]:
        """Iterate over ``(name, value)`` pairs."""
        return self.inner.entries()

    def to_dict(self) -> dict[str, Any]:
        """A snapshot of the underlying context."""
        return self.inner.to_dict()


_TERMINAL = (RunFinished, RunFailed, RunCancelled)


class EventStream:
    """A listener you can iterate over asynchronously; iteration ends with the run.

    Examples:
        ```python
        stream = EventStream()
        task = asyncio.create_task(flow.run(ctx, on_event=stream))
        async for event in stream:
            print(event)
        await task
        ```
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[RunEvent] = asyncio.Queue()

    def __call__(self, event: RunEvent) -> None:
        """Receive one event (called by the run)."""
        self._queue.put_nowait(event)

    async def __aiter__(self) -> AsyncIterator[RunEvent]:
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, _TERMINAL):
                return
