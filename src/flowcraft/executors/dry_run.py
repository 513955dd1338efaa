"""An executor that walks a flow's path without doing the work: ``prep`` and ``post``
run, ``exec`` never does (sub-flows and parallel blocks are walked too)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..node import NodeArgs
from .in_memory import InMemoryExecutor

if TYPE_CHECKING:
    from ..budget import Budget, BudgetMeter
    from ..events import EventEmitter

__all__ = ["DryRunExecutor"]


class DryRunExecutor(InMemoryExecutor):
    """Logs each node it visits and the action it returned; skips every node's ``exec``.

    Flows (and parallel/batch blocks) still run their ``exec``, which walks their inner
    graph — so the whole path is visited. ``post`` sees ``exec_res=None``.
    """

    def budget_meter(self, budget: Budget, events: EventEmitter | None) -> BudgetMeter:
        """A dry run counts node runs only: no deadline, charges are checked but not counted."""
        # local import: budgets load on first use, keeping `import flowcraft` cheap
        from ..budget import MemoryBudget

        on_exceeded = events.budget_exceeded if events is not None else None
        return MemoryBudget(budget, on_exceeded=on_exceeded, node_runs_only=True)

    async def run_node(self, args: NodeArgs[Any, Any]) -> Any:
        """Run ``prep`` and ``post`` (the full lifecycle for flows) and log the visit."""
        node = args.node
        assert node is not None
        label = args.name if node.id is None else f"{node.id} ({args.name})"
        args.logger.info(f"[DryRunExecutor] --> visiting {label}")
        action = await node.run_lifecycle(args, skip_exec=not node.holds_graph)
        args.logger.info(f"[DryRunExecutor] <-- {label} returned {action!r}")
        return action
