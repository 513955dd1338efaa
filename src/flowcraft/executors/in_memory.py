"""The default executor: runs a flow's graph in this process, on the running event loop."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..abort import NEVER_ABORTED
from ..actions import DEFAULT_ACTION
from ..context import Context, TypedContext
from ..errors import AbortError, BudgetExceededError, FatalWorkflowError
from ..middleware import AsyncMiddleware, Middleware, NextFn, chain_head, compose_middleware
from ..node import ASYNC, AbstractNode, Node, NodeArgs, record_replace
from .base import PARKED, BatchOutcome, RunOptions, WalkScope, resolve_options

if TYPE_CHECKING:
    from ..abort import AbortSignal
    from ..budget import Budget, BudgetMeter
    from ..events import EventEmitter
    from ..flow import Flow
    from .joins import Cursor

__all__ = ["DEFAULT_EXECUTOR", "BatchOutcome", "InMemoryExecutor"]


class InMemoryExecutor:
    """Runs flows in this process. Stateless: one instance can run many flows at once.

    Subclass and override [`run_node`][flowcraft.InMemoryExecutor.run_node] to observe or change how each node runs.
    """

    async def run(self, flow: Flow, context: Context | None = None, options: RunOptions | None = None) -> Any:
        """Run ``flow`` and return its final action (raises ``AbortError`` if aborted)."""
        if not isinstance(flow, AbstractNode) or not flow.holds_graph:
            raise TypeError(f"{type(self).__name__}.run() expects a Flow, got {type(flow).__name__}: {flow!r}")
        ctx = context if context is not None else TypedContext()
        params, signal, logger = resolve_options(flow, options)
        listener = options.on_event if options is not None else None
        events = None
        if listener is not None:
            # local import: run events load on first use, keeping `import flowcraft` cheap
            from ..events import EventEmitter

            events = EventEmitter(listener, logger)
        budget = options.budget if options is not None else None
        if budget is not None:
            return await self._run_metered(flow, ctx, params, signal, logger, events, budget)
        scope = WalkScope(ctx, params, signal, logger, self, chain=self.chain_for((), events), events=events)
        args: NodeArgs[Any, Any] = NodeArgs(
            ctx, params, signal, logger, name=flow.name, executor=self, node=flow, scope=scope
        )
        if events is None:
            action = await self.run_node(args)
            signal.throw_if_aborted()
            return action
        return await _observe_run(events, flow, params, self.run_node(args), signal)

    def budget_meter(self, budget: Budget, events: EventEmitter | None) -> BudgetMeter:
        """The meter of one run with ``budget`` (override to keep the usage elsewhere)."""
        # local import: budgets load on first use, keeping `import flowcraft` cheap
        from ..budget import MemoryBudget

        return MemoryBudget(budget, on_exceeded=events.budget_exceeded if events is not None else None)

    async def _run_metered(
        self,
        flow: Flow,
        ctx: Context,
        params: dict[str, Any],
        outer: AbortSignal,
        logger: Any,
        events: EventEmitter | None,
        budget: Budget,
    ) -> Any:
        """A run with a budget: its signal also aborts when a limit is exceeded (in-flight
        nodes stop), and that ends the run with the
        [`BudgetExceededError`][flowcraft.executors.in_memory.BudgetExceededError]."""
        meter = self.budget_meter(budget, events)
        signal = meter.controller.signal
        link = meter.controller.abort
        outer.add_listener(link)
        left = meter.time_left()
        timer = asyncio.get_running_loop().call_later(max(0.0, left), meter.expire) if left is not None else None
        scope = WalkScope(
            ctx, params, signal, logger, self, chain=self.chain_for((), events, meter), events=events, budget=meter
        )
        args: NodeArgs[Any, Any] = NodeArgs(
            ctx, params, signal, logger, name=flow.name, executor=self, node=flow, scope=scope
        )

        async def metered() -> Any:
            try:
                await meter.admit(flow)  # the deadline, before anything runs
                action = await self.run_node(args)
                signal.throw_if_aborted()
                return action
            except (AbortError, FatalWorkflowError) as error:
                stopped = meter.error
                if stopped is None or isinstance(error, BudgetExceededError):
                    raise
                raise BudgetExceededError(
                    stopped.kind, stopped.limit, stopped.used, stopped.node_id, usage=stopped.usage
                ) from error

        try:
            if events is None:
                return await metered()
            return await _observe_run(events, flow, params, metered(), signal)
        finally:
            outer.remove_listener(link)
            if timer is not None:
                timer.cancel()

    async def run_node(self, args: NodeArgs[Any, Any]) -> Any:
        """Run one node's lifecycle (the innermost step of the middleware chain)."""
        node = args.node
        assert node is not None
        return await node.run_lifecycle(args)

    def get_next_node(self, curr: AbstractNode, action: Any) -> AbstractNode | None:
        """The node to run after ``curr`` returned ``action`` (``None`` ends the walk).

        The one successor lookup of in-memory walks (every node, every branch); the
        default is the first successor registered for ``action``. Override to route
        differently.
        """
        # first_successor() inlined: one call per node instead of two
        try:
            bucket = curr.successors.get(action)
        except TypeError:  # an unhashable action (a collection helper's list) has no successors
            return None
        return bucket[0] if bucket else None

    async def walk(
        self,
        node: AbstractNode | None,
        scope: WalkScope,
        cursor: Cursor | None = None,
        *,
        incoming: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """Run from ``node`` along the returned actions until no successor is left.

        Returns the last action, or ``PARKED`` when the walk stopped at a waiting join.
        ``cursor`` (branches of a parallel block) is kept on the node being run;
        ``incoming`` is the action that led to ``node`` (its ``args.incoming_action``);
        ``params``, when given, replaces ``scope.params`` (a batch item's sub-flow).
        """
        chain, gate, signal, ctx, logger = scope.chain, scope.gate, scope.signal, scope.ctx, scope.logger
        # The chain's outermost middleware called here, without its link's frame (~0.03 µs per node)
        head_mw: AsyncMiddleware | None = None
        head_next: NextFn = _run_lifecycle
        if chain is not None and (head := chain_head(chain)) is not None:
            head_mw, head_next = head
        new_args, refs, sole = object.__new__, sys.getrefcount, _SOLE_OWNER_REFS
        if params is None:
            params = scope.params
        routed = type(self).get_next_node is not InMemoryExecutor.get_next_node
        action: Any = incoming
        args: NodeArgs[Any, Any] | None = None
        while node is not None:
            if signal.aborted:
                raise signal.error()
            if cursor is not None:
                cursor.node = node
            own = node.params
            name, inline, prep_mode, exec_mode, post_mode = node._walk_plan
            # Slot writes instead of the 12-argument NodeArgs(...) call: ~0.07 µs less per node.
            # The previous node's args are rewritten (every field) when nothing but this
            # local holds them: ~0.06 µs less per node (0.40 -> 0.34, same run, alternating).
            if args is None or refs(args) > sole:
                args = new_args(NodeArgs)
            args.ctx = ctx
            args.params = {**params, **own} if own else params
            args.signal = signal
            args.logger = logger
            args.prep_res = args.exec_res = args.error = None
            args.name = name
            args.executor = self
            args.node = node
            args.scope = scope
            args.incoming_action = action
            if chain is not None:
                action = await (chain(args) if head_mw is None else head_mw(args, head_next))
            elif not inline:
                action = await node.run_lifecycle(args)
            else:  # Node.run_lifecycle's steps inline (change all four together): ~0.09 µs less per node
                plain: Node[Any, Any, Any] = node  # type: ignore[assignment]
                if prep_mode:
                    try:
                        result = plain.prep(args)
                        if prep_mode is ASYNC:
                            result = await result
                    except Exception as error:
                        wrapped = plain._wrap_error(error, "prep")
                        raise wrapped from wrapped.__cause__
                    args.prep_res = result
                    if signal.aborted:
                        raise signal.error()
                result = None
                try:
                    if exec_mode:
                        result = plain.exec(args)
                        if exec_mode is ASYNC:
                            result = await result
                except Exception as error:
                    result = await plain._exec_failed(args, error)
                args.exec_res = result
                if signal.aborted:
                    raise signal.error()
                action = None
                if post_mode:
                    try:
                        action = plain.post(args)
                        if post_mode is ASYNC:
                            action = await action
                    except Exception as error:
                        wrapped = plain._wrap_error(error, "post")
                        raise wrapped from wrapped.__cause__
            if action is None:
                action = DEFAULT_ACTION
            if routed:
                successor = self.get_next_node(node, action)
            else:  # get_next_node inlined: one call less per node (~0.05 µs)
                successors = node.successors
                if successors:  # (a walk's last node has none: no KeyError raised, ~0.2 µs)
                    try:
                        successor = successors[action][0]
                    except (KeyError, IndexError, TypeError):  # none (TypeError: an unhashable action)
                        successor = None
                else:
                    successor = None
            if gate is not None and successor is not None and not gate.arrive(successor, node):
                return PARKED
            node = successor
        return action

    # ---- scopes -------------------------------------------------------------------------

    def chain_for(
        self, middleware: Sequence[Middleware], events: EventEmitter | None = None, budget: BudgetMeter | None = None
    ) -> NextFn | None:
        """The composed middleware chain for a scope (``None``: call nodes directly).

        With a ``budget``, the chain admits each node first (``await budget.admit(node)``),
        so walks and batch items are metered without a check in their loops.
        """
        innermost: NextFn = _run_lifecycle
        if type(self).run_node is not InMemoryExecutor.run_node:
            innermost = self.run_node
        elif not middleware and events is None and budget is None:
            return None
        if events is not None:
            innermost = events.observe(innermost)
        chain = compose_middleware(middleware, innermost)
        return chain if budget is None else _admitting(budget, chain)

    def _scope_of(self, args: NodeArgs[Any, Any]) -> WalkScope:
        scope = args.scope
        if scope is not None and scope.executor is self:
            return scope
        budget = scope.budget if scope is not None else None
        chain = self.chain_for((), None, budget)
        signal = NEVER_ABORTED if args.signal is None else args.signal
        return WalkScope(args.ctx, args.params, signal, args.logger, self, chain=chain, budget=budget)

    def _block_scope(self, block: Flow, args: NodeArgs[Any, Any], **changes: Any) -> WalkScope:
        """The scope of a parallel or batch block: its parent's, plus its own middleware."""
        parent = self._scope_of(args)
        if block.middleware:
            middleware = parent.middleware + tuple(block.middleware)
            changes.update(middleware=middleware, chain=self.chain_for(middleware, parent.events, parent.budget))
        if args.params is not parent.params:
            changes["params"] = args.params
        scope: WalkScope = record_replace(parent, changes) if changes else parent
        return scope

    def run_subflow(self, flow: Flow, args: NodeArgs[Any, Any]) -> Coroutine[Any, Any, Any]:
        """Walk ``flow``'s graph as one node of an outer walk (await it for the last action).

        A sub-flow's walk has no join gate of its own, so it never stops parked.
        """
        parent = args.scope
        inherited = parent.inherited if parent is not None else ()
        events = parent.events if parent is not None else None
        budget = parent.budget if parent is not None else None
        middleware = inherited + tuple(flow.middleware)
        signal = NEVER_ABORTED if args.signal is None else args.signal  # None: never aborted
        scope = WalkScope(
            ctx=args.ctx,
            params=args.params,
            signal=signal,
            logger=args.logger,
            executor=self,
            middleware=middleware,
            inherited=inherited + tuple(flow.inherited_middleware),
            chain=self.chain_for(middleware, events, budget),
            events=events,
            budget=budget,
            job=parent.job if parent is not None else None,
        )
        return self.walk(flow.start_node, scope)

    async def run_parallel(
        self, block: Flow, branches: Sequence[AbstractNode], args: NodeArgs[Any, Any], limit: int | None = None
    ) -> list[Any]:
        """Walk ``branches`` concurrently with fan-in; the final actions of the walks that ended."""
        # local import: fan-in loads with the first parallel block (import time)
        from .joins import Activation, JoinGate

        parent = self._scope_of(args)
        nested = parent.gate is not None
        gate = parent.gate if parent.gate is not None else JoinGate(block, parent.logger)
        scope = self._block_scope(block, args, gate=gate)
        direct = scope.chain is None and self._plain_walk()
        return await Activation(self, scope, gate, limit, nested, direct).run(block, branches)

    def _plain_walk(self) -> bool:
        """Whether this executor walks and routes as `InMemoryExecutor` does (no override)."""
        kind = type(self)
        return kind.walk is InMemoryExecutor.walk and kind.get_next_node is InMemoryExecutor.get_next_node

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
        """Run ``node``'s lifecycle once per item of params.

        Sequentially, the first failure is raised; concurrently, every item runs and each
        failure is logged and reported in its [`BatchOutcome`][flowcraft.BatchOutcome].
        """
        scope = self._block_scope(block, args, gate=None)
        base = {**args.params, **node.params} if node.params else args.params
        signal, ctx, logger = scope.signal, scope.ctx, scope.logger
        run = node.run_lifecycle if scope.chain is None else scope.chain
        name, new_args = type(node).__name__, object.__new__
        # What each item runs, decided once: a plain node's lifecycle steps inline, a plain
        # Flow's inner walk straight from the item (see `_direct_subflow`), or the lifecycle.
        inline = scope.chain is None and node._walk_plan[1]
        subflow = inline and _direct_subflow(node) and self._plain_walk()
        plain: Node[Any, Any, Any] = node  # type: ignore[assignment]
        _, _, prep_mode, exec_mode, post_mode = node._walk_plan
        start = getattr(node, "start_node", None)

        async def run_item(index: int, item: Mapping[str, Any]) -> BatchOutcome:
            params = {**base, **item} if item else base
            try:
                if subflow:  # Flow.exec → run_subflow → walk, without the flow's args, scope and two frames
                    if signal.aborted:
                        raise signal.error()
                    try:
                        action = await self.walk(start, scope, params=params)
                    except Exception as error:  # the flow's fallback, as its lifecycle runs it
                        flow_args: NodeArgs[Any, Any] = NodeArgs(
                            ctx, params, signal, logger, name=name, executor=self, node=node, scope=scope
                        )
                        action = await plain._exec_failed(flow_args, error)
                    if signal.aborted:
                        raise signal.error()
                    return _outcome(BatchOutcome, (index, item, DEFAULT_ACTION if action is None else action, None))
                # The item's args, made when it runs, not up front (10k records alive at once
                # cost a GC pass); slot writes: ~0.07 µs less than NodeArgs(...).
                args: NodeArgs[Any, Any] = new_args(NodeArgs)
                args.ctx = ctx
                args.params = params
                args.signal = signal
                args.logger = logger
                args.prep_res = args.exec_res = args.error = args.incoming_action = None
                args.name = name
                args.executor = self
                args.node = node
                args.scope = scope
                if (inline or not concurrent) and signal.aborted:  # (else the lifecycle checks)
                    raise signal.error()
                # Node.run_lifecycle's steps (as in `walk`; change all three together): a coroutine
                # less per item, W3 batch 1.15x gather with it, 1.20-1.23x without (same run)
                if inline:
                    if prep_mode:
                        try:
                            result = plain.prep(args)
                            if prep_mode is ASYNC:
                                result = await result
                        except Exception as error:
                            wrapped = plain._wrap_error(error, "prep")
                            raise wrapped from wrapped.__cause__
                        args.prep_res = result
                        if signal.aborted:
                            raise signal.error()
                    result = None
                    try:
                        if exec_mode:
                            result = plain.exec(args)
                            if exec_mode is ASYNC:
                                result = await result
                    except Exception as error:
                        result = await plain._exec_failed(args, error)
                    args.exec_res = result
                    if signal.aborted:
                        raise signal.error()
                    action = None
                    if post_mode:
                        try:
                            action = plain.post(args)
                            if post_mode is ASYNC:
                                action = await action
                        except Exception as error:
                            wrapped = plain._wrap_error(error, "post")
                            raise wrapped from wrapped.__cause__
                else:
                    action = await run(args)
            except (AbortError, FatalWorkflowError):
                raise
            except Exception as error:
                if not concurrent:
                    raise
                message = f"Parallel batch item {index} failed: {type(error).__name__}: {error}"
                logger.error(message, item=index, error=error)
                return _outcome(BatchOutcome, (index, item, None, error))
            return _outcome(BatchOutcome, (index, item, DEFAULT_ACTION if action is None else action, None))

        if not concurrent:
            return [await run_item(index, item) for index, item in enumerate(items)]

        start_item = run_item
        if limit is not None:
            semaphore = asyncio.Semaphore(limit)

            async def run_limited(index: int, item: Mapping[str, Any]) -> BatchOutcome:
                async with semaphore:
                    return await run_item(index, item)

            start_item = run_limited

        loop = asyncio.get_running_loop()
        if loop.get_task_factory() is not None:  # the loop's own factory makes every item's task
            tasks = [loop.create_task(start_item(index, item)) for index, item in enumerate(items)]
        elif _EAGER:  # Python 3.12+: an item runs until its first real suspension as it is created
            tasks = [_Task(start_item(index, item), loop=loop, eager_start=True) for index, item in enumerate(items)]
        else:  # the Task itself: a `loop.create_task` frame less per item
            tasks = [_Task(start_item(index, item), loop=loop) for index, item in enumerate(items)]
        try:
            outcomes: list[BatchOutcome] = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
            raise
        return outcomes


def _sole_owner_refs() -> int:
    """What ``sys.getrefcount`` says of an object held by one local variable only (2 on
    CPython 3.11: the variable and the call's argument), measured, not assumed."""
    probe = object()
    return sys.getrefcount(probe)


_SOLE_OWNER_REFS = _sole_owner_refs()

_outcome = tuple.__new__  # BatchOutcome's fields as one tuple: ~0.1 µs per item less than BatchOutcome(...)

_EAGER = sys.version_info >= (3, 12)
_Task: Any = asyncio.Task  # eager_start= is a 3.12 keyword


def _direct_subflow(node: AbstractNode) -> bool:
    """Whether ``node`` is a plain `Flow` (a start node, no middleware, nothing of the
    lifecycle overridden): its batch items may walk its graph directly."""
    # local import: flow.py imports this module (the class is loaded by then)
    from ..flow import Flow

    if not isinstance(node, Flow):
        return False
    kind = type(node)
    return (
        node.start_node is not None
        and not node.middleware
        and not node.inherited_middleware
        and kind.exec is Flow.exec
        and kind.post is Flow.post
        and not kind._prep_mode
        and kind.exec_fallback is Node.exec_fallback
    )


async def _observe_run(
    events: EventEmitter, flow: AbstractNode, params: dict[str, Any], run: Any, signal: AbortSignal
) -> Any:
    """Await ``run`` (the top-level flow's lifecycle), emitting the run's start and end."""
    # local import: only runs with a listener get here (run events load on first use)
    from ..events import RunCancelled, RunFailed, RunFinished, RunStarted

    started = time.perf_counter()
    events.emit(RunStarted, flow=flow.name if flow.id is None else str(flow.id), params=dict(params))
    try:
        action = await run
        signal.throw_if_aborted()
    except (AbortError, asyncio.CancelledError) as error:
        reason = error.reason if isinstance(error, AbortError) else "task cancelled"
        events.emit(RunCancelled, reason=reason, duration=time.perf_counter() - started)
        raise
    except BaseException as error:
        events.emit(RunFailed, error=error, duration=time.perf_counter() - started)
        raise
    events.emit(RunFinished, action=action, duration=time.perf_counter() - started)
    return action


def _admitting(budget: BudgetMeter, chain: NextFn) -> NextFn:
    """``chain`` preceded by the budget's admission of the node (a metered run)."""

    async def admitted(args: NodeArgs[Any, Any]) -> Any:
        assert args.node is not None
        await budget.admit(args.node)
        return await chain(args)

    return admitted


async def _run_lifecycle(args: NodeArgs[Any, Any]) -> Any:
    """The innermost step of a middleware chain: ``args.node``'s lifecycle.

    A plain node's steps run here, as `InMemoryExecutor.walk` runs them inline (no
    function frame in front of ``node.run_lifecycle(args)``, and the modes read from the
    node's walk plan, not its class: ~0.1 µs less per node and chain, same run); any other
    node's ``run_lifecycle`` is awaited (a coroutine more for retrying, timed or custom
    nodes, whose lifecycles cost far more). ``Node.run_lifecycle``, the walk, its batch
    items and this step run the same steps: change all four together.
    """
    node: Node[Any, Any, Any] = args.node  # type: ignore[assignment]
    _, inline, prep_mode, exec_mode, post_mode = node._walk_plan
    signal = args.signal
    if not inline or signal is None:  # (None: "never aborted", as run_lifecycle reads it)
        return await node.run_lifecycle(args)
    if signal.aborted:  # (a middleware ran before: the walk's own check may be stale)
        raise signal.error()
    result: Any
    if prep_mode:
        try:
            result = node.prep(args)
            if prep_mode is ASYNC:
                result = await result
        except Exception as error:
            wrapped = node._wrap_error(error, "prep")
            raise wrapped from wrapped.__cause__
        args.prep_res = result
        if signal.aborted:
            raise signal.error()
    if exec_mode:
        try:
            result = node.exec(args)
            if exec_mode is ASYNC:
                result = await result
        except Exception as error:
            result = await node._exec_failed(args, error)
        args.exec_res = result
    else:
        args.exec_res = None
    if signal.aborted:
        raise signal.error()
    if not post_mode:
        return DEFAULT_ACTION
    try:
        action = node.post(args)
        if post_mode is ASYNC:
            action = await action
    except Exception as error:
        wrapped = node._wrap_error(error, "post")
        raise wrapped from wrapped.__cause__
    return DEFAULT_ACTION if action is None else action


DEFAULT_EXECUTOR = InMemoryExecutor()
"""The executor ``Flow.run`` uses when none is given (stateless, shared)."""
