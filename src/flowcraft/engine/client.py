"""The client side of the job engine: [`JobExecutor`][flowcraft.engine.JobExecutor] starts runs,
[`RunHandle`][flowcraft.engine.RunHandle] follows them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..actions import DEFAULT_ACTION
from ..budget import Budget
from ..context import Context, TypedContext
from ..errors import AbortError, BudgetExceededError, DurabilityNotSupportedError, RunTimeoutError, WorkflowError
from ..events import EventEmitter, RunCancelled, RunEvent, RunFailed, RunFinished, RunStarted, WaitResolved
from ..executors.base import NULL_LOGGER, RunOptions
from ..flow import Flow
from ..graph.models import WorkflowBlueprint
from ..topology import iter_reachable, wiring_stamp
from ..waits import InvalidResumeValue, RunSuspended, UnknownWaitError, Wait, WaitAlreadyResolved
from .codec import decode, decode_action, encode, encode_action
from .errors import (
    BackendConnectionError,
    BackendTimeoutError,
    CodecError,
    EventsNotEnabledError,
    NotABlueprintFlowError,
    RemoteNodeError,
    RunBlockedError,
    RunNotFoundError,
)
from .eventlog import END_FIELD, EVENT_FIELD, decode_event, encode_event
from .jobs import STOPPED_STATES, Failure, Job, NewRun, Park, Resolution, Resolved, job_id
from .metering import encode_budget
from .plan import (
    FACTORY_ATTRIBUTE,
    JobPlan,
    blueprint_hash,
    canonical_json,
    factory_name,
    flow_from_factory,
    job_successors,
)
from .protocols import JobQueue, RunStore, WaitStore, check_queue, check_store

log = logging.getLogger("flowcraft.engine")

__all__ = [
    "JobExecutor",
    "RunError",
    "RunHandle",
    "RunOutcome",
    "RunStatus",
    "StoredGraph",
    "blueprint_of",
    "graph_of",
]

BLUEPRINT_ATTRIBUTE = "blueprint"
"""The attribute holding a [`WorkflowBlueprint`][flowcraft.graph.WorkflowBlueprint]: ``BlueprintFlow.blueprint``
(the flow of ``GraphBuilder.build`` and ``BlueprintExecutor``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class RunError:
    """Why a run failed: the node, the lifecycle phase, the error type and message (and
    ``detail``, the message of the node's own exception, when ``message`` wraps it)."""

    node_id: str
    phase: str
    type: str
    message: str
    detail: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RunStatus:
    """A snapshot of a run: ``state`` is pending / running / completed / failed / cancelled
    / blocked (its graph changed since it started: the error says how).

    ``usage`` is the budget usage the store keeps (kind -> amount; ``None`` for a run
    without budget charges); ``exceeded`` is the ``(kind, limit, used)`` of the budget
    limit a failed run exceeded.
    """

    run_id: str
    state: str
    last_action: Any = None
    error: RunError | None = None
    cancel_reason: str | None = None
    created_at: float | None = None
    ended_at: float | None = None
    usage: dict[str, float] | None = None
    exceeded: tuple[str, float, float] | None = None

    @property
    def finished(self) -> bool:
        """Whether the run has stopped (completed, failed, cancelled, or blocked)."""
        return self.state in STOPPED_STATES


@dataclasses.dataclass(frozen=True, slots=True)
class RunOutcome:
    """Where a run stands, without waiting: its ``state``; the final ``action`` of a
    completed run; the ``error`` a failed, cancelled or blocked run would raise from
    ``result()``; and the open ``waits`` (none until waits for people land)."""

    state: str
    action: Any = None
    error: BaseException | None = None
    waits: tuple[Any, ...] = ()


def blueprint_of(source: Any) -> WorkflowBlueprint:
    """The blueprint behind ``source``: a blueprint, its dict, or a flow/build result built from one.

    Raises:
        NotABlueprintFlowError: ``source`` was not built from a blueprint.
    """
    if isinstance(source, WorkflowBlueprint):
        return source
    if isinstance(source, Mapping):
        return WorkflowBlueprint.from_dict(source)
    found = getattr(source, BLUEPRINT_ATTRIBUTE, None)
    if isinstance(found, WorkflowBlueprint):
        return found
    raise NotABlueprintFlowError(_NOT_REBUILDABLE.format(kind=type(source).__name__))


_NOT_REBUILDABLE = (
    "Runs on workers need a graph another process can rebuild, and this {kind} is neither: "
    "(1) a flow built from a blueprint (GraphBuilder(...).build(graph), BlueprintExecutor(...).flow, or the "
    "WorkflowBlueprint itself), or (2) a programmatic flow named by a factory: a module-level function "
    "'package.module:function' that returns it, passed to start() as that string or as the function, or "
    "loaded with flowcraft.engine.flow_from_factory(name) before flow.run(ctx, executor=...)."
)


@dataclasses.dataclass(frozen=True, slots=True)
class StoredGraph:
    """A graph as a run stores it: its ``key``, the stored ``text``, where runs start, its name."""

    key: str
    text: str
    start_id: str
    name: str


def graph_of(source: Any) -> StoredGraph:
    """How ``source`` is stored for a run: a blueprint (or a flow built from one), a
    factory name or function, or a flow built by a factory.

    Raises:
        NotABlueprintFlowError: ``source`` is none of these (names both ways).
    """
    if isinstance(source, str) or (callable(source) and not isinstance(source, Flow)):
        return _factory_graph(flow_from_factory(source if isinstance(source, str) else factory_name(source)))
    if isinstance(source, Flow) and isinstance(getattr(source, FACTORY_ATTRIBUTE, None), str):
        return _factory_graph(source)
    if isinstance(source, (WorkflowBlueprint, Mapping)) or isinstance(
        getattr(source, BLUEPRINT_ATTRIBUTE, None), WorkflowBlueprint
    ):
        blueprint = blueprint_of(source)
        text = canonical_json(blueprint)
        name = _flow_label(source) if isinstance(source, Flow) else type(source).__name__
        return StoredGraph(blueprint_hash(text), text, blueprint.start_node_id, name)
    raise NotABlueprintFlowError(_NOT_REBUILDABLE.format(kind=type(source).__name__))


_STORED_ATTRIBUTE = "_flowcraft_stored_graph"


def _factory_graph(flow: Flow) -> StoredGraph:
    """The stored form of a factory flow, kept on the flow while its wiring and its nodes'
    params objects stay the same (a flow run many times is analysed once)."""
    start = flow.start_node
    nodes = list(iter_reachable([start], job_successors)) if start is not None else []
    fingerprint = (wiring_stamp(nodes), tuple(id(node) for node in nodes), tuple(id(node.params) for node in nodes))
    cached = getattr(flow, _STORED_ATTRIBUTE, None)
    if cached is not None and cached[0] == fingerprint:
        stored: StoredGraph = cached[1]
        return stored
    plan = JobPlan(flow)
    key, shapes = plan.identity()
    text = json.dumps({"factory": getattr(flow, FACTORY_ATTRIBUTE), "shapes": shapes}, sort_keys=True)
    stored = StoredGraph(key, text, plan.start_id, _flow_label(flow))
    object.__setattr__(flow, _STORED_ATTRIBUTE, (fingerprint, stored))
    return stored


def _flow_label(flow: Flow) -> str:
    return flow.name if flow.id is None else str(flow.id)


def _wait_of(park: Park) -> Wait:
    return Wait(park.wait_id, park.node_id, park.kind, decode(park.request, key=f"request of {park.wait_id}"),
                park.actions, park.fire_at)  # fmt: skip


def _float(text: str | None) -> float | None:
    return float(text) if text else None


class RunHandle:
    """Follows one run: ``run_id``, [`result`][flowcraft.engine.RunHandle.result],
    [`status`][flowcraft.engine.RunHandle.status], [`context`][flowcraft.engine.RunHandle.context],
    [`cancel`][flowcraft.engine.RunHandle.cancel]."""

    def __init__(self, executor: JobExecutor, run_id: str) -> None:
        self.run_id = run_id
        self._executor = executor

    def __repr__(self) -> str:
        return f"RunHandle({self.run_id!r})"

    async def status(self) -> RunStatus:
        """The run's current state (raises [`RunNotFoundError`][flowcraft.engine.RunNotFoundError]
        for an unknown run)."""
        meta = await self._executor.store.meta(self.run_id)
        if not meta:
            raise RunNotFoundError(
                f"Run {self.run_id!r} does not exist in {self._executor.store!r} (never started, removed after "
                "its retention time, or the store lost its data)",
                run_id=self.run_id,
            )
        error = None
        if meta.get("status") in ("failed", "blocked"):
            error = RunError(
                meta.get("error_node", "?"), meta.get("error_phase", "?"), meta.get("error_type", "Exception"),
                meta.get("error_message", ""), meta.get("error_detail"),
            )  # fmt: skip
        last = meta.get("last_action")
        usage = meta.get("usage")
        exceeded = None
        if "budget_kind" in meta:
            exceeded = (meta["budget_kind"], float(meta.get("budget_limit", "0")), float(meta.get("budget_used", "0")))
        return RunStatus(
            self.run_id, meta.get("status", "pending"), decode_action(last) if last else None, error,
            meta.get("cancel_reason"), _float(meta.get("created_at")), _float(meta.get("ended_at")),
            {str(k): float(v) for k, v in json.loads(usage).items()} if usage else None, exceeded,
        )  # fmt: skip

    async def waits(self) -> list[Wait]:
        """The run's open waits (empty on a store that keeps none)."""
        store = self._executor.store
        if not isinstance(store, WaitStore):
            return []
        return [_wait_of(record.park) for record in await store.waits(self.run_id)]

    async def outcome(self) -> RunOutcome:
        """The run's [`RunOutcome`][flowcraft.engine.RunOutcome] now (never waits): state, and
        the action or the error ``result()`` would give once it has stopped, or its open waits."""
        status = await self.status()
        if not status.finished:
            return RunOutcome(status.state, waits=tuple(await self.waits()) if status.state == "awaiting" else ())
        try:
            action = self._outcome(status)
        except Exception as error:
            return RunOutcome(status.state, error=error)
        return RunOutcome(status.state, action)

    async def context(self) -> dict[str, Any]:
        """The run's context (decoded).

        Raises:
            RunNotFoundError: the run does not exist (never started, expired, or the store
                lost it) — not an empty context, which would wipe a caller's.
        """
        store = self._executor.store
        raw = await store.context(self.run_id)
        if not raw and not await store.meta(self.run_id):
            await self.status()  # raises RunNotFoundError
        return {key: decode(value, key=key) for key, value in raw.items()}

    async def events(self, *, block: float = 1.0) -> AsyncIterator[RunEvent]:
        """Iterate over the run's events, from ``RunStarted`` to
        the final ``RunFinished`` / ``RunFailed`` / ``RunCancelled`` (then iteration ends).

        Works for runs started with ``events=True`` (``DistributedExecutor.start``) or
        through ``flow.run(..., on_event=...)``, from any client and at any time while the
        run's keys exist: the events already written are replayed first. Node events
        come from the workers; errors are rebuilt from their type name and message
        ([`WorkflowError`][flowcraft.WorkflowError] around a
        [`RemoteNodeError`][flowcraft.distributed.RemoteNodeError]).

        Examples:
            ```python
            handle = await executor.start(blueprint, ctx, events=True)
            async for event in handle.events():
                print(event)
            ```

        Args:
            block: seconds each blocking read waits before the run's state is checked.

        Raises:
            EventsNotEnabledError: the run was started without events.
            RunNotFoundError: the run does not exist.
        """
        meta = await self._executor.store.meta(self.run_id)
        if not meta:
            await self.status()  # raises RunNotFoundError
        if not meta.get("events"):
            raise EventsNotEnabledError(
                f"Run {self.run_id!r} was started without events; start it with events=True "
                "(DistributedExecutor.start) or pass on_event to flow.run()",
                run_id=self.run_id,
            )
        started: float | None = None
        async for event in self._read_events(block):
            if isinstance(event, RunStarted):
                started = event.time
            yield event
        status = await self.status()
        yield self._final_event(status, _duration(status, started))

    async def _read_events(self, block: float) -> AsyncIterator[RunEvent]:
        """The stream's events up to its end marker (or the run's end, if the marker is lost)."""
        store = self._executor.store
        after = "0-0"
        draining = False
        while True:
            entries = await store.read_events(self.run_id, after, block=None if draining else block)
            if not entries:
                if draining:
                    return
                # quiet for `block` s: the marker may be lost (Redis lost data); check the state
                draining = (await self.status()).finished
                continue
            for entry_id, fields in entries:
                after = entry_id
                if END_FIELD in fields:
                    return
                text = fields.get(EVENT_FIELD)
                if text is None:
                    continue
                try:
                    event = decode_event(text)
                except Exception as error:
                    log.warning("run %s: unreadable event %s skipped: %s", self.run_id, entry_id, error)
                    continue
                if event is not None:
                    yield event

    def _final_event(self, status: RunStatus, duration: float) -> RunEvent:
        when = status.ended_at or time.time()
        try:
            action = self._outcome(status)
        except AbortError as error:
            return RunCancelled(run_id=self.run_id, time=when, reason=error.reason, duration=duration)
        except Exception as error:
            return RunFailed(run_id=self.run_id, time=when, error=error, duration=duration)
        return RunFinished(run_id=self.run_id, time=when, action=action, duration=duration)

    async def cancel(self, reason: str = "cancelled by the client") -> None:
        """Cancel the run: no further node starts; running nodes see their signal abort."""
        await self._executor.store.cancel(self.run_id, reason)

    async def result(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Wait for the run to end and return its final action.

        Raises:
            AbortError: the run was cancelled.
            BudgetExceededError: the run used up a limit of its budget.
            WorkflowError: a node failed (``node_name`` and ``phase`` say where).
            RunTimeoutError: ``timeout`` seconds passed first (the run goes on).
            RunNotFoundError: the run does not exist (or Redis lost it).
            BackendConnectionError: Redis stayed unreachable for ``connection_grace`` seconds.
        """
        try:
            async with asyncio.timeout(timeout):
                status = await self._wait()
        except TimeoutError as error:
            if isinstance(error, RunTimeoutError):
                raise
            raise RunTimeoutError(f"Run {self.run_id!r} did not finish within {timeout} s") from None
        return self._outcome(status)

    def _outcome(self, status: RunStatus) -> Any:
        if not status.finished:
            raise RuntimeError(f"Run {self.run_id!r} has not ended ({status.state})")
        if status.state == "completed":
            return status.last_action
        if status.state == "cancelled":
            raise AbortError(f"Run {self.run_id!r} was cancelled: {status.cancel_reason}", reason=status.cancel_reason)
        error = status.error
        assert error is not None
        if status.state == "blocked":
            raise RunBlockedError(f"Run {self.run_id!r} is blocked at node {error.node_id!r}: {error.message}",
                                  run_id=self.run_id)  # fmt: skip
        if status.exceeded is not None and error.type == BudgetExceededError.__name__:
            kind, limit, used = status.exceeded
            raise BudgetExceededError(kind, limit, used, error.node_id, usage=status.usage or {kind: used})
        cause = error.detail if error.detail is not None else error.message  # the node's own message, once
        original = RemoteNodeError(f"{error.type}: {cause}", type_name=error.type)
        raise WorkflowError(error.message, error.node_id, error.phase, original)

    async def _wait(self) -> RunStatus:
        executor = self._executor
        store = executor.store
        failing_since: float | None = None
        while True:
            try:
                async with store.subscribe_run(self.run_id) as subscription:
                    while True:
                        status = await self.status()
                        failing_since = None
                        if status.finished:
                            return status
                        if status.state == "awaiting":
                            waits = await self.waits()
                            if any(wait.kind == "input" for wait in waits):  # timers fire by themselves
                                raise RunSuspended(self.run_id, waits)
                        await subscription.get(executor.poll_interval)
            except (BackendConnectionError, BackendTimeoutError, ConnectionError, OSError):
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > executor.connection_grace:
                    raise
                await asyncio.sleep(min(0.5, executor.poll_interval))


class JobExecutor:
    """Runs flows as one job per node through a [`RunStore`][flowcraft.engine.RunStore] and a
    [`JobQueue`][flowcraft.engine.JobQueue];
    [`JobWorker`][flowcraft.engine.JobWorker] processes (any number, anywhere) run the jobs.

    A [`FlowRunner`][flowcraft.FlowRunner]: ``await flow.run(ctx, executor=executor)``. The
    flow must be one another process can rebuild — built from a blueprint, or named by a
    factory ([`graph_of`][flowcraft.engine.graph_of]).

    Args:
        store, queue: the backends, shared with the workers.
        poll_interval: how often ``result()`` re-reads the status besides notifications.
        connection_grace: seconds ``result()`` rides out an unreachable backend before raising.

    Raises:
        TypeError: ``store`` or ``queue`` lacks a method of its protocol (named).
    """

    def __init__(
        self,
        *,
        store: RunStore | None = None,
        queue: JobQueue | None = None,
        poll_interval: float = 1.0,
        connection_grace: float = 30.0,
    ) -> None:
        self.poll_interval = poll_interval
        self.connection_grace = connection_grace
        store = check_store(store) if store is not None else None
        queue = check_queue(queue) if queue is not None else None
        self._store = store
        self._queue = queue

    @property
    def store(self) -> RunStore:
        """The run store."""
        if self._store is None:
            self._store = self._open_store()
        return self._store

    @property
    def queue(self) -> JobQueue:
        """The job queue (opened on first use)."""
        if self._queue is None:
            self._queue = self._open_queue()
        return self._queue

    def _open_store(self) -> RunStore:
        raise TypeError(f"{type(self).__name__} needs store= (a RunStore)")

    def _open_queue(self) -> JobQueue:
        raise TypeError(f"{type(self).__name__} needs queue= (a JobQueue)")

    async def __aenter__(self) -> JobExecutor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the backends' connections."""
        if self._queue is not None:
            await self._queue.aclose()
        if self._store is not None:
            await self._store.aclose()

    async def start(
        self,
        graph: Any,
        context: Context | Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        events: bool = False,
        budget: Budget | None = None,
    ) -> RunHandle:
        """Store the graph and the run, enqueue its start job, and return a handle at once.

        ``graph`` is a blueprint (or its dict, or a flow built from one), a flow factory
        (``"package.module:function"`` or the function), or a flow a factory built.

        With ``events=True`` the run records its run events
        (workers add node events as they go); follow them from any client with
        [`RunHandle.events`][flowcraft.engine.RunHandle.events]. Off by default: a run without events costs nothing
        extra. ``flow.run(..., on_event=listener)`` turns it on by itself.

        With ``budget`` (a [`Budget`][flowcraft.Budget]) the workers check it before each
        node and each retry; the usage is kept in the store and updated atomically, so
        any number of workers never overshoot a limit. Its ``max_seconds`` counts from now.

        Raises:
            NotABlueprintFlowError: ``graph`` is none of these (the message names both ways).
            CodecError: a context value or param cannot be encoded (names the key and type).
        """
        handle, start, _ = await self._create_run(
            graph, context, params=params, run_id=run_id, events=events, budget=budget
        )
        if start is None:
            raise ValueError(f"A run with id {handle.run_id!r} already exists")
        try:
            await self.queue.add([start])
        except BaseException as error:
            await self._abandon(start, error)
            raise
        return handle

    async def _abandon(self, start: Job, error: BaseException) -> None:
        """The start job could not be enqueued: fail the run, so that nobody waits for it.
        (If even that fails, the store's reconciler, where it has one, enqueues the job later.)"""
        failure = Failure(
            start.node_id, "start", type(error).__name__, f"the run's start job could not be enqueued: {error}"
        )
        try:
            await self.store.fail(start.run_id, failure)
        except Exception as fail_error:
            log.warning("run %s: start job not enqueued, and the run not failed: %s", start.run_id, fail_error)

    async def _create_run(
        self,
        graph: Any,
        context: Context | Mapping[str, Any] | None,
        *,
        params: Mapping[str, Any] | None,
        run_id: str | None,
        events: bool,
        budget: Budget | None = None,
    ) -> tuple[RunHandle, Job | None, StoredGraph]:
        """Store the graph and the run; the handle, the start job (``None``: the run existed), the graph."""
        stored = graph_of(graph)
        run_id = run_id or uuid.uuid4().hex
        if ":" in run_id or "{" in run_id or "}" in run_id or not run_id:
            raise ValueError(f"run ids must be non-empty without ':', '{{' or '}}', got {run_id!r}")
        encoded = {name: encode(value, key=name) for name, value in _entries(context)}
        params_text = encode(dict(params or {}), key="<params>")
        start = Job(job_id(run_id, stored.start_id, 1), run_id, stored.start_id, stored.key)
        started_event = None
        if events:
            started_event = encode_event(
                RunStarted(run_id=run_id, time=time.time(), flow=stored.name, params=dict(params or {}))
            )
        if budget is not None and not isinstance(budget, Budget):
            raise TypeError(f"budget must be a flowcraft.Budget, got {type(budget).__name__}: {budget!r}")
        budget_text = encode_budget(budget, time.time()) if budget is not None else None
        created = await self.store.create(
            NewRun(run_id, stored.key, stored.text, params_text, encoded, start, started_event, budget_text)
        )
        return RunHandle(self, run_id), start if created else None, stored

    # ---- waits ----------------------------------------------------------------------------

    def _wait_store(self) -> WaitStore:
        store = self.store
        if not isinstance(store, WaitStore):
            raise DurabilityNotSupportedError(f"{store!r} keeps no waits: resume needs a durable or Redis store")
        return store

    async def resume(
        self,
        run_id: str,
        wait_id: str,
        value: Any = None,
        *,
        action: Any = None,
        idempotency_key: str | None = None,
    ) -> RunHandle:
        """Resolve the open wait ``wait_id`` (``node_id#visit``) of a run with ``value`` and
        ``action`` (default ``DEFAULT_ACTION``); the wait node's ``post`` then runs (on the
        workers, or in this process for a durable executor) and the run goes on. Safe from
        any process, any time later; of concurrent resumes of one wait exactly one wins.

        Raises:
            RunNotFoundError: no such run.
            UnknownWaitError: the run has no such wait (the message lists its open waits).
            InvalidResumeValue: ``action`` is not one the wait allows, the value cannot be
                stored, or the wait is a timer; the wait stays open.
            WaitAlreadyResolved: the wait was resolved before (unless by a resume with the
                same ``idempotency_key``, value and action: then its handle is returned),
                or the run has stopped.
        """
        store = self._wait_store()
        record = await store.wait(run_id, wait_id)
        if record is None:
            if not await self.store.meta(run_id):
                raise RunNotFoundError(f"Run {run_id!r} does not exist in {store!r}", run_id=run_id)
            open_ids = [w.park.wait_id for w in await store.waits(run_id)]
            raise UnknownWaitError(
                f"Run {run_id!r} has no wait {wait_id!r} (open waits: {', '.join(open_ids) or 'none'})"
            )
        park = record.park
        if park.kind != "input":
            raise InvalidResumeValue(f"Wait {wait_id!r} of run {run_id!r} is a timer: it fires by itself")
        chosen = DEFAULT_ACTION if action is None else action
        if park.actions and action is None:
            raise InvalidResumeValue(
                f"Wait {wait_id!r} of run {run_id!r} needs an action, one of {list(park.actions)}: "
                "resume(..., action=...); the wait stays open"
            )
        if park.actions and chosen not in park.actions:
            raise InvalidResumeValue(
                f"Wait {wait_id!r} of run {run_id!r} allows the actions {list(park.actions)}, not {chosen!r}; "
                "the wait stays open"
            )
        try:
            value_text = encode(value, key=f"resume value of {wait_id}")
            action_text = encode_action(chosen)
        except CodecError as error:
            raise InvalidResumeValue(f"{error}; the wait stays open") from error
        resolved = await store.resolve(run_id, wait_id, Resolution(value_text, action_text, idempotency_key))
        return await self._after_resolve(run_id, wait_id, resolved, chosen, "resume")

    async def fire_timers(self, now: float) -> list[str]:
        """Fire every armed timer due at ``now`` (seconds since the epoch), earliest first:
        expired waits take their ``on_timeout`` action, sleeps go on. The ids of the waits
        fired here (one another process fired first is skipped)."""
        store = self._wait_store()
        fired = []
        for run_id, wait_id in await store.due(now):
            record = await store.wait(run_id, wait_id)
            if record is None or record.state != "open":
                continue
            action_text = record.park.on_timeout or encode_action(DEFAULT_ACTION)
            resolved = await store.resolve(run_id, wait_id, Resolution(encode(None), action_text, "timer"))
            if resolved.outcome == "ok":
                await self._after_resolve(run_id, wait_id, resolved, decode_action(action_text), "timer")
                fired.append(wait_id)
        return fired

    async def _after_resolve(
        self, run_id: str, wait_id: str, resolved: Resolved, action: Any = None, by: str = ""
    ) -> RunHandle:
        if resolved.outcome == "ok":
            if (await self.store.meta(run_id)).get("events"):
                event = WaitResolved(run_id=run_id, time=time.time(), wait_id=wait_id, action=action, by=by)
                await self.store.add_events(run_id, [encode_event(event)])
            await self._continue(run_id, resolved.job)
        elif resolved.outcome == "taken":
            key = resolved.record.key if resolved.record is not None else None
            raise WaitAlreadyResolved(
                f"Wait {wait_id!r} of run {run_id!r} was resolved already"
                + (f" (idempotency key {key!r})" if key else "")
                + "; resume again with the same idempotency_key, value and action to get the first result"
            )
        elif resolved.outcome == "ended":
            raise WaitAlreadyResolved(
                f"Run {run_id!r} has stopped ({resolved.state}); wait {wait_id!r} cannot resume it"
            )
        elif resolved.outcome == "unknown":
            raise UnknownWaitError(f"Run {run_id!r} has no wait {wait_id!r}")
        return RunHandle(self, run_id)

    async def _continue(self, run_id: str, job: Job | None) -> None:
        """Run a resolved wait's continuation job (enqueued for the workers)."""
        if job is not None:
            await self.queue.add([job])

    async def handle(self, run_id: str) -> RunHandle:
        """Reattach to a run started elsewhere.

        Raises:
            RunNotFoundError: there is no such run.
        """
        handle = RunHandle(self, run_id)
        await handle.status()
        return handle

    async def run(self, flow: Flow, context: Context | None = None, options: RunOptions | None = None) -> Any:
        """Run ``flow`` (built from a blueprint) across the workers; fills ``context`` with the final state.

        With ``options.on_event`` the listener receives the run's events in order, in this event
        loop: ``RunStarted``, the workers' node
        events, then one of ``RunFinished`` / ``RunFailed`` / ``RunCancelled``
        (``run_id`` is the distributed run id). A listener that raises is logged and ignored.

        Raises:
            NotABlueprintFlowError: the flow was not built from a blueprint.
            AbortError: the run was cancelled (also through ``options.signal``/``controller``).
            WorkflowError: a node failed.
        """
        ctx = context if context is not None else TypedContext()
        params = {**flow.params, **(options.params or {})} if options is not None else dict(flow.params)
        listener = options.on_event if options is not None else None
        if listener is None:
            return await self._run(flow, ctx, params, options, None)
        logger = options.logger if options is not None and options.logger is not None else NULL_LOGGER
        emitter = EventEmitter(listener, logger, uuid.uuid4().hex)
        return await self._run(flow, ctx, params, options, emitter)

    async def _run(
        self,
        flow: Flow,
        ctx: Context,
        params: dict[str, Any],
        options: RunOptions | None,
        emitter: EventEmitter | None,
    ) -> Any:
        run_id = emitter.run_id if emitter is not None else None
        budget = options.budget if options is not None else None
        handle = await self.start(flow, ctx, params=params, run_id=run_id, events=emitter is not None, budget=budget)
        started = time.perf_counter()
        pump = asyncio.ensure_future(self._pump(handle, emitter)) if emitter is not None else None
        signal = None
        if options is not None:
            signal = options.signal or (options.controller.signal if options.controller is not None else None)
        cancelling: list[asyncio.Task[None]] = []
        loop = asyncio.get_running_loop()
        ended = False

        def cancel(reason: Any) -> None:
            if not ended:
                cancelling.append(loop.create_task(handle.cancel(str(reason))))

        def on_abort(reason: Any) -> None:
            # Runs in the thread that aborts (any thread): hand the cancel to the run's loop.
            loop.call_soon_threadsafe(cancel, reason)

        if signal is not None:
            signal.add_listener(on_abort)
        outcome: Any = None
        try:
            outcome = await handle.result()
            return outcome
        except BaseException as error:
            outcome = error
            raise
        finally:
            ended = True
            if signal is not None:
                signal.remove_listener(on_abort)
            for task in cancelling:
                with contextlib.suppress(Exception):
                    await task
            with contextlib.suppress(RunNotFoundError):
                await _fill(ctx, await handle.context())
            if pump is not None and emitter is not None:
                await self._finish_events(pump, emitter, outcome, time.perf_counter() - started)

    async def _pump(self, handle: RunHandle, emitter: EventEmitter) -> None:
        """Deliver the stream's events (all but the final one) to ``emitter``, in order."""
        try:
            async for event in handle._read_events(block=self.poll_interval):
                _deliver(emitter, event)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            emitter.logger.error(f"run {handle.run_id}: reading run events failed: {error}", error=error)

    async def _finish_events(
        self, pump: asyncio.Future[None], emitter: EventEmitter, outcome: Any, duration: float
    ) -> None:
        """Drain the stream (bounded wait), then emit the run's final event."""
        # The run ended: its end marker is in the stream, the reader returns at once. A run that
        # goes on (task cancelled, timeout, Redis lost) has no marker yet: stop reading now.
        ended = not isinstance(outcome, BaseException) or isinstance(outcome, (AbortError, WorkflowError))
        try:
            if ended:
                await asyncio.wait_for(asyncio.shield(pump), timeout=max(5.0, 2 * self.poll_interval))
        except TimeoutError:  # a stuck read never holds up the run's result
            pass
        finally:
            if not pump.done():
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pump
        if isinstance(outcome, (AbortError, asyncio.CancelledError)):
            reason = outcome.reason if isinstance(outcome, AbortError) else "task cancelled"
            emitter.emit(RunCancelled, reason=reason, duration=duration)
        elif isinstance(outcome, BaseException):
            emitter.emit(RunFailed, error=outcome, duration=duration)
        else:
            emitter.emit(RunFinished, action=outcome, duration=duration)


def _deliver(emitter: EventEmitter, event: RunEvent) -> None:
    try:
        emitter.listener(event)
    except Exception as error:
        emitter.logger.error(f"run event listener raised {type(error).__name__}: {error}", error=error)


def _duration(status: RunStatus, started: float | None) -> float:
    begin = started if started is not None else status.created_at
    end = status.ended_at if status.ended_at is not None else time.time()
    return max(0.0, end - begin) if begin is not None else 0.0


def _entries(context: Context | Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    if context is None:
        return []
    if isinstance(context, Mapping):
        return [(str(k), v) for k, v in context.items()]
    return list(context.entries())


async def _fill(ctx: Context, final: Mapping[str, Any]) -> None:
    for key in list(ctx.keys()):
        if key not in final:
            await ctx.delete(key)
    for key, value in final.items():
        await ctx.set(key, value)
