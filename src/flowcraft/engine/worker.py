"""Running node jobs: [`JobWorker`][flowcraft.engine.JobWorker] takes jobs from a
[`JobQueue`][flowcraft.engine.JobQueue] and runs
them against a [`RunStore`][flowcraft.engine.RunStore].

One job is one visit of one node (see DISTRIBUTED.md, "One job, step by step"):

1. load status, params, context and the job's done record (one read; a store may leave
   large context values out, read then when the node reads them); skip if the run
   has ended; a redelivered job with a done record only re-enqueues the successors it
   decided on that are still pending;
2. run the node's lifecycle (its flow's middleware around it) on a
   `RecordingContext`, with an abort signal cancelled through the
   store's control messages; passed-through containers fan out their branches;
3. the atomic commit ([`RunStore.commit`][flowcraft.engine.RunStore.commit]): delta, done record, arrivals with the
   fan-in rule's counts and release facts, pending set, end of run;
4. enqueue the successor jobs (ids from the store, one round trip; BullMQ's queue
   completes the job in the same one).

Test-only fault injection: ``FLOWCRAFT_TEST_CRASH_AT=<point>:<node id>`` makes the
worker ``SIGKILL`` itself at ``point`` while running that node. Points:
``before_node``, ``during_node`` (at the node's first context write), ``before_complete``,
``after_complete`` (= ``after_context_write`` = ``after_join_update`` =
``before_enqueue``: one atomic step writes all three) and ``after_enqueue``;
``before_commit`` and ``after_commit`` (the conformance kit's names) are
``before_complete`` and ``after_complete``. Off unless
the variable is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import json
import logging
import os
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from ..abort import AbortController, AbortSignal
from ..actions import DEFAULT_ACTION
from ..clock import Clock
from ..clock import current as current_clock
from ..clock import scoped as scoped_clock
from ..collector import CollectorPaused
from ..errors import (
    AbortError,
    BudgetExceededError,
    DurabilityNotSupportedError,
    GraphError,
    UnknownNodeTypeError,
    WorkflowError,
)
from ..events import (
    ContextChanged,
    EventEmitter,
    NodeFailed,
    NodeFinished,
    NodeSkipped,
    NodeStarted,
    RunAwaiting,
    RunEvent,
)
from ..executors.base import WalkScope
from ..executors.in_memory import InMemoryExecutor
from ..flow import Flow
from ..graph.blueprint import BlueprintExecutor
from ..graph.models import WorkflowBlueprint
from ..loggers import Logger, NullLogger
from ..middleware import NextFn, apply_middleware
from ..node import AbstractNode, NodeArgs
from ..waits import WaitNode
from .codec import decode, decode_action, encode, encode_action
from .errors import BackendError, BlueprintNotFoundError, CodecError, GraphMismatchError, NotABlueprintFlowError
from .eventlog import encode_event
from .jobs import ACTIVE_STATES, Commit, Failure, Job, JobState, Park
from .metering import StoreBudget, failure_details
from .plan import JobPlan, blueprint_hash, describe_change, flow_from_factory
from .protocols import JobQueue, RunStore, WaitStore, check_queue, check_store
from .recording import IMMUTABLE_TYPES, RecordingContext

__all__ = ["JobWorker"]

log = logging.getLogger("flowcraft.engine.worker")

CRASH_ENV = "FLOWCRAFT_TEST_CRASH_AT"
TIMER_POLL = 0.5
"""Seconds between two looks for due timers (workers with ``fire_timers``)."""
GRAPH_REREAD = 3600.0
"""Seconds after which a worker reads a graph it uses again (renewing its TTL on Redis)."""
GRAPH_CACHE_SIZE = 256
"""Graphs a worker keeps hydrated by default (least recently used ones are dropped)."""
# before_commit and after_commit: the conformance kit's names
CRASH_ALIASES = {"after_context_write": "after_complete", "after_join_update": "after_complete",
                 "before_enqueue": "after_complete", "before_commit": "before_complete",
                 "after_commit": "after_complete"}  # fmt: skip


_Follow = tuple[Job, "JobState | None", "Mapping[str, Any] | None"]
"""The next job a worker runs inline, with its state and its context's decoded values."""


class _Hydrated:
    """A graph hydrated once per worker: its job plan and the middleware chain of each node."""

    __slots__ = ("chains", "flow", "middleware", "plan", "read_at")

    def __init__(self, flow: Flow, middleware: Sequence[Any] = ()) -> None:
        self.read_at = time.monotonic()
        self.plan = JobPlan(flow)
        self.flow = flow
        self.middleware = [*middleware, *flow.middleware]  # the worker's own outermost
        self.chains: dict[str, NextFn] = {}

    def node(self, node_id: str) -> AbstractNode | None:
        return self.plan.node(node_id)

    def chain(self, node_id: str, node: AbstractNode) -> NextFn:
        chain = self.chains.get(node_id)
        if chain is None:
            chain = self.chains[node_id] = apply_middleware(self.middleware, node)
        return chain


def hydrate(
    key: str, text: str, registry: Mapping[str, Any], dependencies: Mapping[str, Any], middleware: Sequence[Any]
) -> _Hydrated:
    """Rebuild a stored graph: a blueprint with the registry, or a factory's flow
    (refused when its structural hash is not ``key``).

    With the collector paused, as the graph builder builds: a worker's first hydration
    of a 1,000-node graph takes ~13 ms of CPU instead of ~27 (fresh process), while the
    run's first jobs wait for it."""
    with CollectorPaused():
        return _hydrate(key, text, registry, dependencies, middleware)


def _hydrate(
    key: str, text: str, registry: Mapping[str, Any], dependencies: Mapping[str, Any], middleware: Sequence[Any]
) -> _Hydrated:
    data = json.loads(text)
    if isinstance(data, dict) and "factory" in data:
        name = str(data["factory"])
        hydrated = _Hydrated(flow_from_factory(name), middleware)
        built = hydrated.plan.structural_hash
        if built != key:
            shapes = data.get("shapes")
            change = describe_change(shapes, hydrated.plan.shapes) if isinstance(shapes, dict) else "unknown"
            raise GraphMismatchError(
                f"Flow factory {name!r} builds a different graph here than the one the run was started with "
                f"({change}; structural hash {built[:12]}..., the run pinned {key[:12]}...): deploy the code "
                "the run started with, or start a new run"
            )
        return hydrated
    if blueprint_hash(text) != key:  # content-addressed: what is stored must be what the run started with
        raise BlueprintNotFoundError(
            f"The graph stored under {key} does not match its content hash (sha256 {blueprint_hash(text)[:12]}...): "
            "it was altered or corrupted in the store; start the run again.",
            blueprint_hash=key,
        )
    blueprint = WorkflowBlueprint.from_dict(data)
    return _Hydrated(BlueprintExecutor(blueprint, registry, dict(dependencies)).flow, middleware)


class _Job:
    """The job a node runs as, as its nodes see it (``args.idempotency_key``, ``args.memo``)."""

    __slots__ = ("counts", "inner", "key", "node", "resume_action", "run_id", "store")

    def __init__(self, store: RunStore, run_id: str, key: str, node: AbstractNode, resume_action: Any = None) -> None:
        self.resume_action = resume_action
        self.store = store
        self.run_id = run_id
        self.key = key
        self.node = node
        self.inner: dict[int, tuple[NodeArgs[Any, Any], str]] = {}
        self.counts: dict[str, int] = {}

    def key_for(self, args: NodeArgs[Any, Any]) -> str:
        """The job's key for its node; ``key/<node id>#<n>`` for the n-th inner node visit."""
        node = args.node
        if node is None or node is self.node:
            return self.key
        found = self.inner.get(id(args))
        if found is not None and found[0] is args:
            return found[1]
        label = str(node.id) if node.id is not None else type(node).__name__
        count = self.counts[label] = self.counts.get(label, 0) + 1
        key = f"{self.key}/{label}#{count}"
        self.inner[id(args)] = (args, key)  # holding args keeps its id from being reused
        return key

    async def memo(self, args: NodeArgs[Any, Any], key: str, fn: Callable[[], Any]) -> Any:
        """``fn()``'s result, stored once per node visit (see
        [`NodeArgs.memo`][flowcraft.engine.worker.NodeArgs.memo])."""
        visit = self.key_for(args)
        name = f"memo {key!r}"
        stored = await self.store.memo(self.run_id, visit, key, None)
        if stored is not None:
            return decode(stored, key=name)
        result = fn()
        if inspect.isawaitable(result):
            result = await result
        kept = await self.store.memo(self.run_id, visit, key, encode(result, key=name))
        return result if kept is None else decode(kept, key=name)


MAX_CONFLICTS = 1000
"""Commits of one job refused for changed atomic updates before the run fails (each refusal
means another node's commit went through: only an impure update keeps losing)."""

RETRY_TIMER_FROM = 5.0
"""Retry waits of this many seconds or more park a durable job on a timer."""


class _RetryParked(BaseException):
    """Raised by a job's clock instead of a long retry sleep (a ``BaseException``, so that
    no ``except Exception`` of a node or middleware takes it for the node's failure)."""

    def __init__(self, delay: float, attempt: int, elapsed: float) -> None:
        super().__init__(delay, attempt, elapsed)
        self.delay, self.attempt, self.elapsed = delay, attempt, elapsed


class _JobClock(Clock):
    """The clock of one job of a durable run: time from ``base``; the job's own node
    resumes its attempt count, and a retry wait of RETRY_TIMER_FROM s or more parks the job."""

    def __init__(self, base: Clock, node: AbstractNode, retried: tuple[int, float]) -> None:
        # no Clock.__init__: jitter comes from the base clock, no generator of its own
        self.base, self.node, self.retried = base, node, retried

    def monotonic(self) -> float:
        return self.base.monotonic()

    def time(self) -> float:
        return self.base.time()

    def uniform(self, low: float, high: float) -> float:
        return self.base.uniform(low, high)

    async def sleep(self, seconds: float, signal: AbortSignal | None) -> None:
        await self.base.sleep(seconds, signal)

    def retries_before(self, node: Any) -> tuple[int, float]:
        return self.retried if node is self.node else (0, 0.0)

    async def retry_sleep(self, seconds: float, signal: AbortSignal | None, *, node: Any, attempt: int,
                          elapsed: float) -> None:  # fmt: skip
        if node is self.node and seconds >= RETRY_TIMER_FROM:
            raise _RetryParked(seconds, attempt, elapsed)
        await self.base.retry_sleep(seconds, signal, node=node, attempt=attempt, elapsed=elapsed)


class _JobEvents:
    """The run events of one node job (runs started with events only).

    ``NodeStarted`` is sent as the node starts (one XADD, overlapping the node's run);
    the others are buffered and written by the job's completion or failure step, in the
    same round trip. The node sees the emitter as ``args.scope.events`` (retries, fallbacks).
    """

    __slots__ = ("buffer", "events", "node", "sent", "started")

    def __init__(self, run_id: str, node: AbstractNode, logger: Logger) -> None:
        self.buffer: list[RunEvent] = []
        self.events = EventEmitter(self.buffer.append, logger, run_id)
        self.node = node
        self.started = time.perf_counter()
        self.sent: asyncio.Future[None] | None = None

    def take(self) -> list[str]:
        """The buffered events, encoded (the buffer is emptied)."""
        encoded = [encode_event(event) for event in self.buffer]
        self.buffer.clear()
        return encoded

    def duration(self) -> float:
        return time.perf_counter() - self.started

    async def wait_sent(self) -> None:
        """Wait for the ``NodeStarted`` write (so that events stay in order); errors are logged."""
        if self.sent is not None:
            try:
                await self.sent
            except Exception as error:
                log.warning("run event not written: %s", error)
            self.sent = None


def _crash_point() -> tuple[str, str] | None:
    raw = os.environ.get(CRASH_ENV)
    if not raw or ":" not in raw:
        return None
    point, node_id = raw.split(":", 1)
    return CRASH_ALIASES.get(point, point), node_id


def _die() -> None:  # pragma: no cover - the process ends here
    sys.stderr.write(f"flowcraft worker {os.getpid()}: {CRASH_ENV} reached, SIGKILL\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class JobWorker:
    """Runs node jobs of job-engine runs. Stateless between jobs; start any number.

    Args:
        registry: node type → class, for blueprint graphs (factory flows need none).
        store, queue: the engine's backends ([`RunStore`][flowcraft.engine.RunStore],
            [`JobQueue`][flowcraft.engine.JobQueue]),
            shared with the [`JobExecutor`][flowcraft.engine.JobExecutor] that starts runs.
        dependencies: keyword arguments for node constructors.
        concurrency: jobs run at once by this worker.
        middleware: wraps every node this worker runs (in addition to the flow's own).
        logger: the logger nodes receive (silent by default).
        inline_successors: run a job's lone successor in the same task, without the
            queue — only for a queue whose jobs the store can give back after a crash
            (the durable executor's), never for one that must see every job (BullMQ).
        clock: where a wait's deadline is read from (default: the current clock).
        fire_timers: fire the store's due timers (wait timeouts, sleeps) every
            ``TIMER_POLL`` seconds — workers on a shared store do; a durable executor
            fires its own.
        retry_timers: a retry wait of ``RETRY_TIMER_FROM`` seconds or more parks the job
            on a timer instead of sleeping (durable runs); the next attempt runs when it
            fires, wherever, with the attempt count and ``max_elapsed`` carried over.
        graph_cache_size: graphs kept hydrated (nodes built, plan analysed); the least
            recently used one is dropped past it, and hydrated again when needed.

    Raises:
        TypeError: ``store`` or ``queue`` lacks a method of its protocol (named).

    Examples:
        ```python
        worker = JobWorker(REGISTRY, store=MemoryRunStore(), queue=MemoryJobQueue())
        await worker.run()          # until await worker.close()
        ```
    """

    def __init__(
        self,
        registry: Mapping[str, Any] | None = None,
        *,
        store: RunStore | None = None,
        queue: JobQueue | None = None,
        dependencies: Mapping[str, Any] | None = None,
        concurrency: int = 10,
        middleware: Sequence[Any] = (),
        logger: Logger | None = None,
        inline_successors: bool = False,
        clock: Clock | None = None,
        fire_timers: bool = False,
        retry_timers: bool = False,
        graph_cache_size: int = GRAPH_CACHE_SIZE,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
        if graph_cache_size < 1:
            raise ValueError(f"graph_cache_size must be >= 1, got {graph_cache_size!r}")
        store = check_store(store) if store is not None else None
        queue = check_queue(queue) if queue is not None else None
        self.registry: Mapping[str, Any] = registry if registry is not None else {}
        self.dependencies = dict(dependencies or {})
        self.concurrency = concurrency
        self._middleware = list(middleware)
        self.logger: Logger = logger if logger is not None else NullLogger()
        self.inline_successors = inline_successors
        self.clock = clock
        self.fire_timers = fire_timers
        self.retry_timers = retry_timers
        self._parks_retries = False  # retry_timers on a store that keeps waits (set by connect())
        self._timer_task: asyncio.Task[None] | None = None
        self.on_park: Callable[[str, Park], None] | None = None
        """Called when a job parks on a wait (the durable executor arms its timer)."""
        self._hydrated: OrderedDict[str, _Hydrated] = OrderedDict()  # an LRU cache
        self._hydrating: dict[str, asyncio.Future[_Hydrated]] = {}  # graph key -> its hydration under way
        self.carry_state = False
        """Keep the state a lone successor in a graph without parallel jobs will find, for
        when this worker runs it (no read of its state): set by workers whose queue hands
        a worker the job its completion enqueued (BullMQ's; see `_keep_state`)."""
        self._kept: OrderedDict[str, tuple[str, JobState, Mapping[str, Any] | None]] = OrderedDict()
        self.graph_cache_size = graph_cache_size
        self._running: dict[str, set[AbortController]] = {}
        self._crash = _crash_point()
        self._params: tuple[str, dict[str, Any]] | None = None  # (text, decoded): see _run_params
        self._engine = InMemoryExecutor()  # walks what runs inside one job (sub-flows, in-process blocks)
        self._store: RunStore | None = store
        self._queue: JobQueue | None = queue
        self._owns_backend = store is None
        self._serving = False
        self._listener: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._closed = asyncio.Event()
        self.ready = asyncio.Event()

    # ---- lifecycle -----------------------------------------------------------------------

    async def _open(self) -> tuple[RunStore, JobQueue]:
        """Build the backends when none were given (subclasses connect to theirs)."""
        raise TypeError(f"{type(self).__name__} needs store= and queue= (a RunStore and a JobQueue)")

    async def connect(self) -> None:
        """Open the backends (``run()`` does it; call it to use
        [`process`][flowcraft.engine.JobWorker.process] directly)."""
        if self._store is None or self._queue is None:
            self._store, self._queue = await self._open()
        self._parks_retries = self.retry_timers and isinstance(self._store, WaitStore)
        await self._store.ping()

    @property
    def store(self) -> RunStore:
        """The run store (after [`connect`][flowcraft.engine.JobWorker.connect])."""
        assert self._store is not None, "call connect() first"
        return self._store

    async def run(self) -> None:
        """Process jobs until [`close`][flowcraft.engine.JobWorker.close] is called."""
        await self.connect()
        assert self._queue is not None
        subscribed = asyncio.Event()
        self._listener = asyncio.ensure_future(self._listen(subscribed))
        await asyncio.wait([asyncio.ensure_future(subscribed.wait()), self._listener], return_when="FIRST_COMPLETED")
        self.ready.set()
        self._serving = True
        if self.fire_timers and isinstance(self._store, WaitStore):
            self._timer_task = asyncio.ensure_future(self._fire_timers())
        try:
            await self._queue.serve(self.process, concurrency=self.concurrency, on_failed=self._job_failed)
            if self._closing.is_set():
                # the queue's loop may return as soon as it stops fetching; running jobs end inside close()
                await self._closed.wait()
        finally:
            self._serving = False
            await self._shutdown()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[JobWorker]:
        """``async with worker.running():`` — serve jobs in a task for the block's duration."""
        task = asyncio.ensure_future(self.run())
        ready = asyncio.ensure_future(self.ready.wait())
        await asyncio.wait([task, ready], return_when="FIRST_COMPLETED")
        if task.done():
            ready.cancel()
            task.result()
        try:
            yield self
        finally:
            await self.close()
            await task

    async def close(self, *, force: bool = False) -> None:
        """Stop taking jobs and wait for running ones (``force``: leave them to redelivery)."""
        self._closing.set()
        try:
            if self._queue is not None and self._serving:
                await self._queue.close(force=force)
        finally:
            self._closed.set()

    async def aclose(self) -> None:
        """Close the connections opened by [`connect`][flowcraft.engine.JobWorker.connect]
        (``run()`` does it on exit)."""
        await self._shutdown()

    async def _fire_timers(self) -> None:
        """Fire the store's due timers (the store is the source of truth: of the workers
        that see a timer, one wins its compare-and-set)."""
        # local import: the client module imports this one (the timers use its resume steps)
        from .client import JobExecutor

        assert self._store is not None
        assert self._queue is not None
        client = JobExecutor(store=self._store, queue=self._queue)
        while not self._closing.is_set():
            try:
                await client.fire_timers((self.clock if self.clock is not None else current_clock()).time())
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the store is briefly unusable: try again
                log.warning("firing timers failed: %s", error)
            await asyncio.sleep(TIMER_POLL)

    async def _shutdown(self) -> None:
        if self._timer_task is not None:
            self._timer_task.cancel()
            with contextlib.suppress(BaseException):
                await self._timer_task
            self._timer_task = None
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
            self._listener = None
        if self._owns_backend:
            if self._queue is not None:
                await self._queue.aclose()
            if self._store is not None:
                await self._store.aclose()
            self._store = self._queue = None

    async def _listen(self, subscribed: asyncio.Event) -> None:
        """Abort running nodes of runs cancelled elsewhere (reconnects on errors)."""
        assert self._store is not None
        while not self._closing.is_set():
            try:
                async with self._store.subscribe_control() as subscription:
                    subscribed.set()
                    while not self._closing.is_set():
                        message = await subscription.get(1.0)
                        if message:
                            self._on_control(message)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("control channel: %s; reconnecting", error)
                await asyncio.sleep(0.5)

    def _on_control(self, text: str) -> None:
        verb, _, run_id = text.partition(" ")
        if verb == "cancel":
            for job_id in [jid for jid, kept in self._kept.items() if kept[0] == run_id]:
                del self._kept[job_id]  # its jobs read the run's state again (and skip)
            for controller in list(self._running.get(run_id, ())):
                controller.abort(AbortError(f"Run {run_id} was cancelled."))

    # ---- one job ---------------------------------------------------------------------------

    def _maybe_crash(self, point: str, node_id: str) -> None:
        crash = self._crash
        if crash is not None and crash == (point, node_id):
            _die()

    async def _hydrate(self, key: str) -> _Hydrated:
        hydrated = self._hydrated.get(key)
        if hydrated is not None:
            self._hydrated.move_to_end(key)
        if hydrated is not None and time.monotonic() - hydrated.read_at > GRAPH_REREAD:
            hydrated.read_at = time.monotonic()
            await self.store.graph(key)  # keeps a graph in use from expiring (stores with a TTL)
        if hydrated is None:
            # once per graph: the jobs that need it meanwhile (a worker's slots taking jobs of a new
            # graph at once) wait for the same hydration instead of each building the graph again
            pending = self._hydrating.get(key)
            if pending is None:
                pending = self._hydrating[key] = asyncio.ensure_future(self._hydrate_new(key))
                pending.add_done_callback(functools.partial(self._hydrated_new, key))
            hydrated = await asyncio.shield(pending)
        return hydrated

    def _hydrated_new(self, key: str, done: asyncio.Future[_Hydrated]) -> None:
        if self._hydrating.get(key) is done:
            del self._hydrating[key]
        if not done.cancelled():
            done.exception()  # retrieved: its waiters (if any are left) raise it

    async def _hydrate_new(self, key: str) -> _Hydrated:
        """Read and hydrate a graph this worker does not hold, and keep it."""
        assert self._store is not None
        text = await self._store.graph(key)
        if text is None:
            raise BlueprintNotFoundError(
                f"The run's graph {key} is not stored in {type(self._store).__name__} (expired, flushed, "
                "or another prefix); start the run again.",
                blueprint_hash=key,
            )
        hydrated = hydrate(key, text, self.registry, self.dependencies, self._middleware)
        self._hydrated[key] = hydrated
        if len(self._hydrated) > self.graph_cache_size:
            self._hydrated.popitem(last=False)
        return hydrated

    def _keep_state(self, job: Job, state: JobState, decoded: Mapping[str, Any] | None) -> None:
        """Keep the state a lone successor ``job`` will find (``carry_state``): the job that
        enqueued it has just committed it, in a graph whose jobs of one run never run at the
        same time, so until ``job`` commits nothing but a cancel can change its run."""
        kept = self._kept
        kept[job.id] = (job.run_id, state, decoded)
        while len(kept) > 4 * self.concurrency:  # jobs taken by other workers
            kept.popitem(last=False)

    async def process(self, job: Job) -> None:
        """Run one node job (the four steps in the module docstring); with
        ``inline_successors``, then its lone successor and so on, in this task."""
        kept = self._kept.pop(job.id, None) if self._kept else None  # used once, at its first delivery
        follow: _Follow | None = (job, None, None) if kept is None else (job, kept[1], kept[2])
        while follow is not None:
            follow = await self._process_one(*follow)
            if self._closing.is_set():  # stopping: the successor stays pending in the store
                return

    async def _process_one(
        self, job: Job, known: JobState | None, decoded: Mapping[str, Any] | None = None
    ) -> _Follow | None:
        """One job (``known``: its state, ``decoded``: values of its context decoded
        already); the next job to run here, its state and decoded values
        (``inline_successors``), else ``None``."""
        store = self._store
        assert store is not None
        run_id, node_id, graph_key = job.run_id, job.node_id, job.graph
        state = known if known is not None else await store.load(run_id, job.id)
        if state.status not in ACTIVE_STATES:
            if state.events and state.status is not None:
                await self._skipped(run_id, node_id, graph_key, f"the run had already ended ({state.status})")
            return None
        if state.done is not None:  # redelivered after its commit
            done = state.done
            await self._enqueue(run_id, graph_key, await self._still_pending(run_id, done.successors), done.action)
            return None
        try:
            hydrated = await self._hydrate(graph_key)
        except GraphMismatchError as error:  # another code version: the run waits for the right one
            await self._fail(run_id, node_id, "hydrate", error, state="blocked")
            return None
        except UnknownNodeTypeError as error:  # another application's graph, perhaps
            await self._unknown_node_type(job, error)
            return None
        except (BlueprintNotFoundError, GraphError, CodecError, NotABlueprintFlowError) as error:
            await self._fail(run_id, node_id, "hydrate", error)
            return None
        node = hydrated.node(node_id)
        if node is None:
            missing = GraphError(f"Node {node_id!r} is not in graph {graph_key}", node_id=node_id)
            await self._fail(run_id, node_id, "hydrate", missing)
            return None
        incoming = decode_action(job.action) if job.action is not None else None
        sets: dict[str, str] = {}
        deletes: list[str] = []
        recorded: RecordingContext | None = None  # the node's context (its decoded values go on inline)
        job_events: _JobEvents | None = None
        if node.is_passthrough and node.branches:  # a parallel container: fan out
            action = None  # branches start fresh (no incoming action), as in memory
            targets: Sequence[AbstractNode] = node.branches
        else:
            resumed = None
            if isinstance(node, WaitNode):  # parks after prep; once resolved, runs only post
                resumed = await self._waited(job, node, hydrated, state, incoming)
                if resumed is None:
                    return None
            meter = None
            if state.budget is not None:
                meter = StoreBudget(store, run_id, state.budget, state.usage)
                try:
                    await meter.admit(node, key=job.id)  # the deadline, then one more node run
                except BudgetExceededError as error:
                    if state.events:
                        job_events = _JobEvents(run_id, node, self.logger)
                    await self._fail(run_id, node_id, "budget", error, job_events, started=False)
                    return None
                except AbortError:  # the run has ended meanwhile
                    return None
            if state.events:
                job_events = _JobEvents(run_id, node, self.logger)
                job_events.events.node(NodeStarted, node)
                job_events.sent = asyncio.ensure_future(store.add_events(run_id, job_events.take()))
            retried = await self._retried(job) if resumed is None and job.resumed else (0, 0.0)
            outcome = await self._run_node(
                run_id, node_id, node, hydrated, state.params, state.context, incoming, job_events, meter, job.id,
                step=node.resume if resumed is not None and isinstance(node, WaitNode) else None, resumed=resumed,
                job=job, retried=retried, remote=state.remote, decoded=decoded,
            )  # fmt: skip
            if outcome is None:
                return None
            returned, ctx = outcome
            recorded = ctx
            action = DEFAULT_ACTION if returned is None else returned
            try:
                sets, deletes = ctx.delta()
            except CodecError as error:
                await self._fail(run_id, node_id, "post", error, job_events)
                return None
            if job_events is not None:
                if sets or deletes:
                    job_events.events.node(ContextChanged, node, keys_set=tuple(sets), keys_deleted=tuple(deletes))
                job_events.events.node(NodeFinished, node, action=returned, duration=job_events.duration())
            successor = self._engine.get_next_node(node, action)
            targets = () if successor is None else (successor,)
        try:
            action_text = encode_action(action)
        except CodecError as error:
            await self._fail(run_id, node_id, "post", error, job_events)
            return None
        events: list[str] = []
        if job_events is not None:
            await job_events.wait_sent()
            events = job_events.take()
        plan = hydrated.plan
        commit = Commit(
            job.id, node_id, action_text, sets, deletes, [plan.arrival(t) for t in targets], plan.joins, events
        )
        if recorded is not None:
            expects = recorded.expects()
            if expects:
                commit = dataclasses.replace(commit, expects=expects)
        self._maybe_crash("before_complete", node_id)
        completion = await store.commit(run_id, commit)
        conflicts = 0
        while completion.outcome == "conflict" and recorded is not None:  # an updated key changed meanwhile
            conflicts += 1
            try:
                if conflicts > MAX_CONFLICTS:
                    raise WorkflowError(
                        f"Node {node_id!r} could not commit its atomic updates of {sorted(completion.current)} "
                        f"after {MAX_CONFLICTS} tries: other nodes change them faster (is an update fn impure?)",
                        node_name=node_id, phase="post",
                    )  # fmt: skip
                sets.update(recorded.rebase(completion.current))  # replay the updates on the newer values
            except Exception as error:
                await self._fail(run_id, node_id, "post", error, None)
                return None
            commit = dataclasses.replace(commit, sets=sets, expects=recorded.expects())
            completion = await store.commit(run_id, commit)
        self._maybe_crash("after_complete", node_id)
        if completion.outcome == "skip":
            return None
        successors: Sequence[tuple[str, str]] = completion.successors
        if completion.outcome == "dup":
            successors = await self._still_pending(run_id, successors)
        elif (self.inline_successors or self.carry_state) and len(successors) == 1:
            # the store holds the successor as pending: run it here. With no other job of the run
            # running (a graph without parallel jobs) the context is what this commit left;
            # otherwise other branches may have committed meanwhile (a join's other arrivals): reload.
            follow_state: JobState | None = None
            if not hydrated.plan.concurrent:
                # the successor's state is this one's (same run, still active, no done record) with the
                # delta applied: to a copy of the context the store gave, then in place along the chain
                if known is None or state.remote:
                    state = JobState("running", state.params, dict(state.context) if known is None else state.context,
                                     None, state.events, state.budget, state.usage,
                                     remote=state.remote - set(sets) - set(deletes))  # fmt: skip
                context = state.context
                context.update(sets)
                for key in deletes:
                    context.pop(key, None)
                follow_state = state
            ((next_node, next_id),) = successors
            if self.inline_successors:
                self._maybe_crash("after_enqueue", node_id)
            next_job = Job(next_id, run_id, next_node, graph_key, completion.action)
            carried = recorded.immutable_values() if follow_state is not None and recorded is not None else None
            if self.inline_successors:
                return next_job, follow_state, carried
            if (
                follow_state is not None
                and follow_state.budget is None  # a budget's usage changes with every node run
                and not isinstance(hydrated.node(next_node), WaitNode)
            ):
                self._keep_state(next_job, follow_state, carried)
        await self._enqueue(run_id, graph_key, successors, completion.action)
        self._maybe_crash("after_enqueue", node_id)
        return None

    async def _waited(
        self, job: Job, node: WaitNode, hydrated: _Hydrated, state: JobState, incoming: Any
    ) -> tuple[Any, Any] | None:
        """A wait node's job: the first time, run ``prep`` and park the job on a new wait
        (``None``); while the wait is open, nothing (``None``); once resolved, its value
        and action (the job then runs ``post``)."""
        run_id, node_id = job.run_id, job.node_id
        store = self.store
        if not isinstance(store, WaitStore):
            error = DurabilityNotSupportedError(
                f"Wait node {node_id!r} needs a store that keeps waits ({type(store).__name__} does not): "
                "run the flow with flowcraft.durable.DurableExecutor"
            )
            await self._fail(run_id, node_id, "prep", error)
            return None
        wait_id = f"{node_id}#{job.id.rsplit(':', 1)[1]}"
        record = await store.wait(run_id, wait_id)
        if record is not None:
            if record.state != "resolved" or record.value is None or record.action is None:
                return None  # still open: a redelivered job
            return decode(record.value, key=f"wait {wait_id}"), decode_action(record.action)
        outcome = await self._run_node(
            run_id, node_id, node, hydrated, state.params, state.context, incoming, None, None, job.id,
            step=node.request, remote=state.remote,
        )  # fmt: skip
        if outcome is None:
            return None
        try:
            request = encode(outcome[0], key=f"request of wait node {node_id!r}")
            on_timeout = encode_action(node.on_timeout) if node.on_timeout is not None else None
        except CodecError as error:
            await self._fail(run_id, node_id, "prep", error)
            return None
        clock = self.clock if self.clock is not None else current_clock()
        fire_at = clock.time() + node.wait_timeout if node.wait_timeout is not None else None
        park = Park(
            job.id, wait_id, node_id, node.wait_kind, request, tuple(node.actions), fire_at, on_timeout, job.action
        )
        await store.park(run_id, park)
        if state.events:
            event = RunAwaiting(run_id=run_id, time=time.time(), wait_id=wait_id, node_id=node_id,
                                kind=node.wait_kind, fire_at=fire_at)  # fmt: skip
            await store.add_events(run_id, [encode_event(event)])
        if self.on_park is not None:
            self.on_park(run_id, park)
        return None

    async def _park_retry(self, job: Job, node: AbstractNode, parked: _RetryParked, job_events: _JobEvents | None
                          ) -> None:  # fmt: skip
        """Park the job on a timer until its next attempt (no process or task is held)."""
        store = self.store
        assert isinstance(store, WaitStore)
        clock = self.clock if self.clock is not None else current_clock()
        visit = job.id.rsplit(":", 1)[1]
        wait_id = f"{job.node_id}#{visit}~retry{parked.attempt}"
        request = encode({"attempt": parked.attempt, "elapsed": parked.elapsed}, key="<retry>")
        fire_at = clock.time() + parked.delay
        park = Park(job.id, wait_id, job.node_id, "timer", request, (), fire_at, None, job.action)
        if job_events is not None:
            await job_events.wait_sent()
        await store.park(job.run_id, park)
        log.info(
            "run %s: %s parked %gs until its attempt %d", job.run_id, job.node_id, parked.delay, parked.attempt + 1
        )
        if self.on_park is not None:
            self.on_park(job.run_id, park)

    async def _retried(self, job: Job) -> tuple[int, float]:
        """For a job resumed after a retry timer: its attempts so far and the seconds they took."""
        store = self._store
        if not job.resumed or not isinstance(store, WaitStore):
            return 0, 0.0
        prefix = f"{job.node_id}#{job.id.rsplit(':', 1)[1]}~retry"
        found = [r for r in await store.waits(job.run_id, open_only=False) if r.park.wait_id.startswith(prefix)]
        if not found:
            return 0, 0.0
        latest = decode(max(found, key=lambda r: int(r.park.wait_id[len(prefix) :])).park.request, key="<retry>")
        return int(latest["attempt"]), float(latest["elapsed"])

    async def _unknown_node_type(self, job: Job, error: UnknownNodeTypeError) -> None:
        """The job's graph uses a node type this worker's registry lacks: log it, and fail
        the run. (A worker whose queue is shared by other applications hands the job on
        instead: [`Worker`][flowcraft.distributed.Worker].)"""
        log.warning("run %s: job %s cannot run here: %s", job.run_id, job.id, error)
        await self._fail(job.run_id, job.node_id, "hydrate", error)

    async def _run_node(
        self,
        run_id: str,
        node_id: str,
        node: AbstractNode,
        hydrated: _Hydrated,
        params_text: str | None,
        raw_context: Mapping[str, str],
        incoming: Any,
        job_events: _JobEvents | None = None,
        meter: StoreBudget | None = None,
        job_key: str = "",
        step: Callable[[NodeArgs[Any, Any]], Awaitable[Any]] | None = None,
        resumed: tuple[Any, Any] | None = None,
        job: Job | None = None,
        retried: tuple[int, float] = (0, 0.0),
        remote: frozenset[str] = frozenset(),
        decoded: Mapping[str, Any] | None = None,
    ) -> tuple[Any, RecordingContext] | None:
        """Run the node's lifecycle (or only ``step``, a wait node's ``request`` or ``resume``
        with ``resumed`` = value and action); ``None`` when it failed or was aborted (already recorded).
        ``remote``: context keys the store left out of ``raw_context``, fetched when read;
        ``decoded``: values of ``raw_context`` decoded already."""
        if remote:
            store: Any = self._store  # a store that leaves large values out can fetch them (RedisRunStore)
            ctx = RecordingContext(
                raw_context, remote, functools.partial(store.context_values, run_id),
                functools.partial(store.context_values_now, run_id), decoded=decoded,
            )  # fmt: skip
        else:
            ctx = RecordingContext(raw_context, decoded=decoded)
        try:
            run_params = self._run_params(params_text)
        except CodecError as error:
            await self._fail(run_id, node_id, "prep", error, job_events)
            return None
        flow = hydrated.flow
        params = {**flow.params, **run_params, **node.params}
        controller = AbortController()
        running = self._running.setdefault(run_id, set())
        running.add(controller)
        engine = self._engine
        events = job_events.events if job_events is not None else None
        timer = None
        if meter is not None:  # a budget exceeded in this job also aborts it (nested nodes)
            meter.controller.signal.add_listener(controller.abort)
            left = meter.time_left()
            if left is not None:
                timer = asyncio.get_running_loop().call_later(max(0.0, left), meter.expire)
        scope = WalkScope(ctx, params, controller.signal, self.logger, engine, events=events, budget=meter,
                          job=_Job(self.store, run_id, job_key, node, resumed and resumed[1]) if job_key else None,
                          )  # fmt: skip
        args: NodeArgs[Any, Any] = NodeArgs(
            ctx, params, controller.signal, self.logger, name=type(node).__name__, executor=engine, node=node,
            incoming_action=incoming, scope=scope,
        )  # fmt: skip
        chain = hydrated.chain(node_id, node)
        self._maybe_crash("before_node", node_id)
        if self._crash == ("during_node", node_id):
            ctx.on_write = lambda _key: _die()
        if resumed is not None:
            args.exec_res = resumed[0]
        clock: Clock | None = None
        if job is not None and self._parks_retries and getattr(node, "max_retries", 1) > 1:  # only a node that retries
            clock = _JobClock(self.clock if self.clock is not None else current_clock(), node, retried)
        try:
            if clock is None:
                action = await (chain(args) if step is None else step(args))
            else:
                with scoped_clock(clock):  # a retry wait of RETRY_TIMER_FROM s or more parks the job
                    action = await (chain(args) if step is None else step(args))
        except _RetryParked as parked:
            assert job is not None
            await self._park_retry(job, node, parked, job_events)
            return None
        except AbortError as error:
            assert self._store is not None
            if meter is not None and meter.error is not None:
                await self._fail(run_id, node_id, "budget", meter.error, job_events)
                return None
            if job_events is not None:
                await job_events.wait_sent()
            await self._store.cancel(run_id, str(error))
            return None
        except WorkflowError as error:
            await self._fail(run_id, error.node_name or node_id, error.phase or "exec", error, job_events)
            return None
        except Exception as error:
            await self._fail(run_id, node_id, "middleware", error, job_events)
            return None
        finally:
            if timer is not None:
                timer.cancel()
            running.discard(controller)
            if not running:
                self._running.pop(run_id, None)
        return action, ctx

    def _run_params(self, text: str | None) -> Mapping[str, Any]:
        """The run's decoded params. The last ones decoded are kept when they hold only
        immutable values (nested lists or dicts are decoded afresh for every job: a node
        that changes them in place changes nothing for another)."""
        if not text:
            return {}
        last = self._params
        if last is not None and last[0] == text:
            return last[1]
        params = decode(text, key="<params>")
        if type(params) is dict and all(type(value) in IMMUTABLE_TYPES for value in params.values()):
            self._params = (text, params)
        return params  # type: ignore[no-any-return]

    async def _fail(
        self,
        run_id: str,
        node_id: str,
        phase: str,
        error: BaseException,
        job_events: _JobEvents | None = None,
        *,
        started: bool = True,
        state: str = "failed",
    ) -> None:
        """Fail the run; a budget exceeded also aborts the run's nodes running on any worker."""
        original = error.original_error if isinstance(error, WorkflowError) and error.original_error else error
        assert self._store is not None
        budget = error if isinstance(error, BudgetExceededError) else None
        events: list[str] = []
        if job_events is not None:
            await job_events.wait_sent()
            if budget is not None:
                job_events.events.budget_exceeded(budget)
            if started:
                event_phase = error.phase if isinstance(error, WorkflowError) else phase
                job_events.events.node(
                    NodeFailed, job_events.node, error=error, phase=event_phase, duration=job_events.duration()
                )
            events = job_events.take()
        detail = {"error_detail": str(original)} if original is not error else {}  # the cause's own message
        failure = Failure(node_id, phase, type(original).__name__, str(error), events, detail, state=state)
        if budget is not None:
            failure = Failure(
                budget.node_id or node_id, "budget", type(budget).__name__, str(budget), events,
                failure_details(budget), abort_running=True,
            )  # fmt: skip
        await self._store.fail(run_id, failure)

    async def _skipped(self, run_id: str, node_id: str, graph_key: str, reason: str) -> None:
        """Record ``NodeSkipped`` for a job of a run that has ended (one XADD; errors are logged)."""
        assert self._store is not None
        hydrated = self._hydrated.get(graph_key)  # no graph read just for a name
        node = hydrated.node(node_id) if hydrated is not None else None
        buffer: list[RunEvent] = []
        emitter = EventEmitter(buffer.append, self.logger, run_id)
        emitter.emit(NodeSkipped, node_id=node_id, node_name=type(node).__name__ if node else "", reason=reason)
        try:
            await self._store.add_events(run_id, [encode_event(event) for event in buffer])
        except BackendError as error:
            log.warning("run %s: NodeSkipped not written: %s", run_id, error)

    async def _still_pending(self, run_id: str, successors: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """The ``(node id, job id)`` pairs a commit decided on whose jobs have not finished
        (what a redelivered job enqueues again)."""
        if not successors:
            return []
        assert self._store is not None
        flags = await self._store.still_pending(run_id, [job_id for _, job_id in successors])
        return [pair for pair, flag in zip(successors, flags, strict=True) if flag]

    async def _enqueue(
        self, run_id: str, graph_key: str, successors: Sequence[tuple[str, str]], action_text: str
    ) -> None:
        if not successors:
            return
        assert self._queue is not None
        await self._queue.add([Job(jid, run_id, node_id, graph_key, action_text) for node_id, jid in successors])

    async def _job_failed(self, job: Job, error: BaseException) -> None:
        """A job failed for good (infrastructure errors after the queue's retries): fail the run."""
        if self._store is None:
            return
        with contextlib.suppress(Exception):
            await self._fail(job.run_id, job.node_id, "worker", error)
