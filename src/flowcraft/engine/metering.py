"""Budgets of job-engine runs: [`StoreBudget`][flowcraft.engine.metering.StoreBudget] keeps a run's usage in its
[`RunStore`][flowcraft.engine.RunStore], where every change is one atomic ``charge``.

Each worker builds one per job from the run's stored budget; the store compares and
adds atomically, so any number of workers never overshoot a limit. ``remaining`` and
``used`` read what this job last learnt from the store (at load, and at each charge).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..budget import NODE_RUNS, Budget, BudgetMeter
from ..errors import AbortError, BudgetExceededError
from .jobs import Charge
from .protocols import RunStore

__all__ = ["StoreBudget", "encode_budget", "failure_details"]


def encode_budget(budget: Budget, started: float) -> str:
    """The JSON a run stores for ``budget`` (``NewRun.budget``): its dict plus ``"started"``."""
    return json.dumps({**budget.to_dict(), "started": started}, sort_keys=True)


def failure_details(error: BudgetExceededError) -> dict[str, str]:
    """The fields a failed run's record keeps about the limit it exceeded."""
    return {"budget_kind": error.kind, "budget_limit": repr(error.limit), "budget_used": repr(error.used)}


class StoreBudget(BudgetMeter):
    """A run's budget as one job sees it, with the usage kept in the run store.

    Args:
        store: the run store (its ``charge`` is the atomic step).
        run_id: the run.
        text: the stored budget JSON (``encode_budget``).
        usage: the stored usage JSON (``JobState.usage``), or ``None``.
    """

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        text: str,
        usage: str | None,
        *,
        on_exceeded: Callable[[BudgetExceededError], object] | None = None,
    ) -> None:
        data = json.loads(text)
        super().__init__(Budget.from_dict(data), on_exceeded=on_exceeded)
        self.store = store
        self.run_id = run_id
        self.started = float(data.get("started") or self.clock.time())
        if usage:
            self._used.update({str(k): float(v) for k, v in json.loads(usage).items()})

    def elapsed(self) -> float:
        """Wall-clock seconds since the run was started (by the client)."""
        return self.clock.time() - self.started

    async def _add(
        self, kind: str, amount: float, limit: float | None, *, admit: bool, key: str | None
    ) -> tuple[bool, float]:
        if kind == NODE_RUNS and limit is None:  # not limited: no round trip
            return True, self._used.get(kind, 0.0) + amount
        usage = await self.store.charge(self.run_id, Charge(kind, amount, limit, admit, key))
        if usage.state == "inactive":
            raise AbortError(f"Run {self.run_id} has ended; its budget takes no more charges")
        return usage.state == "ok", usage.used
