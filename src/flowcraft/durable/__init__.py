"""Durable runs: a run survives the death of its process and goes on where it stopped.

[`DurableExecutor`][flowcraft.durable.DurableExecutor] runs flows in this process on a
[`SqliteRunStore`][flowcraft.durable.SqliteRunStore] (one
file, stdlib ``sqlite3``, no server). Every node's result is committed before the next
node starts; a new process opened on the same file takes over the runs of a process
that died and finishes them. For many worker processes use
[`DistributedExecutor`][flowcraft.distributed.DistributedExecutor] (Redis), the same engine.

Examples:
    ```python
    from flowcraft.durable import DurableExecutor

    async with DurableExecutor("runs.db", registry=REGISTRY) as executor:
        action = await flow.run(ctx, executor=executor)
    ```
"""

from ..engine.client import RunHandle, RunOutcome, RunStatus
from ..engine.errors import (
    DurabilityNotSupportedError,
    RunBlockedError,
    RunConflictError,
    RunNotFoundError,
    StoreError,
)
from ..engine.jobs import RunSummary
from ..engine.protocols import RunStore
from .executor import DurableExecutor, DurableRunStore
from .sqlite import SqliteRunStore

__all__ = [
    "DurabilityNotSupportedError",
    "DurableExecutor",
    "DurableRunStore",
    "RunBlockedError",
    "RunConflictError",
    "RunHandle",
    "RunNotFoundError",
    "RunOutcome",
    "RunStatus",
    "RunStore",
    "RunSummary",
    "SqliteRunStore",
    "StoreError",
]
