"""Fan-in for in-memory parallel blocks.

When a parallel block runs, its branches walk on concurrently. A node that more than
one branch can reach (a *join*) runs once: each arriving branch stops there, and the
last expected arrival carries on with the join. Which nodes are joins, how many
arrivals each waits for, and when a waiting join is released early all come from the
one fan-in rule, `flowcraft.topology.fan_in`, applied to the outermost block of
the walk — the job engine applies the same rule to a whole run.

A predecessor may never arrive (it took another action, or it ended the run). Each
running branch keeps a `Cursor` on the node it is at; when a branch ends, the
gate asks the rule which waiting joins no running branch and no other waiting join can
still reach, and releases them.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from ..actions import DEFAULT_ACTION
from ..node import ASYNC, NodeArgs
from .base import PARKED

if TYPE_CHECKING:
    from ..loggers import Logger
    from ..node import AbstractNode, Node
    from ..topology import FanIn
    from .base import WalkScope
    from .in_memory import InMemoryExecutor

__all__ = ["PARKED", "Activation", "JoinGate"]


_COUNTS_CACHE_ATTR = "_flowcraft_join_counts"


def _fan_in(block: AbstractNode, logger: Logger | None = None) -> FanIn[AbstractNode]:
    """The block's fan-in, recomputed only when a node reachable from it was rewired.

    When it is (re)computed, a node that runs twice ([`double_visits`][flowcraft.topology.double_visits])
    is reported to ``logger`` as a warning.
    """
    # local import: the fan-in rule loads with the first parallel block (import time)
    from ..topology import describe_double_visit, double_visits, iter_reachable, node_fan_in, wiring_stamp

    cached: tuple[tuple[AbstractNode, ...], int, FanIn[AbstractNode]] | None = block.__dict__.get(_COUNTS_CACHE_ATTR)
    if cached is not None:
        nodes, stamp, fan = cached
        if wiring_stamp(nodes) == stamp:
            return fan
    nodes = tuple(iter_reachable([block]))
    fan = node_fan_in(block)
    object.__setattr__(block, _COUNTS_CACHE_ATTR, (nodes, wiring_stamp(nodes), fan))
    if logger is not None:
        for node, inner in double_visits([block]):
            logger.warn(describe_double_visit(node, inner), node=node.id)
    return fan


class Cursor:
    """The node a running branch walk is at (updated by the walk as it goes)."""

    __slots__ = ("node",)

    def __init__(self, node: AbstractNode) -> None:
        self.node = node


class JoinGate:
    """Fan-in bookkeeping shared by every branch of one outermost parallel activation."""

    __slots__ = ("activations", "active", "arrivals", "expected", "fan", "root")

    def __init__(self, block: AbstractNode, logger: Logger | None = None) -> None:
        self.fan = _fan_in(block, logger)
        self.expected = self.fan.expected
        self.arrivals: dict[AbstractNode, set[AbstractNode]] = {}
        self.active = 0
        """Branches running in any activation of the gate (a nested block's own branch,
        waiting for its inner ones, does not count)."""
        self.activations: list[Activation] = []
        self.root: Activation | None = None

    def arrive(self, node: AbstractNode, source: AbstractNode) -> bool:
        """Record that ``source`` handed control to ``node``; ``True`` if the caller goes on with it.

        A join counts distinct sources: one that arrives twice (a node listed twice in a
        block, a nested block run twice) counts once. ``Activation._on_done`` does the same
        inline for a direct node (change both together).
        """
        expected = self.expected.get(node)
        if expected is None:
            return True
        arrived = self.arrivals.get(node)
        if arrived is None:
            arrived = self.arrivals[node] = set()
        arrived.add(source)  # the node, not id(source): no int per arrival (~500 instructions, callgrind)
        if len(arrived) >= expected:
            del self.arrivals[node]
            return True
        return False

    def admit(self, nodes: Sequence[AbstractNode], source: AbstractNode) -> list[AbstractNode]:
        """`arrive` for each of ``nodes`` from ``source``: those the caller goes on with."""
        expected = self.expected
        # one call for the block's branches, not one per branch (branches are seldom joins)
        return [node for node in nodes if node not in expected or self.arrive(node, source)]

    def started(self, count: int = 1) -> None:
        """``count`` branches started running."""
        self.active += count

    def stopped(self) -> bool:
        """A branch stopped running (it ended, or it waits for the inner branches of a nested
        block); ``True`` when no branch runs any more (`quiescent`)."""
        self.active -= 1
        return self.active == 0

    @property
    def quiescent(self) -> bool:
        """No branch runs any more."""
        return self.active == 0

    def release(self, *, quiescent: bool) -> list[AbstractNode]:
        """Waiting joins that can get no further arrival (``quiescent``: nothing runs any
        more), by `FanIn.releasable`."""
        waiting = list(self.arrivals)
        running: list[AbstractNode] = []
        if not quiescent:  # where each running branch is (a walk's cursor, or a direct node's args)
            running = [at.node for a in self.activations for at in a.tasks.values() if at.node is not None]
        ready = self.fan.releasable(waiting, running)
        for node in ready:
            del self.arrivals[node]
        return ready


class Activation:
    """One run of a parallel block: starts its branches, waits for them, fails fast.

    A branch at a plain node (``Node.run_lifecycle`` not overridden, no ``prep``, an
    ``async def exec`` with a single attempt, no ``async def post``) in a walk that nothing
    wraps (no middleware, events or budget; ``direct``) runs as that node's ``exec``
    coroutine itself: ``post``, the successor lookup and the join count happen in the
    task's done-callback, which starts the successor the same way (or as a walk). That
    is a coroutine and a few GC-tracked objects less per branch: K=10k branches sleeping
    10 ms against ``gather``, 1.25x → 1.13-1.16x (same-run A/B, benchmarks/floors.py), and
    ~450 B less per branch at the peak (tracemalloc).

    A branch now keeps as many GC-tracked objects alive as a ``gather`` child (12 at the
    peak; the args record stands in for ``gather``'s second context copy), so what is left
    is Python calls: launching counts the branches once and makes their tasks with the
    ``Task`` class, and the done-callback calls `_post`, `_fill` and `_settle` only when
    they have work. Together (issue 18, round two), CPU instructions per K=10k run
    (callgrind): 1151-1181M → 1013-1115M, ``gather`` 999M; collector paused, 984M → 951M,
    ``gather`` 857M.

    With the branches meeting at a join of the graph (W2's fan-in), each arrival costs more
    than a branch that ends: the join counts the arriving nodes themselves (no ``id`` int
    per branch), and a direct branch counts itself inline (`_on_done`). With the generic
    alias ``cast`` once built per branch in `_launch` gone too (issue 18, round three),
    CPU instructions per K=10k run with the fan-in join (callgrind, same harness):
    1078M → 1046-1048M, ``gather`` 1000M; collector paused, 907M → 880M, ``gather`` 853M.
    The done-callback then took 0.94 µs per branch; with the direct node's step written in
    it (no ``_advance`` call) and one ``task.result()`` for a branch that returned, 0.77 µs
    (issue 18, round four; timed around the callback, same machine, alternating).
    """

    __slots__ = (
        "direct", "done", "executor", "gate", "limit", "live", "loop", "nested", "new_task", "on_done", "pending",
        "results", "scope", "tasks",
    )  # fmt: skip

    def __init__(
        self,
        executor: InMemoryExecutor,
        scope: WalkScope,
        gate: JoinGate,
        limit: int | None,
        nested: bool,
        direct: bool = False,
    ) -> None:
        self.executor = executor
        self.scope = scope
        self.gate = gate
        self.pending: deque[AbstractNode] = deque()
        self.limit = limit
        self.live = 0
        self.tasks: dict[asyncio.Task[Any], Cursor | NodeArgs[Any, Any]] = {}
        """Each running branch's task and where it is: the walk's cursor, or the args of
        the node whose ``exec`` is the task (both have ``.node``)."""
        self.results: list[Any] = []
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[list[Any]] = self.loop.create_future()
        self.nested = nested
        self.direct = direct
        """Nothing wraps the nodes and the executor walks as `InMemoryExecutor` does: plain
        nodes may run as their ``exec`` task (see the class docstring)."""
        # One bound method for every branch's done-callback, not one per branch
        # (a GC-tracked object less per branch).
        self.on_done = self._on_done
        # The Task class itself, not ``loop.create_task`` (a Python frame less per task),
        # unless the loop has a task factory of its own: ~0.3 µs less per branch.
        self.new_task: Callable[..., asyncio.Task[Any]] = (
            asyncio.Task if self.loop.get_task_factory() is None else self._factory_task
        )

    async def run(self, block: AbstractNode, branches: Sequence[AbstractNode]) -> list[Any]:
        """Run ``branches`` (entered from ``block``) to completion; the walks' final actions."""
        gate = self.gate
        if self.nested:
            gate.stopped()  # the block's own branch waits for the inner ones
        else:
            gate.root = self
        gate.activations.append(self)
        try:
            self.pending.extend(gate.admit(branches, block))
            self._fill()
            self._settle()
            try:
                return await self.done
            except BaseException:
                await self._cancel_all()
                raise
        finally:
            gate.activations.remove(self)

    def spawn(self, node: AbstractNode) -> None:
        """Start walking from ``node`` as one more branch of this activation."""
        self.live += 1
        self.gate.started()
        self._launch(node, None)

    def _factory_task(self, coro: Coroutine[Any, Any, Any], *, loop: Any, context: contextvars.Context) -> Any:
        """``loop.create_task`` with the signature of ``asyncio.Task`` (a loop with a task factory)."""
        return loop.create_task(coro, context=context)

    def _launch(self, node: AbstractNode, incoming: Any) -> None:
        """Start the task of a running branch at ``node`` (entered with action ``incoming``)."""
        scope = self.scope
        signal = scope.signal
        name, inline, prep_mode, exec_mode, post_mode = node._walk_plan
        # One context for the task and its done-callback: a direct node's post (run by the
        # callback) sees what its exec set in context variables, as it would in a walk.
        context = contextvars.copy_context()
        task: asyncio.Task[Any]
        direct = self.direct and inline and not prep_mode and exec_mode is ASYNC and post_mode is not ASYNC
        if direct and not signal.aborted:
            # Slot writes instead of the 12-argument NodeArgs(...) call, as in InMemoryExecutor.walk.
            args: NodeArgs[Any, Any] = object.__new__(NodeArgs)
            args.ctx = scope.ctx
            own = node.params
            args.params = {**scope.params, **own} if own else scope.params
            args.signal = signal
            args.logger = scope.logger
            args.prep_res = args.exec_res = args.error = None
            args.name = name
            args.executor = self.executor
            args.node = node
            args.scope = scope
            args.incoming_action = incoming
            plain: Node[Any, Any, Any] = node  # type: ignore[assignment]
            # A coroutine (exec_mode is ASYNC). Not cast(Coroutine[Any, Any, Any], ...): building
            # that generic alias cost ~1,900 CPU instructions per branch (callgrind, K=10k fan-in).
            coro: Any = plain.exec(args)
            task = self.new_task(coro, loop=self.loop, context=context)
            self.tasks[task] = args
        else:
            cursor = Cursor(node)
            coro = self.executor.walk(node, scope, cursor, incoming=incoming)
            task = self.new_task(coro, loop=self.loop, context=context)
            self.tasks[task] = cursor
        task.add_done_callback(self.on_done, context=context)

    def _fill(self) -> None:
        """Start as many pending branches as the limit lets run."""
        pending, limit = self.pending, self.limit
        count = len(pending) if limit is None else min(len(pending), limit - self.live)
        if count <= 0:
            return
        # counted once for all, then launched (not `spawn` each): two calls less per branch
        self.live += count
        self.gate.started(count)
        for _ in range(count):
            self._launch(pending.popleft(), None)

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        """A branch's task ended. A direct node's ``exec`` ran as the task: its ``post``,
        successor lookup and join count happen here, and the branch goes on in a new task."""
        at = self.tasks.pop(task)
        if self.done.done():  # failed fast (or cancelled) already: only the counts
            self._stopped()
            return
        try:
            action = task.result()  # one call, not cancelled() + exception() + result() first
        except BaseException:
            self._raised(task, at)
            return
        # The direct node's step inline, and `_stopped` below too: 0.94 -> 0.77 µs per
        # branch callback (K=10k fan-in, same run, alternating).
        if type(at) is NodeArgs:
            node: AbstractNode = at.node  # type: ignore[assignment]
            at.exec_res = action
            if at.signal.aborted or node._walk_plan[4]:  # `_post` only with an abort to raise or a post to run
                try:
                    action = self._post(at)
                except Exception as error:
                    self._stopped()
                    self._fail(error)
                    return
            else:
                action = DEFAULT_ACTION
            try:  # `_successor`, inline
                bucket = node.successors.get(action)
            except TypeError:  # an unhashable action (a collection helper's list) has no successors
                bucket = None
            if bucket:
                successor = bucket[0]
                gate = self.gate
                expected = gate.expected.get(successor)
                if expected is None:
                    self._launch(successor, action)
                    return
                arrivals = gate.arrivals  # `JoinGate.arrive`, inline
                arrived = arrivals.get(successor)
                if arrived is None:
                    arrived = arrivals[successor] = set()
                arrived.add(node)
                if len(arrived) >= expected:
                    del arrivals[successor]
                    self._launch(successor, action)
                    return
                action = PARKED
        self.live -= 1
        gate = self.gate
        gate.active -= 1
        if action is not PARKED:
            self.results.append(action)
            if gate.arrivals and gate.active:  # a branch ended elsewhere: can a join still fill?
                root = gate.root
                assert root is not None
                for join in gate.release(quiescent=False):
                    root.spawn(join)
        # Each only when it has work (a branch waits for a slot; nothing runs here or
        # anywhere): two calls less per branch.
        if self.pending:
            self._fill()
        if not gate.active or not self.live:
            self._settle()

    def _stopped(self) -> None:
        """A branch of this activation stopped running (`JoinGate.stopped` inlined)."""
        self.live -= 1
        self.gate.active -= 1

    def _raised(self, task: asyncio.Task[Any], at: Cursor | NodeArgs[Any, Any]) -> None:
        """A branch's task was cancelled or raised: a direct node's fallback runs as a walk,
        anything else fails the activation fast."""
        if task.cancelled():
            self._stopped()
            self.done.cancel()
            return
        error = task.exception()
        assert error is not None
        if type(at) is NodeArgs and isinstance(error, Exception):  # its fallback (or the wrapped error) as a walk
            cursor = Cursor(at.node)  # type: ignore[arg-type]
            resumed = self.loop.create_task(self._exec_failed(at, error, cursor))
            self.tasks[resumed] = cursor
            resumed.add_done_callback(self.on_done)
            return
        self._stopped()
        self._fail(error)

    def _fail(self, error: BaseException) -> None:
        """Fail fast: the activation raises ``error`` and every other branch is cancelled."""
        self.done.set_exception(error)
        for other in self.tasks:
            other.cancel()

    def _post(self, args: NodeArgs[Any, Any]) -> Any:
        """After a direct node's ``exec``: the abort check and its (sync) ``post``; the action."""
        signal = args.signal
        if signal.aborted:
            raise signal.error()
        node: Node[Any, Any, Any] = args.node  # type: ignore[assignment]
        action = None
        if node._walk_plan[4]:
            try:
                action = node.post(args)
            except Exception as error:
                wrapped = node._wrap_error(error, "post")
                raise wrapped from wrapped.__cause__
        return DEFAULT_ACTION if action is None else action

    async def _exec_failed(self, args: NodeArgs[Any, Any], error: Exception, cursor: Cursor) -> Any:
        """A direct node's ``exec`` raised ``error``: its fallback and the rest of the
        branch's walk, as ``InMemoryExecutor.walk`` would have run them."""
        node: Node[Any, Any, Any] = args.node  # type: ignore[assignment]
        args.exec_res = await node._exec_failed(args, error)
        action = self._post(args)
        successor = _successor(node, action)
        if successor is None:
            return action
        if not self.gate.arrive(successor, node):
            return PARKED
        return await self.executor.walk(successor, self.scope, cursor, incoming=action)

    def _settle(self) -> None:
        gate = self.gate
        finishing = self.live == 0 and not self.pending
        if gate.quiescent and gate.arrivals and not (self.nested and finishing):
            root = gate.root
            assert root is not None
            for node in gate.release(quiescent=True):
                root.spawn(node)
            finishing = self.live == 0 and not self.pending
        if finishing and not self.done.done():
            if self.nested:
                gate.started()  # the block's own branch goes on
            self.done.set_result(self.results)

    async def _cancel_all(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)


def _successor(node: AbstractNode, action: Any) -> AbstractNode | None:
    """The first successor for ``action`` (as the walk's inlined lookup)."""
    try:
        bucket = node.successors.get(action)
    except TypeError:  # an unhashable action (a collection helper's list) has no successors
        return None
    return bucket[0] if bucket else None
