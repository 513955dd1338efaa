"""The executor contract: the [`FlowRunner`][flowcraft.FlowRunner] and [`Executor`][flowcraft.Executor] protocols,
[`RunOptions`][flowcraft.RunOptions], and the kit a custom executor is built from ([`WalkScope`][flowcraft.WalkScope],
`resolve_options`, [`BatchOutcome`][flowcraft.BatchOutcome]).

Two roles, two protocols:

- a [`FlowRunner`][flowcraft.FlowRunner] runs a whole flow: ``flow.run(ctx, executor=runner)`` calls
  ``runner.run(...)``. The distributed and durable executors are flow runners: the
  nodes run elsewhere, one job each.
- an [`Executor`][flowcraft.Executor] is a flow runner that also walks graphs in this process. Nodes
  that hold a graph (a sub-flow, a parallel block, a batch) call it through
  ``args.executor`` — ``run_subflow``, ``run_parallel``, ``run_batch`` — so the same
  engine (with its middleware, events and fan-in) walks every level of a run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..abort import NEVER_ABORTED, AbortController, AbortSignal
from ..loggers import Logger, NullLogger
from ..middleware import Middleware, NextFn
from ..node import Record

if TYPE_CHECKING:
    from ..budget import Budget, BudgetMeter
    from ..context import Context
    from ..events import EventEmitter, EventListener
    from ..flow import Flow
    from ..node import AbstractNode, NodeArgs
    from .joins import JoinGate

__all__ = [
    "BatchOutcome",
    "Executor",
    "FlowRunner",
    "NodeJob",
    "RunOptions",
    "WalkScope",
    "first_successor",
    "resolve_options",
]

NULL_LOGGER = NullLogger()


class _Parked:
    __slots__ = ()

    def __repr__(self) -> str:
        return "PARKED"


PARKED: Any = _Parked()
"""What a branch walk returns when it stopped at a join that is still waiting (fan-in:
`flowcraft.executors.joins`)."""


class RunOptions(Record):
    """Options of one run: ``params``, ``logger``, ``signal``, ``controller``, ``executor``,
    ``on_event``, ``budget``.

    When both ``signal`` and ``controller`` are given, ``signal`` wins.
    """

    params: Mapping[str, Any] | None
    logger: Logger | None
    signal: AbortSignal | None
    controller: AbortController | None
    executor: FlowRunner | None
    on_event: EventListener | None
    budget: Budget | None

    __match_args__ = (
        "params",
        "logger",
        "signal",
        "controller",
        "executor",
        "on_event",
        "budget",
    )  # the fields, in order
    __slots__ = __match_args__

    def __init__(
        self,
        params: Mapping[str, Any] | None = None,
        logger: Logger | None = None,
        signal: AbortSignal | None = None,
        controller: AbortController | None = None,
        executor: FlowRunner | None = None,
        on_event: EventListener | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.params = params
        self.logger = logger
        self.signal = signal
        self.controller = controller
        self.executor = executor
        self.on_event = on_event
        self.budget = budget


class BatchOutcome(tuple[int, Mapping[str, Any], Any, "BaseException | None"]):
    """What one batch item ended with: its ``action``, or the ``error`` it failed with.

    An immutable record of ``index``, ``params``, ``action`` and ``error`` (read them by
    name; it is also the tuple of the four). Built as a tuple: one per batch item, it costs
    ~0.1 µs instead of a frozen dataclass's ~0.2 µs.
    """

    __slots__ = ()

    def __new__(
        cls, index: int, params: Mapping[str, Any], action: Any = None, error: BaseException | None = None
    ) -> BatchOutcome:
        return tuple.__new__(cls, (index, params, action, error))

    @property
    def index(self) -> int:  # type: ignore[override]  # the field; tuple's index() is not offered
        """The item's position in the batch."""
        return self[0]

    @property
    def params(self) -> Mapping[str, Any]:
        """The item's params (as the batch's ``prep`` returned them)."""
        return self[1]

    @property
    def action(self) -> Any:
        """The action the item's node returned (``None`` when it failed)."""
        return self[2]

    @property
    def error(self) -> BaseException | None:
        """The error the item failed with (``None`` when it succeeded)."""
        return self[3]

    @property
    def ok(self) -> bool:
        """``True`` when the item succeeded."""
        return self[3] is None

    def __repr__(self) -> str:
        return f"BatchOutcome(index={self[0]!r}, params={self[1]!r}, action={self[2]!r}, error={self[3]!r})"


@runtime_checkable
class FlowRunner(Protocol):
    """Anything ``flow.run(ctx, executor=...)`` accepts: runs a whole flow.

    Examples:
        ```python
        class Timed:
            async def run(self, flow, context=None, options=None):
                started = time.perf_counter()
                try:
                    return await InMemoryExecutor().run(flow, context, options)
                finally:
                    print(f"{flow.name} took {time.perf_counter() - started:.3f}s")
        ```
    """

    async def run(self, flow: Flow, context: Context | None = None, options: RunOptions | None = None) -> Any:
        """Run ``flow`` with ``context`` and return its final action."""
        ...


@runtime_checkable
class Executor(FlowRunner, Protocol):
    """A flow runner that walks graphs in this process; what ``args.executor`` is.

    Flows, parallel blocks and batches call these methods on the executor that runs
    them, so every level of a run goes through one engine. Subclass
    [`InMemoryExecutor`][flowcraft.InMemoryExecutor] rather than writing all four from scratch.

    Example — an executor that logs every node it runs:

    ```python
    class LoggingExecutor(InMemoryExecutor):
        async def run_node(self, args):
            print("running", args.name)
            return await super().run_node(args)
    ```
    """

    def run_subflow(self, flow: Flow, args: NodeArgs[Any, Any]) -> Awaitable[Any]:
        """Walk ``flow``'s graph as one node of an outer walk; its last action."""
        ...

    async def run_parallel(
        self, block: Flow, branches: Sequence[AbstractNode], args: NodeArgs[Any, Any], limit: int | None = None
    ) -> list[Any]:
        """Walk ``branches`` concurrently with fan-in; the final actions of the walks that ended."""
        ...

    async def run_batch(
        self,
        block: Flow,
        node: AbstractNode,
        items: Sequence[Mapping[str, Any]],
        args: NodeArgs[Any, Any],
        *,
        concurrent: bool,
        limit: int | None = None,
    ) -> list[BatchOutcome]:
        """Run ``node``'s lifecycle once per item of params; one outcome per item."""
        ...


def first_successor(curr: AbstractNode, action: Any) -> AbstractNode | None:
    """The first successor registered for ``action``; ``None`` when there is none.

    An unhashable action (a collection helper's list) has no successors.
    """
    try:
        bucket = curr.successors.get(action)
    except TypeError:
        return None
    return bucket[0] if bucket else None


@runtime_checkable
class NodeJob(Protocol):
    """The job a walk runs in, in a durable or distributed run (``WalkScope.job``): the
    job's node and the nodes that run inside it (a sub-flow's, an in-process block's)."""

    resume_action: Any
    """The action a wait node's job was resumed with (``None`` for other jobs)."""

    def key_for(self, args: NodeArgs[Any, Any]) -> str:
        """The idempotency key of the node visit ``args`` belongs to (stable across re-runs)."""
        ...

    async def memo(self, args: NodeArgs[Any, Any], key: str, fn: Callable[[], Any]) -> Any:
        """``fn()``'s result for that visit, computed once and stored; the stored one on a re-run."""
        ...


class WalkScope(Record):
    """Everything the nodes of one walk share: the run's context and signal, the
    params they inherit, the middleware that wraps them, and fan-in bookkeeping.

    ``chain`` is the middleware composed once for the scope (``None`` when there is no
    middleware); ``inherited`` is what nested flows inherit (``use(mw, inherit=True)``);
    ``budget`` meters the run's [`Budget`][flowcraft.Budget] (``None``: no budget) — a walk
    calls ``await budget.admit(node)`` before each node.
    """

    ctx: Context
    params: dict[str, Any]
    signal: AbortSignal
    logger: Logger
    executor: Executor
    middleware: tuple[Middleware, ...]
    inherited: tuple[Middleware, ...]
    chain: NextFn | None
    gate: JoinGate | None
    events: EventEmitter | None
    budget: BudgetMeter | None
    job: NodeJob | None
    """The job this walk's node runs as (durable and distributed runs; ``None`` in memory)."""

    __match_args__ = (
        "ctx",
        "params",
        "signal",
        "logger",
        "executor",
        "middleware",
        "inherited",
        "chain",
        "gate",
        "events",
        "budget",
        "job",
    )  # the fields, in order
    __slots__ = __match_args__

    def __init__(
        self,
        ctx: Context,
        params: dict[str, Any],
        signal: AbortSignal,
        logger: Logger,
        executor: Executor,
        middleware: tuple[Middleware, ...] = (),
        inherited: tuple[Middleware, ...] = (),
        chain: NextFn | None = None,
        gate: JoinGate | None = None,
        events: EventEmitter | None = None,
        budget: BudgetMeter | None = None,
        job: NodeJob | None = None,
    ) -> None:
        self.ctx = ctx
        self.params = params
        self.signal = signal
        self.logger = logger
        self.executor = executor
        self.middleware = middleware
        self.inherited = inherited
        self.chain = chain
        self.gate = gate
        self.events = events
        self.budget = budget
        self.job = job


def resolve_options(flow: Flow, options: RunOptions | None) -> tuple[dict[str, Any], AbortSignal, Logger]:
    """The top-level params (flow params < run params), signal and logger of a run."""
    if options is None:
        return flow.params, NEVER_ABORTED, NULL_LOGGER
    params = {**flow.params, **options.params} if options.params else flow.params
    signal = options.signal
    if signal is None:
        signal = options.controller.signal if options.controller is not None else NEVER_ABORTED
    logger = options.logger if options.logger is not None else NULL_LOGGER
    return params, signal, logger
