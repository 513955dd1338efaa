"""Workers: run node jobs from the queue against the run state in Redis.

One job is one visit of one node (see DISTRIBUTED.md, "One job, step by step"):

1. load status, params, context and the job's done record (one round trip); skip if the
   run has ended; a redelivered job with a done record only re-enqueues the successors
   it decided on that are still pending;
2. run the node's lifecycle (its flow's middleware around it) on a
   :class:`~.context.RecordingContext`, with an abort signal cancelled through pub/sub;
   structural nodes are passed through;
3. the atomic completion step (:data:`~.store.COMPLETE`): delta write-back, done
   record, join sets, pending set, end of run;
4. enqueue the successor jobs (deterministic ids, one round trip).

Command line::

    flowcraft worker --registry pkg.mod:REGISTRY --redis redis://host:6379/0   (flowcraft.cli.worker)

Test-only fault injection: ``FLOWCRAFT_TEST_CRASH_AT=<point>:<node id>`` makes the
worker ``SIGKILL`` itself at ``point`` while running that node. Points:
``before_node``, ``during_node`` (at the node's first context write), ``before_complete``,
``after_complete`` (= ``after_context_write`` = ``after_join_update`` =
``before_enqueue``: one atomic step writes all three) and ``after_enqueue``. Off unless
the variable is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..abort import AbortController
from ..actions import DEFAULT_ACTION
from ..errors import AbortError, GraphError, WorkflowError
from ..events import ContextChanged, EventEmitter, NodeFailed, NodeFinished, NodeSkipped, NodeStarted, RunEvent
from ..executors.base import first_successor
from ..graph.models import WorkflowBlueprint
from ..loggers import Logger, NullLogger
from ..middleware import NextFn, apply_middleware
from ..node import AbstractNode, NodeArgs
from ..patterns import ParallelFlow
from .codec import decode, decode_action, encode_action
from .context import RecordingContext
from .errors import BackendError, BlueprintNotFoundError, CodecError
from .eventlog import encode_event
from .keys import ACTIVE_STATES, DEFAULT_PREFIX, DEFAULT_QUEUE, RUN_TTL, Keys
from .plan import RunPlan
from .queue import JobConsumer, JobQueue, QueuedJob, map_backend_errors_async
from .store import RunStore, parse_done

__all__ = ["Worker"]

log = logging.getLogger("flowcraft.distributed.worker")

CRASH_ENV = "FLOWCRAFT_TEST_CRASH_AT"
CRASH_ALIASES = {"after_context_write": "after_complete", "after_join_update": "after_complete",
                 "before_enqueue": "after_complete"}  # fmt: skip


class _Hydrated:
    """A blueprint hydrated once per worker: plan, nodes, and middleware chains."""

    __slots__ = ("chains", "executor", "flow", "middleware", "plan")

    def __init__(
        self,
        blueprint: WorkflowBlueprint,
        registry: Mapping[str, Any],
        dependencies: Mapping[str, Any],
        middleware: Sequence[Any] = (),
    ) -> None:
        from ..graph import BlueprintExecutor

        self.plan = RunPlan(blueprint)
        self.executor = BlueprintExecutor(blueprint, registry, dict(dependencies))
        self.flow = self.executor.flow
        self.middleware = [*middleware, *self.flow.middleware]  # the worker's own outermost
        self.chains: dict[str, NextFn] = {}

    def node(self, node_id: str) -> AbstractNode | None:
        found: AbstractNode | None = self.executor.node_map.get(node_id)
        return found

    def chain(self, node_id: str, node: AbstractNode) -> NextFn:
        chain = self.chains.get(node_id)
        if chain is None:
            chain = self.chains[node_id] = apply_middleware(self.middleware, node)
        return chain


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


class Worker:
    """Runs node jobs of distributed runs. Stateless between jobs; start any number.

    Args:
        registry: node type → class (the mapping the builder uses).
        redis_url: ``redis://`` / ``rediss://`` URL, with auth if needed.
        queue, prefix: must match the :class:`~.executor.DistributedExecutor`'s.
        dependencies: keyword arguments for node constructors.
        concurrency: jobs run at once by this worker.
        lock_duration, stalled_interval: seconds; a job held by a dead worker is
            handed to another after about their sum.
        middleware: wraps every node this worker runs (in addition to the flow's own).
        logger: the logger nodes receive (silent by default).

    Example::

        worker = Worker(REGISTRY, "redis://localhost:6379/0")
        await worker.run()          # until await worker.close() or a signal
    """

    def __init__(
        self,
        registry: Mapping[str, Any],
        redis_url: str = "redis://localhost:6379/0",
        *,
        queue: str = DEFAULT_QUEUE,
        prefix: str = DEFAULT_PREFIX,
        dependencies: Mapping[str, Any] | None = None,
        concurrency: int = 10,
        lock_duration: float = 30.0,
        stalled_interval: float = 30.0,
        run_ttl: int = RUN_TTL,
        middleware: Sequence[Any] = (),
        logger: Logger | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
        self.registry = registry
        self.dependencies = dict(dependencies or {})
        self.redis_url = redis_url
        self.queue_name = queue
        self.keys = Keys(prefix)
        self.concurrency = concurrency
        self._lock_duration = lock_duration
        self._stalled_interval = stalled_interval
        self._run_ttl = run_ttl
        self._middleware = list(middleware)
        self.logger: Logger = logger if logger is not None else NullLogger()
        self._hydrated: dict[str, _Hydrated] = {}
        self._running: dict[str, set[AbortController]] = {}
        self._crash = _crash_point()
        self._store: RunStore | None = None
        self._queue: JobQueue | None = None
        self._consumer: JobConsumer | None = None
        self._listener: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._closed = asyncio.Event()
        self.ready = asyncio.Event()

    # ---- lifecycle -----------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the Redis connections (``run()`` does it; call it to use :meth:`process` directly)."""
        if self._store is None:
            self._store = RunStore(self.redis_url, prefix=self.keys.prefix, run_ttl=self._run_ttl)
            self._queue = JobQueue(self.redis_url, name=self.queue_name, prefix=self.keys.prefix)
        async with map_backend_errors_async():
            await self._store.client.ping()

    async def run(self) -> None:
        """Process jobs until :meth:`close` is called."""
        await self.connect()
        self._consumer = JobConsumer(
            self.redis_url,
            name=self.queue_name,
            prefix=self.keys.prefix,
            processor=self.process,
            concurrency=self.concurrency,
            lock_duration=self._lock_duration,
            stalled_interval=self._stalled_interval,
            on_failed=self._job_failed,
        )
        subscribed = asyncio.Event()
        self._listener = asyncio.ensure_future(self._listen(subscribed))
        await asyncio.wait([asyncio.ensure_future(subscribed.wait()), self._listener], return_when="FIRST_COMPLETED")
        self.ready.set()
        try:
            await self._consumer.run()
            if self._closing.is_set():
                # BullMQ's loop returns as soon as it stops fetching; running jobs end inside close()
                await self._closed.wait()
        finally:
            await self._shutdown()

    async def close(self, *, force: bool = False) -> None:
        """Stop taking jobs and wait for running ones (``force``: leave them to stalled recovery)."""
        self._closing.set()
        try:
            if self._consumer is not None:
                await self._consumer.close(force=force)
        finally:
            self._closed.set()

    async def aclose(self) -> None:
        """Close the connections opened by :meth:`connect` (``run()`` does it on exit)."""
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
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
                async with self._store.subscription(self.keys.control) as pubsub:
                    subscribed.set()
                    while not self._closing.is_set():
                        message = await pubsub.get_message(timeout=1.0)
                        if message and isinstance(message.get("data"), str):
                            self._on_control(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("control channel: %s; reconnecting", error)
                await asyncio.sleep(0.5)

    def _on_control(self, text: str) -> None:
        verb, _, run_id = text.partition(" ")
        if verb == "cancel":
            for controller in list(self._running.get(run_id, ())):
                controller.abort(AbortError(f"Run {run_id} was cancelled."))

    def get_next_node(self, curr: AbstractNode, action: Any) -> AbstractNode | None:
        """The first successor of ``curr`` for ``action`` (the :class:`~flowcraft.Executor` protocol)."""
        return first_successor(curr, action)

    # ---- one job ---------------------------------------------------------------------------

    def _maybe_crash(self, point: str, node_id: str) -> None:
        crash = self._crash
        if crash is not None and crash == (point, node_id):
            _die()

    async def _hydrate(self, blueprint_hash: str) -> _Hydrated:
        hydrated = self._hydrated.get(blueprint_hash)
        if hydrated is None:
            assert self._store is not None
            text = await self._store.blueprint(blueprint_hash)
            if text is None:
                raise BlueprintNotFoundError(
                    f"Blueprint {blueprint_hash} is not stored in Redis under "
                    f"{self.keys.blueprint(blueprint_hash)!r} (expired, flushed, or another prefix); "
                    "start the run again.",
                    blueprint_hash=blueprint_hash,
                )
            hydrated = _Hydrated(WorkflowBlueprint.from_json(text), self.registry, self.dependencies, self._middleware)
            self._hydrated[blueprint_hash] = hydrated
        return hydrated

    async def process(self, job: QueuedJob) -> None:
        """Run one node job (the four steps in the module docstring)."""
        store = self._store
        assert store is not None
        data = job.data
        run_id, node_id, blueprint_hash = str(data["r"]), str(data["n"]), str(data["b"])
        incoming_text = data.get("a")
        state = await store.load(run_id, job.id)
        if state.status not in ACTIVE_STATES:
            if state.events and state.status is not None:
                await self._skipped(run_id, node_id, blueprint_hash, f"the run had already ended ({state.status})")
            return
        if state.done is not None:  # redelivered after its completion step
            action_text, ids = parse_done(state.done)
            flags = await store.still_pending(run_id, ids)
            await self._enqueue(run_id, blueprint_hash, [i for i, f in zip(ids, flags, strict=True) if f], action_text)
            return
        try:
            hydrated = await self._hydrate(blueprint_hash)
        except (BlueprintNotFoundError, GraphError, CodecError) as error:
            await self._fail(run_id, node_id, "hydrate", error)
            return
        node = hydrated.node(node_id)
        if node is None:
            missing = GraphError(f"Node {node_id!r} is not in blueprint {blueprint_hash}", node_id=node_id)
            await self._fail(run_id, node_id, "hydrate", missing)
            return
        incoming = decode_action(incoming_text) if isinstance(incoming_text, str) else None
        sets: dict[str, str] = {}
        deletes: list[str] = []
        job_events: _JobEvents | None = None
        if isinstance(node, ParallelFlow) and node.is_passthrough:  # a parallel container: fan out
            action = None  # branches start fresh (no incoming action), as in memory
            targets: Sequence[AbstractNode] = node.nodes_to_run
        else:
            if state.events:
                job_events = _JobEvents(run_id, node, self.logger)
                job_events.events.node(NodeStarted, node)
                job_events.sent = asyncio.ensure_future(store.add_events(run_id, job_events.take()))
            outcome = await self._run_node(
                run_id, node_id, node, hydrated, state.params, state.context, incoming, job_events
            )
            if outcome is None:
                return
            returned, ctx = outcome
            action = DEFAULT_ACTION if returned is None else returned
            try:
                sets, deletes = ctx.delta()
            except CodecError as error:
                await self._fail(run_id, node_id, "post", error, job_events)
                return
            if job_events is not None:
                if sets or deletes:
                    job_events.events.node(ContextChanged, node, keys_set=tuple(sets), keys_deleted=tuple(deletes))
                job_events.events.node(NodeFinished, node, action=returned, duration=job_events.duration())
            successor = first_successor(node, action)
            targets = () if successor is None else (successor,)
        try:
            action_text = encode_action(action)
        except CodecError as error:
            await self._fail(run_id, node_id, "post", error, job_events)
            return
        events: list[str] = []
        if job_events is not None:
            await job_events.wait_sent()
            events = job_events.take()
        plan = hydrated.plan
        successors = [(str(t.id), plan.fire_count(str(t.id))) for t in targets]
        self._maybe_crash("before_complete", node_id)
        completion = await store.complete(
            run_id, job.id, node_id, action_text, sets=sets, deletes=deletes, successors=successors, events=events
        )
        self._maybe_crash("after_complete", node_id)
        if completion.outcome == "skip":
            return
        ids = completion.successors
        if completion.outcome == "dup" and ids:
            flags = await store.still_pending(run_id, ids)
            ids = [i for i, f in zip(ids, flags, strict=True) if f]
        await self._enqueue(run_id, blueprint_hash, ids, completion.action)
        self._maybe_crash("after_enqueue", node_id)

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
    ) -> tuple[Any, RecordingContext] | None:
        """Run the node's lifecycle; ``None`` when it failed or was aborted (already recorded)."""
        ctx = RecordingContext(raw_context)
        try:
            run_params = decode(params_text, key="<params>") if params_text else {}
        except CodecError as error:
            await self._fail(run_id, node_id, "prep", error, job_events)
            return None
        flow = hydrated.flow
        params = {**flow.params, **run_params, **node.params}
        controller = AbortController()
        running = self._running.setdefault(run_id, set())
        running.add(controller)
        args: NodeArgs[Any, Any] = NodeArgs(
            ctx, params, controller.signal, self.logger, name=type(node).__name__, executor=self, node=node,
            incoming_action=incoming, scope=job_events,
        )  # fmt: skip
        chain = hydrated.chain(node_id, node)
        self._maybe_crash("before_node", node_id)
        if self._crash == ("during_node", node_id):
            ctx.on_write = lambda _key: _die()
        try:
            action = await chain(args)
        except AbortError as error:
            assert self._store is not None
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
            running.discard(controller)
            if not running:
                self._running.pop(run_id, None)
        return action, ctx

    async def _fail(
        self, run_id: str, node_id: str, phase: str, error: BaseException, job_events: _JobEvents | None = None
    ) -> None:
        original = error.original_error if isinstance(error, WorkflowError) and error.original_error else error
        assert self._store is not None
        events: list[str] = []
        if job_events is not None:
            await job_events.wait_sent()
            event_phase = error.phase if isinstance(error, WorkflowError) else phase
            job_events.events.node(
                NodeFailed, job_events.node, error=error, phase=event_phase, duration=job_events.duration()
            )
            events = job_events.take()
        await self._store.fail(
            run_id, node_id=node_id, phase=phase, error_type=type(original).__name__, message=str(error),
            events=events,
        )  # fmt: skip

    async def _skipped(self, run_id: str, node_id: str, blueprint_hash: str, reason: str) -> None:
        """Record ``NodeSkipped`` for a job of a run that has ended (one XADD; errors are logged)."""
        assert self._store is not None
        hydrated = self._hydrated.get(blueprint_hash)  # no blueprint read just for a name
        node = hydrated.node(node_id) if hydrated is not None else None
        buffer: list[RunEvent] = []
        emitter = EventEmitter(buffer.append, self.logger, run_id)
        emitter.emit(NodeSkipped, node_id=node_id, node_name=type(node).__name__ if node else "", reason=reason)
        try:
            await self._store.add_events(run_id, [encode_event(event) for event in buffer])
        except BackendError as error:
            log.warning("run %s: NodeSkipped not written: %s", run_id, error)

    async def _enqueue(self, run_id: str, blueprint_hash: str, ids: Sequence[str], action_text: str) -> None:
        if not ids:
            return
        assert self._queue is not None
        prefix = len(run_id) + 1
        jobs = []
        for jid in ids:
            node_id, _, _visit = jid[prefix:].rpartition(":")
            jobs.append((jid, {"r": run_id, "n": node_id, "b": blueprint_hash, "a": action_text}))
        await self._queue.add(jobs)

    async def _job_failed(self, job: QueuedJob, error: BaseException) -> None:
        """A job failed for good (infrastructure errors after BullMQ's retries): fail the run."""
        data = job.data
        if self._store is None or "r" not in data:
            return
        with contextlib.suppress(Exception):
            await self._fail(str(data["r"]), str(data.get("n", "?")), "worker", error)
