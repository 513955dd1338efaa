"""Run budgets: a number of node runs, a wall-clock deadline, and costs the nodes meter.

Give a run a [`Budget`][flowcraft.budget.Budget] (``flow.run(ctx, budget=Budget(...))``, or
``JobExecutor.start(..., budget=...)``). The executor checks it before each node and each
retry; nodes meter their own costs with ``await args.budget.charge("tokens", n)`` and
read what is left with ``args.budget.remaining("tokens")``. Exceeding any limit raises
[`BudgetExceededError`][flowcraft.BudgetExceededError] (a [`FatalWorkflowError`][flowcraft.FatalWorkflowError]): the
run stops and its in-flight nodes are aborted.

Examples:
    ```python
    class Ask(Node):
        async def exec(self, args):
            reply = await llm.complete(args.prep_res)
            await args.budget.charge("tokens", reply.usage.total_tokens)
            return reply.text

    await flow.run(ctx, budget=Budget(max_node_runs=50, max_seconds=120, limits={"tokens": 200_000}))
    ```

Node runs count the user's nodes: not the top-level flow, not nested flows, parallel
blocks or batch flows themselves (their inner nodes and items count), not the wiring a
graph compiler inserts (containers, joins, mappers). With ``max_node_runs=k``, k nodes
run and the (k+1)-th is refused (``used == k``).
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .abort import AbortController
from .clock import Clock, current
from .errors import BudgetExceededError

if TYPE_CHECKING:
    from .node import AbstractNode

__all__ = ["NODE_RUNS", "SECONDS", "Budget", "BudgetMeter", "MemoryBudget", "NodeBudget", "UNLIMITED", "counts_as_run"]

NODE_RUNS = "node_runs"
"""The kind of usage counting node runs (limited by ``Budget.max_node_runs``)."""
SECONDS = "seconds"
"""The kind of usage measuring the run's wall-clock time (limited by ``Budget.max_seconds``)."""
_BUILTIN_KINDS = (NODE_RUNS, SECONDS)


def _positive(name: str, value: Any, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        what = "an int" if integer else "a number"
        raise TypeError(f"Budget.{name} must be {what} > 0, got {type(value).__name__}: {value!r}")
    if math.isnan(value) or value <= 0:
        raise ValueError(f"Budget.{name} must be > 0, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class Budget:
    """The limits of one run (``None``: unlimited).

    Args:
        max_node_runs: node runs allowed (an int > 0).
        max_seconds: wall-clock seconds from the start of the run (> 0).
        limits: the user's own kinds and their limits, e.g. ``{"tokens": 2e5, "usd": 5}``.

    Raises:
        TypeError, ValueError: a limit of the wrong type or ≤ 0 (the message names it).
    """

    max_node_runs: int | None = None
    max_seconds: float | None = None
    limits: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_node_runs is not None:
            _positive("max_node_runs", self.max_node_runs, integer=True)
        if self.max_seconds is not None:
            object.__setattr__(self, "max_seconds", float(_positive("max_seconds", self.max_seconds)))
        if not isinstance(self.limits, Mapping):
            raise TypeError(f"Budget.limits must be a mapping of kind -> limit, got {type(self.limits).__name__}")
        limits: dict[str, float] = {}
        for kind, limit in self.limits.items():
            if not isinstance(kind, str) or not kind:
                raise TypeError(f"Budget.limits keys must be non-empty strings (kinds), got {kind!r}")
            if kind in _BUILTIN_KINDS:
                field = "max_node_runs" if kind == NODE_RUNS else "max_seconds"
                raise ValueError(f"Budget.limits[{kind!r}]: {kind!r} is limited by Budget.{field}")
            limits[kind] = float(_positive(f"limits[{kind!r}]", limit))
        object.__setattr__(self, "limits", types.MappingProxyType(limits))

    def limit(self, kind: str) -> float | None:
        """The limit of ``kind`` (``None``: not limited)."""
        if kind == NODE_RUNS:
            return None if self.max_node_runs is None else float(self.max_node_runs)
        if kind == SECONDS:
            return self.max_seconds
        return self.limits.get(kind)

    def to_dict(self) -> dict[str, Any]:
        """The budget as JSON-ready data (``maxNodeRuns``, ``maxSeconds``, ``limits``)."""
        out: dict[str, Any] = {"limits": dict(self.limits)}
        if self.max_node_runs is not None:
            out["maxNodeRuns"] = self.max_node_runs
        if self.max_seconds is not None:
            out["maxSeconds"] = self.max_seconds
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Budget:
        """The budget ``to_dict`` wrote."""
        return cls(data.get("maxNodeRuns"), data.get("maxSeconds"), dict(data.get("limits") or {}))


def counts_as_run(node: AbstractNode) -> bool:
    """Whether running ``node`` counts as a node run: not a flow, parallel block or batch
    (their inner nodes count), not a structural node (containers, joins, mappers)."""
    return not (node.holds_graph or node.is_passthrough or node.is_structural)


def _node_id(node: AbstractNode | None) -> str | None:
    if node is None:
        return None
    return type(node).__name__ if node.id is None else str(node.id)


class BudgetMeter:
    """The usage of one run against its [`Budget`][flowcraft.budget.Budget], shared by all of its nodes.

    Executors call ``admit`` before each node and ``check`` before each retry;
    nodes reach the meter through ``args.budget`` (a [`NodeBudget`][flowcraft.budget.NodeBudget]). Subclasses
    implement ``_add`` (the atomic compare-and-add on the usage they keep).

    ``controller`` is aborted (with the [`BudgetExceededError`][flowcraft.budget.BudgetExceededError] as reason) when a
    limit is exceeded, so the run's in-flight nodes stop.
    """

    def __init__(
        self,
        budget: Budget,
        *,
        clock: Clock | None = None,
        on_exceeded: Callable[[BudgetExceededError], object] | None = None,
    ) -> None:
        self.budget = budget
        self.clock = clock if clock is not None else current()
        self.controller = AbortController()
        self.error: BudgetExceededError | None = None
        self.on_exceeded = on_exceeded
        self._used: dict[str, float] = {NODE_RUNS: 0.0, **dict.fromkeys(budget.limits, 0.0)}

    # ---- what nodes see ------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since the run started."""
        raise NotImplementedError

    def used(self, kind: str) -> float:
        """How much of ``kind`` the run has used (as far as this process knows)."""
        if kind == SECONDS:
            return self.elapsed()
        self._known(kind)
        return self._used.get(kind, 0.0)

    def remaining(self, kind: str) -> float:
        """What is left of ``kind`` (``math.inf`` when it is not limited)."""
        limit = self.budget.limit(kind)
        used = self.used(kind)
        return math.inf if limit is None else max(0.0, limit - used)

    @property
    def usage(self) -> dict[str, float]:
        """A snapshot of every kind's usage (``seconds`` included)."""
        return {**self._used, SECONDS: self.elapsed()}

    async def charge(self, kind: str, amount: float, node: AbstractNode | None = None) -> None:
        """Add ``amount`` of ``kind`` to the run's usage; raises when it crosses the limit.

        Raises:
            ValueError: ``kind`` is not a kind of this budget (or is metered by the
                executor), or ``amount`` is negative.
            TypeError: ``amount`` is not a number.
            BudgetExceededError: this charge crossed the limit (the usage includes it).
        """
        amount = _amount(kind, amount)
        if kind in _BUILTIN_KINDS:
            raise ValueError(f"charge(kind={kind!r}): {kind} is metered by the executor, not by nodes")
        limit = self._known(kind)
        self._raise_if_stopped()
        ok, used = await self._add(kind, amount, limit, admit=False, key=None)
        self._used[kind] = used
        if not ok:
            assert limit is not None
            raise self._exceed(kind, limit, used, node)

    # ---- what executors call ---------------------------------------------------------------

    async def admit(self, node: AbstractNode, key: str | None = None) -> None:
        """Before a node: the deadline, then (for a counted node) one more node run.

        ``key`` names this node run for stores that deduplicate (a job id).
        """
        self._raise_if_stopped()
        self._check_deadline(node)
        if not counts_as_run(node):
            return
        limit = self.budget.limit(NODE_RUNS)
        ok, used = await self._add(NODE_RUNS, 1.0, limit, admit=True, key=key)
        self._used[NODE_RUNS] = used
        if not ok:
            assert limit is not None
            raise self._exceed(NODE_RUNS, limit, used, node)

    async def check(self, node: AbstractNode | None) -> None:
        """Before a retry: the deadline, and whether the run was stopped."""
        self._raise_if_stopped()
        self._check_deadline(node)

    def time_left(self) -> float | None:
        """Seconds until the deadline (``None``: no deadline to watch)."""
        limit = self.budget.max_seconds
        return None if limit is None else limit - self.elapsed()

    def expire(self) -> None:
        """The deadline passed (a timer): stop the run now, aborting its in-flight nodes."""
        limit = self.budget.max_seconds
        if self.error is None and limit is not None:
            self._exceed(SECONDS, limit, self.elapsed(), None)

    # ---- internals -------------------------------------------------------------------------

    async def _add(
        self, kind: str, amount: float, limit: float | None, *, admit: bool, key: str | None
    ) -> tuple[bool, float]:
        """Atomically add ``amount`` to ``kind``: ``(accepted, used after)``.

        ``admit``: all or nothing (refused, usage unchanged, when ``used + amount > limit``);
        otherwise always added, refused when the total is over ``limit``.
        """
        raise NotImplementedError

    def _known(self, kind: str) -> float | None:
        if not isinstance(kind, str):
            raise TypeError(f"budget kind must be a string, got {type(kind).__name__}: {kind!r}")
        if kind in _BUILTIN_KINDS:
            return self.budget.limit(kind)
        if kind not in self.budget.limits:
            known = ", ".join(repr(k) for k in (*_BUILTIN_KINDS, *self.budget.limits))
            raise ValueError(f"budget kind {kind!r} is not limited by this run's Budget (kinds: {known})")
        return self.budget.limits[kind]

    def _check_deadline(self, node: AbstractNode | None) -> None:
        limit = self.budget.max_seconds
        if limit is not None:
            elapsed = self.elapsed()
            if elapsed > limit:
                raise self._exceed(SECONDS, limit, elapsed, node)

    def _raise_if_stopped(self) -> None:
        error = self.error
        if error is not None:
            raise BudgetExceededError(error.kind, error.limit, error.used, error.node_id, usage=error.usage)

    def _exceed(self, kind: str, limit: float, used: float, node: AbstractNode | None) -> BudgetExceededError:
        usage = self.usage
        usage[kind] = used
        error = BudgetExceededError(kind, limit, used, _node_id(node), usage=usage)
        if self.error is None:
            self.error = error
            if self.on_exceeded is not None:
                self.on_exceeded(error)
            self.controller.abort(error)
        return error


class MemoryBudget(BudgetMeter):
    """A meter kept in this process (in-memory, dry-run and blueprint runs).

    Every update runs without an ``await`` in between, so concurrent branches never
    overshoot a limit. ``node_runs_only`` (dry runs): the deadline is not checked and
    charges are validated but not counted.
    """

    def __init__(
        self,
        budget: Budget,
        *,
        clock: Clock | None = None,
        on_exceeded: Callable[[BudgetExceededError], object] | None = None,
        node_runs_only: bool = False,
    ) -> None:
        super().__init__(budget, clock=clock, on_exceeded=on_exceeded)
        self.node_runs_only = node_runs_only
        self.started = self.clock.monotonic()

    def elapsed(self) -> float:
        """Seconds since the run started (on the policy clock)."""
        return self.clock.monotonic() - self.started

    def _check_deadline(self, node: AbstractNode | None) -> None:
        if not self.node_runs_only:
            super()._check_deadline(node)

    def time_left(self) -> float | None:
        """Seconds until the deadline (``None`` in a dry run, which has none)."""
        return None if self.node_runs_only else super().time_left()

    async def _add(
        self, kind: str, amount: float, limit: float | None, *, admit: bool, key: str | None
    ) -> tuple[bool, float]:
        used = self._used.get(kind, 0.0)
        if self.node_runs_only and kind != NODE_RUNS:
            return True, used
        if admit:
            if limit is not None and used + amount > limit:
                return False, used
            used += amount
        else:
            used += amount
        self._used[kind] = used
        return limit is None or used <= limit, used


def _amount(kind: str, amount: Any) -> float:
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise TypeError(f"charge({kind!r}, amount): amount must be a number, got {type(amount).__name__}: {amount!r}")
    if math.isnan(amount) or amount < 0:
        raise ValueError(f"charge({kind!r}, amount): amount must be >= 0, got {amount!r}")
    return float(amount)


class NodeBudget:
    """``args.budget``: the run's budget as one node sees it.

    ``await charge(kind, n)`` meters a cost, ``remaining(kind)`` and ``used(kind)`` read
    the usage (``math.inf`` remains of a kind that is not limited). Without a budget,
    ``args.budget`` is [`UNLIMITED`][flowcraft.budget.UNLIMITED]: charges are checked and ignored.
    """

    __slots__ = ("meter", "node")

    def __init__(self, meter: BudgetMeter | None, node: AbstractNode | None) -> None:
        self.meter = meter
        self.node = node

    async def charge(self, kind: str, amount: float) -> None:
        """Meter ``amount`` of ``kind`` (e.g. ``"tokens"``); raises when a limit is crossed.

        Raises:
            BudgetExceededError: this charge crossed the limit.
            ValueError: an unknown kind or a negative amount.
            TypeError: an amount that is not a number.
        """
        if self.meter is None:
            _amount(kind, amount)
            if not isinstance(kind, str):
                raise TypeError(f"budget kind must be a string, got {type(kind).__name__}: {kind!r}")
            return
        await self.meter.charge(kind, amount, self.node)

    def remaining(self, kind: str) -> float:
        """What is left of ``kind`` (``math.inf`` when it is not limited)."""
        return math.inf if self.meter is None else self.meter.remaining(kind)

    def used(self, kind: str) -> float:
        """How much of ``kind`` the run has used so far."""
        return 0.0 if self.meter is None else self.meter.used(kind)

    def __repr__(self) -> str:
        if self.meter is None:
            return "<NodeBudget unlimited>"
        return f"<NodeBudget {self.meter.usage!r} of {self.meter.budget!r}>"


UNLIMITED = NodeBudget(None, None)
"""``args.budget`` of a run without a budget: nothing is limited, charges are ignored."""
