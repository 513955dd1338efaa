"""The records that cross the engine's two seams: jobs, run creation, commits.

One job is one visit of one node of one run. Its id is deterministic — the only
place the format is written is [`job_id`][flowcraft.engine.job_id] — so that a job decided twice (a
redelivery, a retried commit) is the same job, and the run store deduplicates its
commit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "STOPPED_STATES",
    "Arrival",
    "Charge",
    "Commit",
    "Completion",
    "Failure",
    "Job",
    "JobState",
    "NewRun",
    "Park",
    "Resolution",
    "Resolved",
    "RunSummary",
    "WaitRecord",
    "Usage",
    "job_id",
    "job_id_prefix",
]

ACTIVE_STATES = frozenset({"pending", "running", "awaiting"})
"""States of a run that has not stopped (``awaiting``: parked on waits, none of its jobs running)."""
FINAL_STATES = frozenset({"completed", "failed", "cancelled"})
"""States a run ends in."""
STOPPED_STATES = FINAL_STATES | {"blocked"}
"""States in which a run runs no job on its own (``blocked`` waits for a change of code)."""


def job_id_prefix(run_id: str, node_id: str) -> str:
    """Everything of a job id but the visit number (stores append the visit they hand out)."""
    return f"{run_id}:{node_id}:"


def job_id(run_id: str, node_id: str, visit: int) -> str:
    """The id of visit ``visit`` of node ``node_id`` in run ``run_id``: ``run:node:visit``."""
    return f"{job_id_prefix(run_id, node_id)}{visit}"


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """One node visit to run: which run, which node, which graph, and the action it was reached with."""

    id: str
    run_id: str
    node_id: str
    graph: str
    """The key of the run's stored graph (a blueprint's content hash, or a factory's structural hash)."""
    action: str | None = None
    """The encoded action of the node that handed control to this one (``None`` at a start)."""
    resumed: bool = False
    """The job goes on after one of its waits was resolved (a wait node's resume, or a
    retry timer): the worker reads what the wait left."""
    wait: str | None = None
    """For a resumed job: the id of the wait whose resolution it continues. A queue that
    deduplicates by id tells this delivery from the one that parked on the wait by it."""

    def to_data(self) -> dict[str, Any]:
        """The job's payload on a queue."""
        data: dict[str, Any] = {"r": self.run_id, "n": self.node_id, "b": self.graph}
        if self.action is not None:
            data["a"] = self.action
        if self.resumed:
            data["w"] = self.wait or 1
        return data

    @classmethod
    def from_data(cls, job_id: str, data: Mapping[str, Any]) -> Job:
        """The job behind a queue payload (see [`to_data`][flowcraft.engine.Job.to_data])."""
        action, wait = data.get("a"), data.get("w")
        return cls(job_id, str(data["r"]), str(data["n"]), str(data["b"]), action if isinstance(action, str) else None,
                   bool(wait), wait if isinstance(wait, str) else None)  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class NewRun:
    """What [RunStore.create][flowcraft.engine.RunStore.create] stores, atomically."""

    run_id: str
    graph: str
    """The graph's key (see [`Job.graph`][flowcraft.engine.Job.graph])."""
    graph_text: str
    """The stored graph: blueprint JSON, or ``{"factory": "pkg.mod:fn"}``."""
    params: str
    """Encoded run params."""
    context: Mapping[str, str]
    """Encoded initial context."""
    start: Job
    started_event: str | None = None
    """An encoded ``RunStarted``: when given, the run records its events."""
    budget: str | None = None
    """The run's [`Budget`][flowcraft.Budget] as JSON (``Budget.to_dict()`` plus ``"started"``,
    the wall-clock start time): stored with the run and returned by ``load`` as
    [`JobState.budget`][flowcraft.engine.jobs.JobState.budget]. ``None``: the run has no budget."""


@dataclasses.dataclass(frozen=True, slots=True)
class JobState:
    """What a worker reads before running a job (one round trip)."""

    status: str | None
    params: str | None
    context: dict[str, str]
    done: Completion | None
    """The job's commit, when it has one already (a redelivery)."""
    events: bool = False
    """Whether the run records events (workers then write node events)."""
    budget: str | None = None
    """The run's budget JSON as given to ``create`` ([`NewRun.budget`][flowcraft.engine.jobs.NewRun.budget]),
    or ``None``."""
    usage: str | None = None
    """The run's usage so far as a JSON object (kind -> number), as ``charge`` keeps it;
    ``None`` before the first charge."""
    remote: frozenset[str] = frozenset()
    """Names of context keys whose values the store left out of ``context`` (large ones):
    the worker fetches them when the node reads them (``RedisRunStore.context_values``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Arrival:
    """A successor a finished node hands control to, with the fan-in facts the store needs."""

    node_id: str
    count: int
    """Distinct arrivals that make it run (1: not a join), from `flowcraft.topology.fan_in`."""


@dataclasses.dataclass(frozen=True, slots=True)
class Commit:
    """One node's atomic commit: context delta, action, done record, arrivals, events.

    ``joins`` carries the fan-in rule's release facts for the store: for every join of
    the graph, the node ids that can reach it. The store applies them; it derives
    nothing.
    """

    job_id: str
    node_id: str
    action: str
    sets: Mapping[str, str]
    deletes: Sequence[str]
    arrivals: Sequence[Arrival]
    joins: Mapping[str, frozenset[str]]
    events: Sequence[str] = ()
    expects: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Optimistic concurrency for atomic updates (``ctx.update``, merge policies): key ->
    the encoded value the node's change of it started from (``""``: not set). The store
    applies the commit only if every such key still holds exactly that value; otherwise it
    changes nothing and answers ``"conflict"`` with the keys' current values, checked
    after the done record (a redelivery is ``"dup"``) and in the same atomic step."""


@dataclasses.dataclass(frozen=True, slots=True)
class Completion:
    """The result of a commit.

    ``outcome`` is ``"ok"`` (recorded now), ``"dup"`` (recorded before: a redelivery),
    ``"skip"`` (the run had already ended) or ``"conflict"`` (nothing recorded: a key of
    [`Commit.expects`][flowcraft.engine.Commit.expects] has changed; ``current`` holds
    their values now). ``successors`` are the ``(node id, job id)`` pairs to enqueue;
    ``action`` is the encoded action they receive; ``final`` is ``"completed"`` when this
    commit ended the run.
    """

    outcome: str
    action: str
    successors: tuple[tuple[str, str], ...]
    final: str = ""
    current: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """For ``"conflict"``: the changed keys of ``expects`` -> their encoded values now (``""``: not set)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Failure:
    """Why a run failed: where, in which phase, the error's type and message.

    ``state`` is the state the run ends in: ``"failed"``, or ``"blocked"`` when the run
    cannot go on without a change (its graph changed since it started).
    """

    node_id: str
    phase: str
    error_type: str
    message: str
    events: Sequence[str] = ()
    details: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Extra fields stored in the run's record with the error (a budget's ``budget_kind``,
    ``budget_limit``, ``budget_used``)."""
    abort_running: bool = False
    """Also tell every worker to abort the run's running nodes (the ``"cancel <run id>"``
    control message that [`RunStore.cancel`][flowcraft.engine.RunStore.cancel] sends), as a budget exceeded does."""
    state: str = "failed"
    """The state the run ends in: ``"failed"``, or ``"blocked"`` (see the class docstring)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Charge:
    """One atomic change to a run's budget usage (see [`RunStore.charge`][flowcraft.engine.RunStore.charge])."""

    kind: str
    """``"node_runs"`` or a kind the nodes meter (``"tokens"``)."""
    amount: float
    """How much to add (>= 0)."""
    limit: float | None
    """The limit of ``kind`` (``None``: not limited, just count)."""
    admit: bool = False
    """``True``: all or nothing — refused (usage unchanged) when ``used + amount > limit``
    (node runs: the (k+1)-th is refused with ``used == k``). ``False``: always added,
    refused when the total is over ``limit`` (a node's charge that crosses the limit)."""
    key: str | None = None
    """Deduplication: a charge with a key already applied to this kind (a job id, for a
    redelivered job's node run) changes nothing and is accepted."""


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    """What [`RunStore.charge`][flowcraft.engine.RunStore.charge] answers: ``state`` is ``"ok"`` (accepted),
    ``"exceeded"`` (refused or over the limit) or ``"inactive"`` (no such run, or it has
    ended: nothing changed); ``used`` is the kind's usage after the call."""

    state: str
    used: float


@dataclasses.dataclass(frozen=True, slots=True)
class Park:
    """A job parked on a wait (a wait node after its ``prep``): what ``park`` stores."""

    job_id: str
    wait_id: str
    """``node_id#visit``."""
    node_id: str
    kind: str
    """``"input"`` or ``"timer"``."""
    request: str
    """The encoded request (what the node's ``prep`` returned)."""
    actions: tuple[str, ...] = ()
    fire_at: float | None = None
    """When the wait times out (input) or fires (timer), seconds since the epoch."""
    on_timeout: str | None = None
    """The encoded action taken when it times out (``None``: the default action)."""
    incoming: str | None = None
    """The encoded action the wait node was reached with (its continuation job carries it)."""


@dataclasses.dataclass(frozen=True, slots=True)
class WaitRecord:
    """A stored wait: its ``park`` record, ``state`` (``"open"`` or ``"resolved"``), and
    once resolved the encoded ``value`` and ``action`` and the ``key`` it was resolved with."""

    park: Park
    state: str
    value: str | None = None
    action: str | None = None
    key: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Resolution:
    """What a resume (or a timer) writes to a wait, compare-and-set on it being open."""

    value: str
    """The encoded resume value."""
    action: str
    """The encoded action."""
    key: str | None = None
    """The idempotency key of the resume (a repeat with the same key, value and action
    returns the first result)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Resolved:
    """What ``resolve`` answers: ``outcome`` is ``"ok"`` (resolved now), ``"same"`` (the
    same resume again), ``"taken"`` (resolved before, differently), ``"unknown"`` (no such
    wait) or ``"ended"`` (the run has stopped); ``job`` is the continuation to enqueue
    (for ``"ok"``); ``state`` is the run's state."""

    outcome: str
    job: Job | None = None
    state: str = ""
    record: WaitRecord | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RunSummary:
    """One line of a store's ``runs()``: a run's id, state and
    times (seconds since the epoch)."""

    run_id: str
    state: str
    created_at: float
    updated_at: float
