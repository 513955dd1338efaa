"""Executors: what runs a flow (in memory, dry run, from a blueprint, distributed)."""

from .base import BatchOutcome, Executor, FlowRunner, RunOptions, WalkScope, first_successor
from .dry_run import DryRunExecutor
from .in_memory import InMemoryExecutor

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
