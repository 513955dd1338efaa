"""The in-memory core's fast paths (issue 18) keep the walk's semantics (SPEC §8):

- a parallel branch at a plain node (no ``prep``, ``async def exec``, sync ``post``) runs
  as its ``exec`` task, with ``post``, the successor lookup and the join count in the
  task's done-callback;
- a batch item runs its node's lifecycle, or a plain sub-flow's walk, in its own coroutine;
- nodes wired alike share one successor map, copied on write;
- a walk rewrites the previous node's ``NodeArgs`` for the next node only when nothing
  else holds them;
- a node keeps its walk plan (inline or not) on itself, following its options.
"""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from flowcraft import (
    DEFAULT_ACTION,
    AbortController,
    AbortError,
    BatchOutcome,
    Flow,
    Node,
    ParallelBatchFlow,
    ParallelFlow,
    TypedContext,
    WorkflowError,
)
from flowcraft.testing import RecordingLogger

from .helpers import run


class Direct(Node):
    """A node the fast path takes: ``async def exec``, sync ``post``, no ``prep``."""

    def __init__(self, id, action=None, fail=None, delay=0.0):
        super().__init__()
        self.with_id(id)
        self.action = action
        self.fail = fail
        self.delay = delay

    async def exec(self, args):
        await asyncio.sleep(self.delay)
        trail = args.ctx.to_dict()["trail"]
        trail.append((self.id, args.incoming_action, args.params.get("p")))
        if self.fail == "exec":
            raise ValueError(f"{self.id} broke")
        return self.id

    def post(self, args):
        if self.fail == "post":
            raise ValueError(f"{self.id} post broke")
        return self.action


class SyncExec(Node):
    """Not on the fast path (a sync ``exec``): reached from a direct node."""

    def __init__(self, id):
        super().__init__()
        self.with_id(id)

    def exec(self, args):
        args.ctx.to_dict()["trail"].append((self.id, args.incoming_action, args.params.get("p")))


def trail_ctx():
    return TypedContext({"trail": []})


def test_direct_branches_pass_their_action_params_and_join_once():
    a, b = Direct("a", action="x"), Direct("b", action="x", delay=0.01)
    join = Direct("join", action="done")
    after = SyncExec("after")
    a.next(join, "x")
    b.next(join, "x")
    join.next(after, "done")
    ctx = trail_ctx()
    result = run(Flow(ParallelFlow([a, b])).run(ctx, params={"p": 7}))
    trail = ctx.to_dict()["trail"]
    assert sorted(trail[:2]) == [("a", None, 7), ("b", None, 7)]
    # the join runs once, after the last arrival (b, action "x"); its successor gets "done"
    assert trail[2:] == [("join", "x", 7), ("after", "done", 7)]
    assert result == DEFAULT_ACTION


class Walked(Direct):
    """Off the fast path (a ``prep``): its walk counts it at the join (``JoinGate.arrive``)."""

    def prep(self, args):
        return None


@pytest.mark.parametrize("kind", [Direct, Walked])
def test_a_node_arriving_twice_at_a_join_counts_once(kind):
    # ``twice`` is listed twice in the block: both of its runs arrive at the join, which
    # waits for its two distinct predecessors, so it runs once, after ``slow`` arrived.
    twice, slow = kind("twice"), kind("slow", delay=0.01)
    join = SyncExec("join")
    twice.next(join)
    slow.next(join)
    ctx = trail_ctx()
    run(Flow(ParallelFlow([twice, twice, slow])).run(ctx))
    assert [step[0] for step in ctx.to_dict()["trail"]] == ["twice", "twice", "slow", "join"]


def test_a_direct_branch_whose_exec_fails_uses_its_fallback_then_walks_on():
    class Fallback(Direct):
        def exec_fallback(self, args):
            return f"fallback for {args.error}"

    seen = []

    class Record(SyncExec):
        def prep(self, args):
            seen.append(args.incoming_action)

    a = Fallback("a", action="go", fail="exec")
    a.next(Record("after"), "go")
    ctx = trail_ctx()
    run(Flow(ParallelFlow([a, Direct("b")])).run(ctx))
    assert seen == ["go"]
    assert ("after", "go", None) in ctx.to_dict()["trail"]


class Results(ParallelFlow):
    """A parallel block that keeps its branches' final actions (its ``exec_res``)."""

    def post(self, args):
        self.results = args.exec_res


def test_a_direct_branch_with_an_unhashable_action_ends_with_it():
    class Listing(Direct):
        def post(self, args):
            return ["x", "y"]  # a collection helper's kind of action: no successor can match it

    a = Listing("a")
    a.next(SyncExec("never"), "x")
    block = Results([a, Direct("b")])
    ctx = trail_ctx()
    run(Flow(block).run(ctx))
    assert sorted(block.results, key=str) == [DEFAULT_ACTION, ["x", "y"]]
    assert "never" not in [step[0] for step in ctx.to_dict()["trail"]]


def test_a_direct_branch_recovered_by_its_fallback_counts_at_the_join_or_ends():
    class Fallback(Direct):
        def exec_fallback(self, args):
            return "recovered"

    # "a" fails, its fallback runs, and it arrives at the join with "b"; "c" fails and ends
    a, b, c = Fallback("a", fail="exec"), Direct("b", delay=0.01), Fallback("c", fail="exec")
    join = SyncExec("join")
    a.next(join)
    b.next(join)
    block = Results([a, b, c])
    ctx = trail_ctx()
    run(Flow(block).run(ctx))
    assert [step[0] for step in ctx.to_dict()["trail"]].count("join") == 1
    # two walks ended: "c"'s, and the one that went on from the last arrival through the join
    assert block.results == [DEFAULT_ACTION, DEFAULT_ACTION]


def test_a_direct_branch_failing_in_exec_fails_fast_with_the_node_named():
    logger = RecordingLogger()
    slow = Direct("slow", delay=5)
    flow = Flow(ParallelFlow([Direct("bad", fail="exec"), slow]))
    with pytest.raises(WorkflowError) as caught:
        run(asyncio.wait_for(flow.run(trail_ctx(), logger=logger), 2))
    assert caught.value.node_name == "bad" and caught.value.phase == "exec"
    assert any("bad" in message for message in logger.messages("error"))


def test_a_direct_branch_failing_in_post_fails_the_block():
    flow = Flow(ParallelFlow([Direct("bad", fail="post"), Direct("slow", delay=5)]))
    with pytest.raises(WorkflowError) as caught:
        run(asyncio.wait_for(flow.run(trail_ctx()), 2))
    assert caught.value.node_name == "bad" and caught.value.phase == "post"


def test_an_abort_during_a_direct_exec_stops_the_branch_before_its_successor():
    controller = AbortController()

    class Aborting(Direct):
        async def exec(self, args):
            controller.abort("stop")
            return await super().exec(args)

    a = Aborting("a")
    a.next(SyncExec("never"))
    ctx = trail_ctx()
    with pytest.raises(AbortError):
        run(Flow(ParallelFlow([a])).run(ctx, controller=controller))
    assert [entry[0] for entry in ctx.to_dict()["trail"]] == ["a"]


def test_direct_branches_run_inside_their_own_task():
    tasks = []

    class Where(Direct):
        async def exec(self, args):
            tasks.append(asyncio.current_task())
            return await super().exec(args)

    run(Flow(ParallelFlow([Where("a"), Where("b")])).run(trail_ctx()))
    assert len(tasks) == 2 and None not in tasks and tasks[0] is not tasks[1]


def test_a_direct_nodes_post_sees_the_context_variables_its_exec_set():
    current = contextvars.ContextVar("current", default=None)
    seen = []

    class SetsVar(Direct):
        async def exec(self, args):
            current.set(self.id)
            return await super().exec(args)

        def post(self, args):
            seen.append((self.id, current.get()))

    run(Flow(ParallelFlow([SetsVar("a"), SetsVar("b")])).run(trail_ctx()))
    assert sorted(seen) == [("a", "a"), ("b", "b")]


# ---- batches -------------------------------------------------------------------------------


class Items(ParallelBatchFlow):
    def __init__(self, node, items, **options):
        super().__init__(node, **options)
        self.items = items

    def prep(self, args):
        return self.items


@pytest.mark.parametrize("limit", [None, 2])
def test_a_plain_subflow_per_item_sees_the_item_params_and_reports_failures(limit):
    class Inner(Node):
        async def exec(self, args):
            if args.params["i"] == 1:
                raise ValueError("item one")
            args.ctx.to_dict()["trail"].append((args.params["i"], args.params["base"]))

    captured = []

    class Capture(Items):
        def post(self, args):
            captured.extend(args.exec_res)
            return super().post(args)

    ctx = trail_ctx()
    block = Capture(Flow(Inner()), [{"i": i} for i in range(4)], concurrency=limit)
    run(Flow(block).run(ctx, params={"base": "b"}))
    assert sorted(ctx.to_dict()["trail"]) == [(0, "b"), (2, "b"), (3, "b")]
    assert [o.ok for o in captured] == [True, False, True, True]
    assert isinstance(captured[1].error, WorkflowError) and "item one" in str(captured[1].error)


def test_batch_outcomes_in_order_with_actions_and_errors():
    class Inner(Node):
        async def exec(self, args):
            if args.params["i"] == 1:
                raise ValueError("item one")

        def post(self, args):
            return f"did {args.params['i']}"

    captured = []

    class Capture(Items):
        def post(self, args):
            captured.extend(args.exec_res)
            return super().post(args)

    for node in (Inner(), Flow(Inner())):
        captured.clear()
        logger = RecordingLogger()
        run(Flow(Capture(node, [{"i": i} for i in range(3)])).run(trail_ctx(), logger=logger))
        assert [o.index for o in captured] == [0, 1, 2]
        assert all(isinstance(o, BatchOutcome) for o in captured)
        assert [o.action for o in captured] == ["did 0", None, "did 2"]
        assert [o.ok for o in captured] == [True, False, True]
        assert "item one" in str(captured[1].error)
        assert captured[0].params == {"i": 0}
        assert any("Parallel batch item 1 failed" in m for m in logger.messages("error"))


def test_batch_outcome_reads_by_name_and_compares_as_a_record():
    outcome = BatchOutcome(2, {"i": 2}, "x")
    assert (outcome.index, outcome.params, outcome.action, outcome.error, outcome.ok) == (2, {"i": 2}, "x", None, True)
    assert outcome == BatchOutcome(2, {"i": 2}, "x")
    assert repr(outcome) == "BatchOutcome(index=2, params={'i': 2}, action='x', error=None)"
    with pytest.raises(AttributeError):
        outcome.action = "y"  # type: ignore[misc]


def test_a_subflow_with_middleware_per_item_still_runs_it():
    calls = []

    async def middleware(args, call_next):
        calls.append(args.name)
        return await call_next(args)

    class Inner(Node):
        async def exec(self, args):
            return None

    inner = Flow(Inner())
    inner.use(middleware)
    run(Flow(Items(inner, [{"i": 0}, {"i": 1}])).run())
    assert calls == ["Inner", "Inner"]


# ---- successor maps ------------------------------------------------------------------------


def test_nodes_wired_alike_share_a_map_that_a_later_next_copies():
    join, other = Direct("join"), Direct("other")
    a, b, c = Direct("a"), Direct("b"), Direct("c")
    for node in (a, b, c):
        node.next(join)
    assert a.successors is b.successors is c.successors
    b.next(other, "alt")
    b.next(other)
    assert a.successors == {DEFAULT_ACTION: [join]} and c.successors == {DEFAULT_ACTION: [join]}
    assert b.successors == {DEFAULT_ACTION: [join, other], "alt": [other]}
    assert list(b.successors) == [DEFAULT_ACTION, "alt"]


# ---- args reuse and walk plans -------------------------------------------------------------


class Keeper(Node):
    """Keeps its ``args`` (in ``exec``) when ``keep`` is set, and a snapshot of them either way."""

    def __init__(self, id, keep, kept, seen):
        super().__init__()
        self.with_id(id)
        self.keep, self.kept, self.seen = keep, kept, seen

    async def exec(self, args):
        if self.keep:
            self.kept.append(args)
        self.seen.append((id(args), args.node, args.incoming_action, args.prep_res, args.exec_res))
        return self.id

    def post(self, args):
        return f"after-{self.id}"


def test_args_a_node_kept_are_never_rewritten_for_a_later_node():
    kept, seen = [], []
    nodes = [Keeper(i, i % 3 == 0, kept, seen) for i in range(9)]
    for a, b in zip(nodes, nodes[1:]):
        a.next(b, f"after-{a.id}")
    run(Flow(nodes[0]).run(TypedContext()))
    assert [args.node for args in kept] == [nodes[0], nodes[3], nodes[6]]
    assert [(args.exec_res, args.incoming_action) for args in kept] == [(0, None), (3, "after-2"), (6, "after-5")]
    assert len({id(args) for args in kept}) == 3
    # every node saw fresh args: its own node, the previous action, no prep/exec results yet
    assert [entry[1:] for entry in seen] == [
        (node, None if i == 0 else f"after-{i - 1}", None, None) for i, node in enumerate(nodes)
    ]


def test_args_kept_by_middleware_are_never_rewritten_for_a_later_node():
    kept = []

    async def keep(args, call_next):
        kept.append(args)
        return await call_next(args)

    nodes = [Keeper(i, False, [], []) for i in range(4)]
    for a, b in zip(nodes, nodes[1:]):
        a.next(b, f"after-{a.id}")
    run(Flow(nodes[0]).use(keep).run(TypedContext()))
    assert [(args.node, args.exec_res) for args in kept] == [(node, i) for i, node in enumerate(nodes)]


def test_a_nodes_walk_plan_follows_its_retry_options():
    node = Direct("n")
    assert node._walk_plan == Direct._walk_plan and node._walk_plan[1]  # inline
    node.max_retries = 3
    assert not node._walk_plan[1]  # the retry loop: run_lifecycle
    node.max_retries = 1
    assert node._walk_plan == Direct._walk_plan
    node.timeout = 5.0
    assert not node._walk_plan[1]


@pytest.mark.parametrize(("kind", "arguments"), [(Node, ()), (Direct, ("d",)), (Flow, ()), (ParallelFlow, ([],))])
def test_a_node_with_default_options_has_the_fields_of_the_checked_path(kind, arguments):
    # Node() with its default options sets its fields without the checks (they need none).
    # A subclass with a __setattr__ of its own sees every field set the checked way: both
    # nodes have the same fields, in the same order (instances share their keys).
    def observe(self, name, value):
        Node.__setattr__(self, name, value)

    observed_kind = type(f"Observed{kind.__name__}", (kind,), {"__setattr__": observe})
    fast, checked = kind(*arguments), observed_kind(*arguments)
    fast_fields, checked_fields = vars(fast), vars(checked)
    assert list(fast_fields) == list(checked_fields)
    for name, value in fast_fields.items():
        if name == "_walk_plan":  # each its class's plan (single attempt, no timeout)
            assert (value, checked_fields[name]) == (kind._walk_plan, observed_kind._walk_plan)
        else:
            assert value == checked_fields[name], name
