"""Nodes: the unit of work and its three-phase lifecycle (``prep`` → ``exec`` → ``post``).

This module holds the lifecycle only; deciding what runs next is the executors' job.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from .abort import NEVER_ABORTED, AbortSignal
from .actions import DEFAULT_ACTION
from .errors import AbortError, FatalWorkflowError, NodeTimeoutError, WorkflowError

if TYPE_CHECKING:
    from .abort import AbortController
    from .budget import Budget, NodeBudget
    from .context import Context, ContextKey, ContextLens
    from .events import EventListener
    from .executors.base import Executor, FlowRunner, WalkScope
    from .loggers import Logger
    from .retry import RetryPolicy

__all__ = ["AbstractNode", "CallMode", "ExecNode", "Node", "NodeArgs", "PostNode", "PreNode"]

P = TypeVar("P")
E = TypeVar("E")
A = TypeVar("A")
NewE = TypeVar("NewE")
T = TypeVar("T")


def record_replace(record: Any, changes: dict[str, Any]) -> Any:
    """``dataclasses.replace(record, **changes)``: a new record, ``changes`` over its fields."""
    for name in record.__match_args__:
        if name not in changes:
            changes[name] = getattr(record, name)
    return record.__class__(**changes)


class DataclassInfo:
    """``__dataclass_fields__`` / ``__dataclass_params__`` of a ``Record``
    subclass, built on first read (then kept on that class): the records still work with
    `dataclasses.fields`, `dataclasses.replace` and `dataclasses.is_dataclass`, without
    `import flowcraft` importing `dataclasses` or running the decorator (~1 ms of the
    import's ~5.5 ms)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute = name

    def __get__(self, instance: object, cls: type | None = None) -> Any:
        import dataclasses  # local import: only code that asks for dataclass fields needs it

        owner: Any = cls if cls is not None else type(instance)
        defaults = owner.__init__.__defaults__ or ()  # the record's own __init__, as written
        names = owner.__match_args__
        namespace: dict[str, Any] = dict(zip(names[len(names) - len(defaults) :], defaults, strict=True))
        namespace.update(__annotations__=owner.__annotations__, __module__=owner.__module__)
        shadow: Any = dataclasses.dataclass(init=False, repr=False, eq=False)(type(owner.__name__, (), namespace))
        owner.__dataclass_fields__ = shadow.__dataclass_fields__
        owner.__dataclass_params__ = shadow.__dataclass_params__
        return getattr(owner, self.attribute)


class Record:
    """Base of the core's records (`NodeArgs`, `RunOptions`, `WalkScope`): plain slotted
    classes, their fields in ``__match_args__`` (also their ``__slots__``) and their
    ``__init__`` written out, with a dataclass's ``__repr__`` and ``__eq__``, that
    `dataclasses` functions accept (see ``DataclassInfo``)."""

    __slots__ = ()
    __match_args__: tuple[str, ...] = ()
    __dataclass_fields__ = DataclassInfo()
    __dataclass_params__ = DataclassInfo()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{type(self).__qualname__}({fields})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__match_args__)


class NodeArgs(Record, Generic[P, E]):
    """What lifecycle methods and middleware receive.

    One ``NodeArgs`` belongs to one run of one node: the lifecycle fills in ``prep_res``,
    ``exec_res`` and ``error`` as it goes. Middleware that wants a node to see something
    else passes a modified copy to ``next`` (``args.replace(params=...)``). Treat
    ``params`` as read-only: it may be shared with sibling nodes.
    """

    ctx: Context
    params: dict[str, Any]
    signal: AbortSignal
    """The run's abort signal. An executor may pass ``None``: it means "never aborted"
    (a node's lifecycle replaces it with a signal that never aborts)."""
    logger: Logger
    prep_res: P
    exec_res: E
    error: BaseException | None
    name: str
    executor: Executor | None
    """The executor walking this node's graph; flows, parallel blocks and batches call it
    for their inner walks. ``None`` (a lifecycle run by hand) means the default
    in-memory executor."""
    node: AbstractNode | None
    scope: WalkScope | None
    """What the nodes of this walk share: context, signal, middleware, events, fan-in
    (``None`` outside a walk)."""
    incoming_action: Any
    """The action of the node that handed control to this one (``None`` at a start)."""

    __match_args__ = (
        "ctx",
        "params",
        "signal",
        "logger",
        "prep_res",
        "exec_res",
        "error",
        "name",
        "executor",
        "node",
        "scope",
        "incoming_action",
    )  # the fields, in order
    __slots__ = __match_args__

    def __init__(
        self,
        ctx: Context,
        params: dict[str, Any],
        signal: AbortSignal,
        logger: Logger,
        prep_res: P = None,  # type: ignore[assignment]
        exec_res: E = None,  # type: ignore[assignment]
        error: BaseException | None = None,
        name: str = "",
        executor: Executor | None = None,
        node: AbstractNode | None = None,
        scope: WalkScope | None = None,
        incoming_action: Any = None,
    ) -> None:
        self.ctx = ctx
        self.params = params
        self.signal = signal
        self.logger = logger
        self.prep_res = prep_res
        self.exec_res = exec_res
        self.error = error
        self.name = name
        self.executor = executor
        self.node = node
        self.scope = scope
        self.incoming_action = incoming_action

    def replace(self, **changes: Any) -> NodeArgs[P, E]:
        """A copy with ``changes`` applied (same as `dataclasses.replace`)."""
        copy: NodeArgs[P, E] = record_replace(self, changes)
        return copy

    @property
    def budget(self) -> NodeBudget:
        """The run's [`Budget`][flowcraft.Budget] as this node sees it:
        ``await args.budget.charge("tokens", n)``, ``args.budget.remaining("tokens")``.

        A run without a budget gets an unlimited one (charges are checked and ignored).
        """
        # local import: budgets load on first use (import time)
        from .budget import UNLIMITED, NodeBudget

        scope = self.scope
        meter = scope.budget if scope is not None else None
        return UNLIMITED if meter is None else NodeBudget(meter, self.node)

    @property
    def resume_action(self) -> Any:
        """In the ``post`` of a [`WaitNode`][flowcraft.WaitNode] being resumed: the action
        given to ``resume`` (``DEFAULT_ACTION`` when none was given, or ``on_timeout`` when
        the wait expired). ``DEFAULT_ACTION`` elsewhere."""
        scope = self.scope
        job = scope.job if scope is not None else None
        action = job.resume_action if job is not None else None
        return DEFAULT_ACTION if action is None else action

    @property
    def idempotency_key(self) -> str | None:
        """``run_id:node_id:visit`` in a durable or distributed run: the same each time this
        node visit is re-run after a crash, different for every other visit. Pass it to an
        external API's idempotency header, or key a ledger with it, to make an effect
        exactly-once. Nodes that run inside another node's job (a sub-flow's, an
        in-process parallel block's) get that key plus ``/<node id>#<n>``, stable when
        they have ids or run one after another. ``None`` in an in-memory run."""
        scope = self.scope
        job = scope.job if scope is not None else None
        return job.key_for(self) if job is not None else None

    async def memo(self, key: str, fn: Callable[[], Any]) -> Any:
        """``fn()``'s result (awaited if it returns an awaitable), run once per node visit
        of a durable or distributed run: the JSON-encodable result is stored, and a re-run
        of this visit after a crash returns the stored value without calling ``fn``.
        In an in-memory run ``fn`` simply runs.

        Examples:
            ```python
            async def exec(self, args):
                return await args.memo("charge", lambda: payments.charge(order))
            ```
        """
        scope = self.scope
        job = scope.job if scope is not None else None
        if job is not None:
            return await job.memo(self, key, fn)
        result = fn()
        return await result if inspect.isawaitable(result) else result


class CallMode(enum.IntEnum):
    """How the lifecycle calls one phase of a node class; decided once per class."""

    SKIP = 0
    """Not overridden: the base phase does nothing, so it is not called (falsy)."""
    SYNC = 1
    """A plain ``def``: called."""
    ASYNC = 2
    """An ``async def``: called and awaited."""

    @classmethod
    def of(cls, fn: Any, default: Any) -> CallMode:
        """The mode of phase ``fn`` of a class whose base phase is ``default``."""
        if fn is default:
            return cls.SKIP
        return cls.ASYNC if inspect.iscoroutinefunction(fn) else cls.SYNC


# Module aliases for the hot paths: `CallMode.ASYNC` is an enum-class attribute lookup
# (~0.07 µs), `ASYNC` a global (~0.01 µs); `if mode:` skips a `SKIP` phase.
ASYNC = CallMode.ASYNC

WalkPlan = tuple[str, bool, CallMode, CallMode, CallMode]
"""``(class name, runs inline, prep mode, exec mode, post mode)``: see ``AbstractNode._walk_plan``."""


def _describe(node: AbstractNode) -> str:
    cls = type(node).__name__
    return cls if node.id is None else f"'{node.id}' ({cls})"


class AbstractNode:
    """The base of every node and flow: identity, params and successors.

    Subclasses implement [`run_lifecycle`][flowcraft.AbstractNode.run_lifecycle].
    """

    _wiring: int = 0  # wiring changes of this node (see topology.wiring_stamp)
    is_passthrough: ClassVar[bool] = False
    """Structural nodes (containers, joins) are passed through by every executor."""
    holds_graph: ClassVar[bool] = False
    """Whether ``exec`` walks an inner graph (flows, parallel blocks, batches): a dry
    run still runs it, so the whole path is visited."""
    is_structural: ClassVar[bool] = False
    """Wiring a graph compiler inserts (mappers, containers, joins): never counted as a
    node run by a [`Budget`][flowcraft.Budget]."""
    fires_on_first_arrival: ClassVar[bool] = False
    """A join of exclusive branches (a conditional join): it never waits for a second
    predecessor (see `flowcraft.topology.fan_in`)."""
    _walk_plan: WalkPlan = ("AbstractNode", False, CallMode.SKIP, CallMode.SKIP, CallMode.SKIP)
    """What a walk needs to know to run this node, read once per node: the class name,
    whether it may run ``Node.run_lifecycle``'s steps inline, and the prep/exec/post
    modes. Kept by ``__init_subclass__``, and copied onto each `Node` by
    ``Node.__setattr__`` when its options are set (its own plan when they need the retry
    loop); one tuple lookup instead of five class attributes: ~0.05 µs per node."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._walk_plan = (cls.__name__, False, CallMode.SKIP, CallMode.SKIP, CallMode.SKIP)

    @property
    def branches(self) -> tuple[AbstractNode, ...]:
        """The nodes this node starts as concurrent branches (a parallel block's); none by default."""
        return ()

    def __init__(self) -> None:
        self.id: str | int | None = None
        self.params: dict[str, Any] = {}
        self.successors: dict[Any, list[AbstractNode]] = {}
        """The nodes to run after this one, by action. Read it; change it with
        [`next`][flowcraft.AbstractNode.next]: maps are replaced, never changed in place,
        and nodes wired alike share one."""
        self.graph_data: Any = None

    @property
    def name(self) -> str:
        """The node's class name, as used in logs and ``NodeArgs.name``."""
        return type(self).__name__

    @property
    def original_id(self) -> str:
        """``graph_data.data["originalId"]`` when built from a graph, else ``str(id)``, else ``""``."""
        data = getattr(self.graph_data, "data", None)
        if isinstance(data, Mapping) and "originalId" in data:
            return str(data["originalId"])
        return "" if self.id is None else str(self.id)

    def with_id(self, id: str | int) -> AbstractNode:  # noqa: A002
        """Set the node's id; returns the node."""
        self.id = id
        return self

    def with_params(self, params: Mapping[str, Any] | None = None, /, **more: Any) -> AbstractNode:
        """Merge static params into the node's own; returns the node."""
        merged = dict(self.params)
        if params:
            merged.update(params)
        merged.update(more)
        self.params = merged
        return self

    def with_graph_data(self, graph_data: Any) -> AbstractNode:
        """Attach the graph node this node was built from; returns the node."""
        self.graph_data = graph_data
        return self

    def next(self, node: AbstractNode | Iterable[AbstractNode], action: Any = DEFAULT_ACTION) -> AbstractNode:
        """Add ``node`` (or each node of a list) as a successor for ``action``.

        Returns the (first) successor, so chains read ``a.next(b).next(c)``. A node
        already registered for that action is not added twice.
        """
        if isinstance(node, AbstractNode):
            nodes = [node]
        elif isinstance(node, Iterable) and not isinstance(node, (str, bytes, Mapping)):
            nodes = list(node)
        else:
            raise TypeError(
                f"{_describe(self)}.next() expects a node or a list of nodes, got {type(node).__name__}: {node!r}"
            )
        if not nodes:
            raise ValueError(f"{_describe(self)}.next() needs at least one node")
        for i, successor in enumerate(nodes):
            if not isinstance(successor, AbstractNode):
                where = "" if isinstance(node, AbstractNode) else f" (item {i})"
                raise TypeError(
                    f"{_describe(self)}.next() expects a node or a list of nodes, got "
                    f"{type(successor).__name__}{where}: {successor!r}"
                )
        try:
            hash(action)
        except TypeError:
            raise TypeError(f"{_describe(self)}.next(): action must be hashable, got {action!r}") from None
        current = self.successors
        bucket = list(current.get(action, ()))
        for successor in nodes:
            if successor not in bucket:
                bucket.append(successor)
        # Copy-on-write: the map is replaced, never changed in place, so nodes wired alike
        # share one (K branches each `.next(join)`: ~250 B less per branch).
        if not current and len(bucket) == 1:
            self.successors = _shared_map(self, action, bucket[0])
        else:
            self.successors = {**current, action: bucket}
        self._rewired()
        return nodes[0]

    def _rewired(self) -> None:
        """Count a change of this node's wiring (`_wiring`): private bookkeeping, set
        without ``__setattr__``, which no node class needs to see it through."""
        object.__setattr__(self, "_wiring", self._wiring + 1)

    async def run_lifecycle(self, args: NodeArgs[Any, Any], *, skip_exec: bool = False) -> Any:
        """Run this node's whole lifecycle once with ``args`` and return its action.

        ``skip_exec=True`` runs ``prep`` and ``post`` only (as a dry run does).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement run_lifecycle()")

    def __repr__(self) -> str:
        return f"<{type(self).__name__}{'' if self.id is None else f' id={self.id!r}'}>"


_last_wired: weakref.ref[AbstractNode] | None = None
"""The node whose successor map the next alike wiring may share (weak: keeps nothing alive)."""


def _shared_map(node: AbstractNode, action: Any, successor: AbstractNode) -> dict[Any, list[AbstractNode]]:
    """``{action: [successor]}`` for ``node``: the previous call's map when it asked for the
    same (a loop wiring many nodes to one join). A plain dict: walks index it on the
    specialised exact-dict path (a dict subclass made the chain ~7% slower per node)."""
    global _last_wired
    last = _last_wired() if _last_wired is not None else None
    if last is not None:
        shared = last.successors
        if len(shared) == 1:
            bucket = shared.get(action)
            if bucket is not None and len(bucket) == 1 and bucket[0] is successor:
                return shared
    _last_wired = weakref.ref(node)
    return {action: [successor]}


class Node(AbstractNode, Generic[P, E, A]):
    """A unit of work: ``prep`` reads, ``exec`` works (and is retried), ``post`` writes
    and returns the action.

    Lifecycle methods may be ``def`` or ``async def``; which is detected once per class.

    Args:
        max_retries: total number of ``exec`` attempts (≥ 1); shorthand for
            ``retry=RetryPolicy(max_attempts=max_retries, wait=wait)``.
        wait: seconds to sleep between attempts (abortable).
        timeout: seconds one ``exec`` attempt may take (``None`` = unbounded). Only an
            ``async def exec`` can be interrupted, so a timeout on a node whose ``exec``
            is a plain ``def`` is refused (``ValueError``).
        retry: a [`RetryPolicy`][flowcraft.RetryPolicy] (backoff, jitter, which errors to
            retry); giving it together with ``max_retries`` or ``wait`` is a ``ValueError``.
            ``node.max_retries`` and ``node.wait`` mirror it; setting either changes it.

    Sync (plain ``def``) lifecycle methods run on the event loop: while one runs, nothing
    else in the process does — parallel branches and batch items with sync methods run
    one after another. For blocking work, write ``async def exec`` and await
    ``asyncio.to_thread(...)``.

    Examples:
        ```python
        class Fetch(Node[str, dict, str]):
            async def prep(self, args):
                return await args.ctx.get("url")
            async def exec(self, args):
                return await http_get(args.prep_res)
            async def post(self, args):
                await args.ctx.set("page", args.exec_res)
                return "ok"
        ```
    """

    # How to call each phase, decided once per class (and kept current by __init_subclass__).
    _prep_mode: ClassVar[CallMode] = CallMode.SKIP
    _exec_mode: ClassVar[CallMode] = CallMode.SKIP
    _post_mode: ClassVar[CallMode] = CallMode.SKIP
    _fallback_mode: ClassVar[CallMode] = CallMode.SYNC
    _plain_lifecycle: ClassVar[bool] = True
    """``run_lifecycle`` is `Node`'s own (not overridden): walks may run its steps inline
    for a node with a single ``exec`` attempt and no timeout (one coroutine less each)."""
    _walk_plan: WalkPlan = ("Node", True, CallMode.SKIP, CallMode.SKIP, CallMode.SKIP)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._prep_mode = CallMode.of(cls.prep, Node.prep)
        cls._exec_mode = CallMode.of(cls.exec, Node.exec)
        cls._post_mode = CallMode.of(cls.post, Node.post)
        cls._fallback_mode = CallMode.of(cls.exec_fallback, None)
        cls._plain_lifecycle = cls.run_lifecycle is Node.run_lifecycle
        cls._walk_plan = cls._plan(cls._plain_lifecycle)

    @classmethod
    def _plan(cls, inline: bool) -> WalkPlan:
        return (cls.__name__, inline, cls._prep_mode, cls._exec_mode, cls._post_mode)

    retry: RetryPolicy | None = None
    """The retry policy (``None``: the ``max_retries``/``wait`` shorthand: a fixed wait,
    every error retried)."""

    def __init__(
        self,
        max_retries: int = 1,
        wait: float = 0.0,
        timeout: float | None = None,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        if (
            retry is None
            and timeout is None
            and type(max_retries) is int
            and max_retries == 1
            and type(wait) is float
            and wait == 0.0
            and type(self).__setattr__ in _DEFAULTS_UNOBSERVED
        ):
            _init_with_defaults(self)
            return
        super().__init__()
        if retry is not None and (max_retries != 1 or wait != 0.0):
            raise ValueError(
                f"{_describe(self)}: give either retry=RetryPolicy(...) or max_retries/wait (its shorthand), not both"
            )
        self.max_retries = max_retries
        self.wait = wait
        self.timeout = timeout
        if retry is not None:
            self.retry = retry

    # Validated on assignment so the builder's config and direct edits are checked too.
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _CHECKED_OPTIONS:
            value = _CHECKED_OPTIONS[name](self, value)
            if name == "retry":
                if value is not None:  # max_retries / wait mirror the policy
                    object.__setattr__(self, "max_retries", value.max_attempts)
                    object.__setattr__(self, "wait", value.wait)
            elif name != "timeout" and self.retry is not None:
                field = "max_attempts" if name == "max_retries" else "wait"
                import dataclasses  # local import: loaded already, by the RetryPolicy's module

                object.__setattr__(self, "retry", dataclasses.replace(self.retry, **{field: value}))
            object.__setattr__(self, name, value)
            cls = type(self)
            single = getattr(self, "max_retries", 1) == 1 and getattr(self, "timeout", None) is None
            # The plan kept on the node itself (its own when its exec needs the retry loop),
            # and `self.__dict__` never touched: reading it turns the node's attributes into
            # a real dict, which every walk then reads unspecialised (with the plan as an
            # instance value: chain 0.43 -> 0.37-0.39 µs/node, same run, alternating).
            plan = cls._plan(False) if cls._plain_lifecycle and not single else cls._walk_plan
            object.__setattr__(self, "_walk_plan", plan)
            return
        object.__setattr__(self, name, value)

    # ---- lifecycle hooks -------------------------------------------------------------

    def prep(self, args: NodeArgs[Any, Any]) -> P | Awaitable[P]:
        """Read what ``exec`` needs (usually from ``args.ctx``). Runs once."""
        return cast(P, None)

    def exec(self, args: NodeArgs[P, Any]) -> E | Awaitable[E]:
        """Do the isolated work with ``args.prep_res``. The only phase that is retried."""
        return cast(E, None)

    def post(self, args: NodeArgs[P, E]) -> A | Awaitable[A]:
        """Write results (``args.exec_res``) and return the action; ``None`` means default."""
        return cast(A, None)

    def exec_fallback(self, args: NodeArgs[P, Any]) -> E | Awaitable[E]:
        """Runs when every ``exec`` attempt failed (``args.error``); re-raises by default."""
        assert args.error is not None
        raise args.error

    # ---- the engine --------------------------------------------------------------------

    def _wrap_error(self, error: Exception, phase: str) -> Exception:
        if isinstance(error, (WorkflowError, AbortError)):
            return error
        label = _describe(self)
        return WorkflowError(
            f"Node {label} failed in {phase}: {type(error).__name__}: {error}",
            str(self.id) if self.id is not None else type(self).__name__,
            phase,
            error,
        )

    async def run_lifecycle(self, args: NodeArgs[Any, Any], *, skip_exec: bool = False) -> Any:
        """Run ``prep`` → ``exec`` (with retries, timeout, fallback) → ``post``; return the action."""
        # InMemoryExecutor.walk and its batch items run these same steps inline (see
        # `_walk_plan`), and so does the innermost step of its middleware chains
        # (`in_memory._run_lifecycle`): change all four together.
        signal = args.signal
        if signal is None:  # "never aborted" (a custom executor passing options.signal as is)
            signal = args.signal = NEVER_ABORTED
        elif signal.aborted:
            raise signal.error()
        result: Any
        mode = self._prep_mode
        if mode:
            try:
                result = self.prep(args)
                if mode is ASYNC:
                    result = await result
            except Exception as error:
                wrapped = self._wrap_error(error, "prep")
                raise wrapped from wrapped.__cause__
            args.prep_res = result
            if signal.aborted:
                raise signal.error()
        if not skip_exec:
            if self.max_retries == 1 and self.timeout is None:  # no retry loop
                result = None
                try:
                    mode = self._exec_mode
                    if mode:
                        result = self.exec(args)
                        if mode is ASYNC:
                            result = await result
                except Exception as error:
                    result = await self._exec_failed(args, error)
            else:
                try:
                    result = await self._exec_with_retries(args)
                except Exception as error:
                    wrapped = self._wrap_error(error, "exec")
                    raise wrapped from wrapped.__cause__
            args.exec_res = result
            if signal.aborted:
                raise signal.error()
        mode = self._post_mode
        if not mode:
            return DEFAULT_ACTION
        try:
            action: Any = self.post(args)
            if mode is ASYNC:
                action = await action
        except Exception as error:
            wrapped = self._wrap_error(error, "post")
            raise wrapped from wrapped.__cause__
        return DEFAULT_ACTION if action is None else action

    async def _exec_failed(self, args: NodeArgs[Any, Any], error: Exception) -> Any:
        """The single ``exec`` attempt raised ``error``: the fallback's result, or the
        (wrapped) error to raise."""
        if not isinstance(error, (AbortError, FatalWorkflowError)):
            try:
                return await self._fallback(args, error)
            except Exception as fallback_error:
                error = fallback_error
        wrapped = self._wrap_error(error, "exec")
        raise wrapped from wrapped.__cause__

    async def _attempt(self, args: NodeArgs[Any, Any]) -> Any:
        if self.timeout is None:
            result: Any = self.exec(args)
            return (await result) if self._exec_mode is ASYNC else result
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                result = self.exec(args)
                if self._exec_mode is ASYNC:
                    result = await result
                return result
        except TimeoutError as error:
            if not deadline.expired():
                raise
            raise NodeTimeoutError(
                f"Node {_describe(self)} exec attempt exceeded its timeout of {self.timeout} s",
                node_name=str(self.id) if self.id is not None else type(self).__name__,
                timeout=self.timeout,
            ) from error

    async def _exec_with_retries(self, args: NodeArgs[Any, Any]) -> Any:
        attempts = self.max_retries
        policy = self.retry
        signal = args.signal
        scope = args.scope
        meter = scope.budget if scope is not None else None
        # local import: clocks load on first use (import time)
        from .clock import current

        clock = current()
        attempt, elapsed_before = clock.retries_before(self)  # (0, 0.0) but for a resumed durable job
        started = clock.monotonic() - elapsed_before
        deadline = None
        if policy is not None and policy.max_elapsed is not None:
            deadline = started + policy.max_elapsed
        while True:
            attempt += 1
            if attempt > 1:
                signal.throw_if_aborted()
                if meter is not None:
                    await meter.check(self)
            try:
                return await self._attempt(args)
            except (AbortError, FatalWorkflowError):
                raise
            except Exception as error:
                if attempt >= attempts:
                    return await self._fallback(args, error, attempt)
                if policy is None:
                    delay = self.wait
                else:
                    if not policy.should_retry(error):
                        return await self._fallback(args, error, attempt, "is not retried by the node's RetryPolicy")
                    delay = policy.delay(attempt, error, clock)
                    if deadline is not None and clock.monotonic() + delay > deadline:
                        reason = f"another attempt would end past max_elapsed={policy.max_elapsed:g} s"
                        return await self._fallback(args, error, attempt, reason)
                args.logger.warn(
                    f"Attempt {attempt}/{attempts} failed for node {_describe(self)}; retrying in {delay:g} s",
                    node=self.id,
                    error=error,
                    attempt=attempt,
                    delay=delay,
                )
                if scope is not None and scope.events is not None:
                    scope.events.retry(self, attempt=attempt, max_attempts=attempts, error=error, wait=delay)
                if delay > 0:
                    await clock.retry_sleep(
                        delay, signal, node=self, attempt=attempt, elapsed=clock.monotonic() - started
                    )

    async def _fallback(
        self, args: NodeArgs[Any, Any], error: Exception, attempts: int | None = None, stopped: str = ""
    ) -> Any:
        if stopped:
            message = f"Attempt {attempts} of node {_describe(self)} failed and {stopped}; running exec_fallback"
        else:
            message = f"All {self.max_retries} attempt(s) failed for node {_describe(self)}; running exec_fallback"
        args.logger.error(message, node=self.id, error=error)
        args.signal.throw_if_aborted()
        args.error = error
        scope = args.scope
        if scope is not None and scope.events is not None and type(self).exec_fallback is not Node.exec_fallback:
            scope.events.fallback(self, error=error)
        result: Any = self.exec_fallback(args)
        if self._fallback_mode is ASYNC:
            result = await result
        return result

    # ---- standalone run and fluent helpers ----------------------------------------------

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
        """Run this node alone (wrapped in a flow); takes the same options as ``Flow.run``.

        Successors are not followed; a warning goes to the logger when there are some.
        """
        # local import: Flow is a Node subclass; running a node alone wraps it in one
        from .flow import _NodeRunner

        if self.successors and logger is not None and not self.holds_graph:
            logger.warn(
                f"Node.run() called on {_describe(self)}, which has successors; they will not run. "
                "Put the nodes in a Flow to run the graph."
            )
        wrapper = _NodeRunner(self)
        return await wrapper.run(
            ctx,
            params=params,
            logger=logger,
            signal=signal,
            controller=controller,
            executor=executor,
            on_event=on_event,
            budget=budget,
        )

    def map(self, fn: Callable[[E], NewE | Awaitable[NewE]]) -> Node[P, NewE, Any]:
        """A new node whose ``exec`` result is ``fn(original result)``; ``post`` returns the default action."""
        derived: Node[P, NewE, Any] = _combinators().MappedNode(self, fn)
        return derived

    def filter(self, predicate: Callable[[E], bool | Awaitable[bool]]) -> Node[P, E, Any]:
        """A new node returning ``DEFAULT_ACTION`` when ``predicate(result)`` holds, else ``FILTER_FAILED``."""
        derived: Node[P, E, Any] = _combinators().FilteredNode(self, predicate)
        return derived

    def tap(self, fn: Callable[[E], object]) -> Node[P, E, A]:
        """A new node that calls ``fn(result)`` for a side effect and passes the result on."""
        derived: Node[P, E, A] = _combinators().TappedNode(self, fn)
        return derived

    def to_context(self, key: ContextKey[E] | str) -> Node[P, E, Any]:
        """A new node that stores the ``exec`` result in the context under ``key``."""
        derived: Node[P, E, Any] = _combinators().ToContextNode(self, key)
        return derived

    def with_lens(self, lens: ContextLens[T], value: T) -> Node[P, E, A]:
        """A new node that sets ``lens`` to ``value`` before running this node's ``prep``."""
        derived: Node[P, E, A] = _combinators().LensNode(self, lens, value)
        return derived


def _combinators() -> Any:
    # local import: the combinator nodes (combinators.py) subclass Node
    from . import combinators

    return combinators


_DEFAULTS_UNOBSERVED: set[Callable[..., None]] = {Node.__setattr__}
"""``__setattr__`` methods that need not see the fields `_init_with_defaults` sets: `Node`'s
own and those of Flowcraft's node classes that check fields of their own only. A node
class with any other ``__setattr__`` gets its fields set one by one, through it."""


def _init_with_defaults(node: Node[Any, Any, Any]) -> None:
    """``Node.__init__()`` with its default options, which need no check: the fields that
    ``AbstractNode.__init__`` and the checked ``__setattr__`` would set, in the same order
    (instances share their attribute keys), without a Python call per field: Node() 2.9 ->
    1.0 µs (10k nodes, best of 5). Change it with them; tests/core/test_fast_paths.py
    compares the two."""
    set_field = object.__setattr__
    set_field(node, "id", None)
    set_field(node, "params", {})
    set_field(node, "successors", {})
    set_field(node, "graph_data", None)
    set_field(node, "max_retries", 1)
    set_field(node, "_walk_plan", type(node)._walk_plan)
    set_field(node, "wait", 0.0)
    set_field(node, "timeout", None)


def _check_retries(node: Node[Any, Any, Any], value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_retries of {_describe(node)} must be an int >= 1 (total attempts), got {value!r}")
    return value


def _check_wait(node: Node[Any, Any, Any], value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"wait of {_describe(node)} must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _check_timeout(node: Node[Any, Any, Any], value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"timeout of {_describe(node)} must be a number of seconds > 0 or None, got {value!r}")
    if type(node)._exec_mode is CallMode.SYNC:
        # A sync exec runs on the event loop and blocks it: the timeout could never fire.
        raise ValueError(
            f"timeout of {_describe(node)} cannot interrupt its sync `def exec`, which runs on the event loop: "
            "make it `async def exec` (blocking code: `return await asyncio.to_thread(work, ...)`), "
            "or drop the timeout"
        )
    return float(value)


def _check_retry(node: Node[Any, Any, Any], value: Any) -> RetryPolicy | None:
    # local import: retry policies load on first use (import time)
    from .retry import RetryPolicy

    if value is not None and not isinstance(value, RetryPolicy):
        raise TypeError(
            f"retry of {_describe(node)} must be a RetryPolicy or None, got {type(value).__name__}: {value!r}"
        )
    return value


_CHECKED_OPTIONS: dict[str, Callable[[Any, Any], Any]] = {
    "max_retries": _check_retries,
    "wait": _check_wait,
    "timeout": _check_timeout,
    "retry": _check_retry,
}


class ExecNode(Node[None, E, Any]):
    """A node that only implements ``exec``."""


class PreNode(Node[None, None, Any]):
    """A node that only implements ``prep`` (e.g. to change the context)."""


class PostNode(Node[None, None, A]):
    """A node that only implements ``post`` (e.g. to decide a branch)."""
