"""Flows: a node that owns a graph (a start node and its successors) and middleware."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .abort import AbortController, AbortSignal
from .context import Context, TypedContext
from .errors import EmptyFlowError, EventLoopRunningError
from .executors.base import Executor, FlowRunner, RunOptions
from .executors.in_memory import DEFAULT_EXECUTOR
from .loggers import Logger
from .middleware import Middleware, as_async_middleware
from .node import AbstractNode, Node, NodeArgs

if TYPE_CHECKING:
    from .budget import Budget
    from .events import EventListener

__all__ = ["Flow", "executor_of"]


def executor_of(args: NodeArgs[Any, Any]) -> Executor:
    """The executor that walks the inner graph of the node ``args`` belongs to.

    ``args.executor``; ``None`` (a lifecycle run by hand, outside any executor) means
    the default in-memory one.

    Raises:
        TypeError: ``args.executor`` lacks a method of the [`Executor`][flowcraft.Executor] protocol
            (a bare [`FlowRunner`][flowcraft.FlowRunner] put itself there).
    """
    executor = args.executor
    if executor is None:
        return DEFAULT_EXECUTOR
    kind = type(executor)
    missing = [name for name in _NESTED_WALKS if not hasattr(kind, name)]
    if missing:
        raise TypeError(
            f"{kind.__name__} is in NodeArgs.executor but has no {', '.join(missing)}, which "
            f"{type(args.node).__name__ if args.node is not None else 'a flow'} calls to walk its inner graph. "
            "Subclass InMemoryExecutor, implement the Executor protocol, or pass an InMemoryExecutor "
            "as NodeArgs.executor."
        )
    return executor


_NESTED_WALKS = ("run_subflow", "run_parallel", "run_batch")


class Flow(Node[Any, Any, Any]):
    """A graph of nodes run as one unit; itself a node, so flows nest.

    Its action is the last action of its inner graph, so an outer flow can branch on it.

    Examples:
        ```python
        flow = Flow()
        flow.start(Load()).next(Transform()).next(Save())
        flow.use(timing_middleware)
        await flow.run(TypedContext({"path": "in.csv"}))
        ```
    """

    holds_graph = True

    def __init__(self, start: AbstractNode | None = None) -> None:
        super().__init__()
        self.start_node: AbstractNode | None = None
        self.middleware: list[Middleware] = []
        self.inherited_middleware: list[Middleware] = []
        if start is not None:
            self.start(start)

    def start(self, node: AbstractNode) -> AbstractNode:
        """Set the node the graph starts at; returns it so ``.next()`` chains on."""
        if not isinstance(node, AbstractNode):
            raise TypeError(f"{type(self).__name__}.start() expects a node, got {type(node).__name__}: {node!r}")
        self.start_node = node
        self._rewired()
        return node

    def use(self, middleware: Middleware, *, inherit: bool = False) -> Flow:
        """Wrap every node this flow runs in ``middleware`` (first added = outermost).

        With ``inherit=True`` it also wraps the inner nodes of nested flows.
        """
        adapted = as_async_middleware(middleware)
        self.middleware.append(adapted)
        if inherit:
            self.inherited_middleware.append(adapted)
        return self

    async def exec(self, args: NodeArgs[Any, Any]) -> Any:
        """Walk this flow's graph; the last action is the result."""
        if self.start_node is None:
            raise EmptyFlowError(
                f"Flow {self.id if self.id is not None else type(self).__name__!r} has no start node and no exec() of "
                "its own: call flow.start(node) or pass the start node to the constructor."
            )
        return await executor_of(args).run_subflow(self, args)

    def post(self, args: NodeArgs[Any, Any]) -> Any:
        """A flow's action is its graph's last action."""
        return args.exec_res

    def _wrap_error(self, error: Exception, phase: str) -> Exception:
        # Errors from the inner graph already name their node; never wrap them twice.
        return error if phase == "exec" else super()._wrap_error(error, phase)

    async def run(
        self,
        ctx: Context | None = None,
        *,
        params: dict[str, Any] | None = None,
        logger: Logger | None = None,
        signal: AbortSignal | None = None,
        controller: AbortController | None = None,
        executor: FlowRunner | None = None,
        on_event: EventListener | None = None,
        budget: Budget | None = None,
    ) -> Any:
        """Run the flow and return its final action.

        Args:
            ctx: the run's context (a fresh ``TypedContext`` when omitted).
            params: run params; they override the flow's own.
            logger: where retries, fallbacks and executor messages go (silent by default).
            signal: an ``AbortSignal`` that cancels the run; wins over ``controller``.
            controller: an ``AbortController`` whose signal cancels the run.
            executor: what runs the graph (``InMemoryExecutor`` by default).
            on_event: called with each run event (see ``EventStream``).
            budget: limits of the run ([`Budget`][flowcraft.Budget]): node runs, seconds,
                costs the nodes meter.

        Raises:
            TypeError: ``ctx`` is not a ``Context``, ``signal`` not an ``AbortSignal``,
                ``controller`` not an ``AbortController``, or ``logger`` lacks the logger
                methods (checked before anything runs; the message says what to pass).
            AbortError: the run was aborted.
            BudgetExceededError: the run used up a limit of its budget.
            WorkflowError: a node failed (names the node and phase).
        """
        runner = executor if executor is not None else DEFAULT_EXECUTOR
        if ctx is not None and type(ctx) is not TypedContext and not isinstance(ctx, Context):
            raise TypeError(_bad_context(ctx))
        if (
            params is None and logger is None and signal is None and controller is None and on_event is None
            and budget is None
        ):  # fmt: skip
            return await runner.run(self, ctx, None)
        _check_run_options(signal, controller, logger)
        options = RunOptions(
            params=params, logger=logger, signal=signal, controller=controller, executor=executor, on_event=on_event,
            budget=budget,
        )  # fmt: skip
        return await runner.run(self, ctx, options)

    def run_sync(self, ctx: Context | None = None, **options: Any) -> Any:
        """Run the flow from synchronous code (a script); same options as [`run`][flowcraft.Flow.run].

        Raises:
            EventLoopRunningError: called while an event loop is running in this thread.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.run(ctx, **options))
        raise EventLoopRunningError(
            f"{type(self).__name__}.run_sync() was called inside a running event loop; use `await flow.run(...)` there."
        )

    def get_node_by_id(self, id: str | int) -> AbstractNode | None:  # noqa: A002
        """The first node of the graph (breadth-first from the start) whose id is ``id``."""
        return next((node for node in self._nodes() if node.id == id), None)

    def get_all_nodes(self) -> set[AbstractNode]:
        """Every node reachable from the start node (parallel branches included)."""
        return set(self._nodes())

    def _nodes(self) -> Iterator[AbstractNode]:
        # local import: graph traversal loads on first use (import time)
        from .topology import iter_reachable

        return iter_reachable([self.start_node]) if self.start_node is not None else iter(())


def _bad_context(ctx: object) -> str:
    kind = type(ctx).__name__
    hint = f"TypedContext({ctx!r})" if isinstance(ctx, dict) else "TypedContext() or your own Context implementation"
    methods = "get/set/has/delete/update/keys/values/entries/to_dict"
    return f"run(): ctx must be a Context ({methods}), got {kind}: pass {hint}"


def _check_run_options(signal: object, controller: object, logger: object) -> None:
    """The ``TypeError`` for a ``signal``, ``controller`` or ``logger`` of the wrong kind."""
    if signal is not None and not isinstance(signal, AbortSignal):
        hint = (
            "pass signal=controller.signal, or controller=controller"
            if isinstance(signal, AbortController)
            else "pass an AbortController's .signal"
        )
        raise TypeError(f"run(): signal= must be an AbortSignal, got {type(signal).__name__}: {hint}")
    if controller is not None and not isinstance(controller, AbortController):
        hint = (
            "pass it as signal=, or pass the AbortController that owns it as controller="
            if isinstance(controller, AbortSignal)
            else "pass an AbortController(), or its .signal as signal="
        )
        raise TypeError(f"run(): controller= must be an AbortController, got {type(controller).__name__}: {hint}")
    stdlib = sys.modules.get("logging")  # a logging.Logger exists only once logging is loaded
    is_stdlib = stdlib is not None and isinstance(logger, stdlib.Logger)
    if logger is not None and (is_stdlib or not isinstance(logger, Logger)):
        hint = (
            "wrap a standard library logger as StdlibLogger(logger)"
            if is_stdlib
            else "pass ConsoleLogger(), StdlibLogger(logging.getLogger(...)), or an object with those methods"
        )
        raise TypeError(
            f"run(): logger= must have debug/info/warn/error(message, **context) methods, "
            f"got {type(logger).__name__}: {hint}"
        )


class _NodeRunner(Flow):
    """The flow behind ``Node.run``: runs one node's lifecycle once, not its successors."""

    def __init__(self, node: AbstractNode) -> None:
        super().__init__()
        self.node = node

    async def exec(self, args: NodeArgs[Any, Any]) -> Any:
        """Run the node (with its own params and the executor's ``run_node``); its action."""
        outcomes = await executor_of(args).run_batch(self, self.node, [{}], args, concurrent=False)
        return outcomes[0].action
