"""Executors: what runs a flow (in memory, dry run, from a blueprint, distributed)."""

from typing import TYPE_CHECKING, Any

from .base import BatchOutcome, Executor, FlowRunner, RunOptions, WalkScope, first_successor
from .in_memory import InMemoryExecutor

if TYPE_CHECKING:
    from .dry_run import DryRunExecutor


def __getattr__(name: str) -> Any:
    if name == "DryRunExecutor":
        # local import: the dry run loads on first use (keeps `import flowcraft` cheap)
        from .dry_run import DryRunExecutor

        return DryRunExecutor
    raise AttributeError(f"module 'flowcraft.executors' has no attribute {name!r}")


__all__ = [
    "BatchOutcome",
    "DryRunExecutor",
    "Executor",
    "FlowRunner",
    "InMemoryExecutor",
    "RunOptions",
    "WalkScope",
    "first_successor",
]
