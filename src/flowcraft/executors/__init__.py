"""Executors: what runs a flow (in memory, dry run, from a blueprint, distributed)."""

from .base import Executor, RunOptions, WalkScope, first_successor
from .dry_run import DryRunExecutor
from .in_memory import BatchOutcome, InMemoryExecutor

__all__ = [
    "BatchOutcome",
    "DryRunExecutor",
    "Executor",
    "InMemoryExecutor",
    "RunOptions",
    "WalkScope",
    "first_successor",
]
