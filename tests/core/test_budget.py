"""SPEC §10: Budget in the in-memory, dry-run and blueprint executors."""

from __future__ import annotations

import asyncio
import math

import pytest

from flowcraft import (
    AbortController,
    AbortError,
    BatchFlow,
    Budget,
    BudgetExceeded,
    BudgetExceededError,
    DryRunExecutor,
    FatalWorkflowError,
    Flow,
    Node,
    ParallelBatchFlow,
    ParallelFlow,
    RetryPolicy,
    RunFailed,
    SequenceFlow,
    TypedContext,
    WorkflowError,
)
from flowcraft.graph import BlueprintExecutor, GraphBuilder
from flowcraft.testing import EventRecorder, FakeClock

from .helpers import run


class Count(Node):
    """Counts its runs in ``ctx["runs"]`` and loops on "again" until ``stop`` runs."""

    def __init__(self, stop=10**9, **options):
        super().__init__(**options)
        self.stop = stop

    async def post(self, args):
        runs = (await args.ctx.get("runs") or 0) + 1
        await args.ctx.set("runs", runs)
        return "again" if runs < self.stop else "done"


class Spend(Node):
    """Charges ``amount`` tokens in exec, after ``delay`` seconds (of real time)."""

    def __init__(self, amount=10, delay=0.0, **options):
        super().__init__(**options)
        self.amount = amount
        self.delay = delay
        self.finished = False

    async def exec(self, args):
        if self.delay:
            await asyncio.sleep(self.delay)
        await args.budget.charge("tokens", self.amount)
        self.finished = True
        return args.budget.remaining("tokens")


class Tick(Node):
    async def post(self, args):
        await args.ctx.set("runs", (await args.ctx.get("runs") or 0) + 1)


def loop_flow(stop=1000):
    node = Count(stop).with_id("step")
    node.next(node, "again")
    return Flow(node)


# ---- node runs ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 7, 250])
def test_a_budget_stops_a_1000_node_loop_after_exactly_k_node_runs(k):
    ctx = TypedContext()
    with pytest.raises(BudgetExceededError) as info:
        run(loop_flow().run(ctx, budget=Budget(max_node_runs=k)))
    assert ctx.to_dict()["runs"] == k
    error = info.value
    assert (error.kind, error.limit, error.used, error.node_id) == ("node_runs", k, k, "step")
    assert error.usage["node_runs"] == k
    assert isinstance(error, FatalWorkflowError)


def test_a_run_within_its_budget_finishes():
    ctx = TypedContext()
    assert run(loop_flow(stop=10).run(ctx, budget=Budget(max_node_runs=10))) == "done"
    assert ctx.to_dict()["runs"] == 10


def test_flows_blocks_and_structural_nodes_do_not_count_but_inner_nodes_and_batch_items_do():
    class Items(BatchFlow):
        def prep(self, args):
            return [{"i": i} for i in range(3)]

    inner = Flow(SequenceFlow(Tick(), Tick()))
    flow = SequenceFlow(inner, ParallelFlow([Tick(), Tick()]), Items(Tick()))
    ctx = TypedContext()
    run(flow.run(ctx, budget=Budget(max_node_runs=7)))  # 2 + 2 + 3 node runs
    ctx = TypedContext()
    with pytest.raises(BudgetExceededError):
        run(flow.run(ctx, budget=Budget(max_node_runs=6)))
    assert ctx.to_dict()["runs"] == 6


def test_node_run_alone_counts_once():
    ctx = TypedContext()
    assert run(Count().run(ctx, budget=Budget(max_node_runs=1))) == "again"
    assert ctx.to_dict()["runs"] == 1


# ---- user-metered kinds ---------------------------------------------------------------------


def test_a_token_budget_stops_50_concurrent_branches_and_aborts_the_in_flight_ones():
    spenders = [Spend(amount=10, delay=0.001 * (i % 5)) for i in range(50)]
    recorder = EventRecorder()
    with pytest.raises(BudgetExceededError) as info:
        run(Flow(ParallelFlow(spenders)).run(budget=Budget(limits={"tokens": 95}), on_event=recorder))
    error = info.value
    assert error.kind == "tokens" and error.limit == 95 and error.used == 100
    assert error.usage["tokens"] == 100
    assert sum(s.finished for s in spenders) == 9  # the 10th charge crossed the limit, in its node
    exceeded = recorder.of_type(BudgetExceeded)
    assert len(exceeded) == 1 and exceeded[0].used == 100
    assert isinstance(recorder.of_type(RunFailed)[0].error, BudgetExceededError)


def test_a_token_budget_stops_a_parallel_batch():
    class Items(ParallelBatchFlow):
        def prep(self, args):
            return [{} for _ in range(40)]

    node = Spend(amount=3, delay=0.001)
    with pytest.raises(BudgetExceededError, match="tokens used 21 of 20"):
        run(Flow(Items(node, concurrency=8)).run(budget=Budget(limits={"tokens": 20})))


def test_remaining_and_used_read_the_meter():
    seen = []

    class Look(Node):
        async def exec(self, args):
            await args.budget.charge("tokens", 30)
            seen.append((args.budget.remaining("tokens"), args.budget.used("tokens"), args.budget.used("node_runs")))
            seen.append(args.budget.remaining("node_runs"))

    run(SequenceFlow(Look(), Look()).run(budget=Budget(limits={"tokens": 100})))
    assert seen == [(70.0, 30.0, 1.0), math.inf, (40.0, 60.0, 2.0), math.inf]


def test_without_a_budget_charges_are_checked_and_ignored():
    class Meter(Node):
        async def exec(self, args):
            await args.budget.charge("tokens", 5)
            return args.budget.remaining("tokens")

        async def post(self, args):
            return args.exec_res

    assert run(Flow(Meter()).run()) == math.inf
    with pytest.raises(WorkflowError, match="amount must be >= 0") as info:
        run(Flow(Fn(lambda args: args.budget.charge("tokens", -1))).run())
    assert isinstance(info.value.__cause__, ValueError)


class Fn(Node):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    async def exec(self, args):
        await self.fn(args)


@pytest.mark.parametrize(
    ("kind", "amount", "error", "match"),
    [
        ("token", 1, ValueError, "'token' is not limited by this run's Budget"),
        ("node_runs", 1, ValueError, "metered by the executor"),
        ("tokens", -5, ValueError, "amount must be >= 0"),
        ("tokens", "5", TypeError, "amount must be a number"),
        (3, 1, TypeError, "kind must be a string"),
    ],
)
def test_bad_charges_are_errors_naming_the_field(kind, amount, error, match):
    with pytest.raises(WorkflowError, match=match) as info:  # raised in the node, so wrapped
        run(Flow(Fn(lambda args: args.budget.charge(kind, amount))).run(budget=Budget(limits={"tokens": 10})))
    assert isinstance(info.value.__cause__, error)


# ---- seconds --------------------------------------------------------------------------------


def test_the_deadline_is_checked_before_each_node():
    class Slow(Node):
        def __init__(self, clock):
            super().__init__()
            self.clock = clock

        async def post(self, args):
            self.clock.advance(4.0)
            return "again"

    with FakeClock() as clock:
        node = Slow(clock).with_id("slow")
        node.next(node, "again")
        with pytest.raises(BudgetExceededError) as info:
            run(Flow(node).run(budget=Budget(max_seconds=10)))
    assert info.value.kind == "seconds" and info.value.used == 12.0 and info.value.node_id == "slow"


def test_the_deadline_is_checked_before_each_retry():
    class Flaky(Node):
        async def exec(self, args):
            raise ValueError("again")

    node = Flaky(retry=RetryPolicy(max_attempts=100, wait=1.0)).with_id("flaky")
    with FakeClock() as clock, pytest.raises(BudgetExceededError, match="seconds"):
        run(Flow(node).run(budget=Budget(max_seconds=5)))
    assert clock.sleeps == [1.0] * 6


def test_the_deadline_aborts_an_in_flight_node():
    class Hang(Node):
        async def exec(self, args):
            await args.signal.wait()
            args.signal.throw_if_aborted()

    with pytest.raises(BudgetExceededError, match="seconds"):
        run(Flow(Hang()).run(budget=Budget(max_seconds=0.02)))


def test_a_users_abort_stays_an_abort():
    controller = AbortController()

    class Stop(Node):
        async def exec(self, args):
            controller.abort("user")
            await asyncio.sleep(0)

    with pytest.raises(AbortError):
        run(SequenceFlow(Stop(), Count()).run(controller=controller, budget=Budget(max_node_runs=5)))


def test_a_node_that_swallows_the_error_does_not_save_the_run():
    class Swallow(Node):
        async def exec(self, args):
            try:
                await args.budget.charge("tokens", 50)
            except BudgetExceededError:
                pass

    with pytest.raises(BudgetExceededError, match="tokens"):
        run(SequenceFlow(Swallow(), Count()).run(budget=Budget(limits={"tokens": 10})))


# ---- dry run and blueprints -----------------------------------------------------------------


def test_a_dry_run_counts_node_runs_only():
    ctx = TypedContext()
    with pytest.raises(BudgetExceededError):
        run(loop_flow().run(ctx, executor=DryRunExecutor(), budget=Budget(max_node_runs=5, max_seconds=1e-9)))
    assert ctx.to_dict()["runs"] == 5
    spend = Flow(Spend(amount=100))
    assert run(spend.run(executor=DryRunExecutor(), budget=Budget(limits={"tokens": 1}))) is not None


class Step(Node):
    def __init__(self, data=None, **deps):
        super().__init__()

    async def post(self, args):
        runs = (await args.ctx.get("runs") or 0) + 1
        await args.ctx.set("runs", runs)


GRAPH = {
    "nodes": [{"id": n, "type": "step"} for n in ("a", "b", "c", "d")],
    "edges": [{"source": "a", "target": "b"}, {"source": "a", "target": "c"}, {"source": "b", "target": "d"},
              {"source": "c", "target": "d"}],
}  # fmt: skip


def test_blueprint_runs_count_user_nodes_not_containers():
    blueprint = GraphBuilder({"step": Step}).build_blueprint(GRAPH).blueprint
    executor = BlueprintExecutor(blueprint, {"step": Step})
    ctx = TypedContext()
    run(executor.flow.run(ctx, executor=executor, budget=Budget(max_node_runs=4)))
    assert ctx.to_dict()["runs"] == 4
    ctx = TypedContext()
    with pytest.raises(BudgetExceededError):
        run(executor.flow.run(ctx, executor=executor, budget=Budget(max_node_runs=3)))
    assert ctx.to_dict()["runs"] == 3


# ---- bad budgets --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_node_runs": 0}, ValueError, "max_node_runs must be > 0"),
        ({"max_node_runs": 2.5}, TypeError, "max_node_runs must be an int"),
        ({"max_seconds": -1}, ValueError, "max_seconds must be > 0"),
        ({"max_seconds": "10"}, TypeError, "max_seconds"),
        ({"limits": {"tokens": 0}}, ValueError, r"limits\['tokens'\] must be > 0"),
        ({"limits": {"tokens": "many"}}, TypeError, r"limits\['tokens'\]"),
        ({"limits": {"node_runs": 3}}, ValueError, "max_node_runs"),
        ({"limits": [("tokens", 3)]}, TypeError, "limits must be a mapping"),
        ({"limits": {"": 3}}, TypeError, "non-empty strings"),
    ],
)
def test_bad_limits_are_errors_naming_the_field(kwargs, error, match):
    with pytest.raises(error, match=match):
        Budget(**kwargs)


def test_budget_round_trips_through_its_dict_and_pickles_its_error():
    import pickle

    budget = Budget(max_node_runs=3, max_seconds=2.5, limits={"tokens": 100})
    assert Budget.from_dict(budget.to_dict()) == budget
    error = pickle.loads(pickle.dumps(BudgetExceededError("tokens", 10, 12, "n", usage={"tokens": 12})))
    assert (error.kind, error.limit, error.used, error.node_id, error.usage) == ("tokens", 10, 12, "n", {"tokens": 12})
