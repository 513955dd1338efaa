"""The job engine: runs a flow as one job per node visit, through two seams.

- [`RunStore`][flowcraft.engine.RunStore] — run records, context, done records, joins, pending jobs, events;
  one atomic, idempotent commit per node.
- [`JobQueue`][flowcraft.engine.JobQueue] — delivers jobs at least once.

[`JobExecutor`][flowcraft.engine.JobExecutor] starts runs and follows them (a [`FlowRunner`][flowcraft.FlowRunner]);
[`JobWorker`][flowcraft.engine.JobWorker] runs their jobs. Backends: Redis + BullMQ in
[`flowcraft.distributed`][flowcraft.distributed], in-memory ones in
[`flowcraft.testing`][flowcraft.testing]. Which nodes
are joins and when they fire comes from the one fan-in rule,
`flowcraft.topology.fan_in`. A flow runs as jobs when another process can rebuild
it: built from a blueprint, or named by a factory ([`flow_from_factory`][flowcraft.engine.flow_from_factory]).
"""

from __future__ import annotations

from .client import JobExecutor, RunError, RunHandle, RunOutcome, RunStatus, blueprint_of, graph_of
from .errors import GraphMismatchError, NotABlueprintFlowError, RunNotFoundError
from .jobs import Arrival, Charge, Commit, Completion, Failure, Job, JobState, NewRun, Usage, job_id
from .memory import MemoryJobQueue, MemoryRunStore
from .metering import StoreBudget
from .plan import JobPlan, factory_name, flow_from_factory, stable_node_ids, structural_hash
from .protocols import JobQueue, RunStore, Subscription, check_queue, check_store
from .worker import JobWorker

__all__ = [
    "Arrival",
    "Charge",
    "Commit",
    "Completion",
    "Failure",
    "GraphMismatchError",
    "Job",
    "JobExecutor",
    "JobPlan",
    "JobQueue",
    "JobState",
    "JobWorker",
    "MemoryJobQueue",
    "MemoryRunStore",
    "NewRun",
    "NotABlueprintFlowError",
    "RunError",
    "RunHandle",
    "RunNotFoundError",
    "RunOutcome",
    "RunStatus",
    "RunStore",
    "StoreBudget",
    "Subscription",
    "Usage",
    "blueprint_of",
    "check_queue",
    "check_store",
    "factory_name",
    "flow_from_factory",
    "graph_of",
    "job_id",
    "stable_node_ids",
    "structural_hash",
]
