"""SPEC §3.5 (params precedence) and §8.5 (top-level flows, Node.run params)."""

from __future__ import annotations

from flowcraft import BatchFlow, Flow, Node, ParallelBatchFlow, ParallelFlow, TypedContext

from .helpers import RecordingLogger, run


class Capture(Node):
    """Records the params it saw (in exec) into ``sink``."""

    def __init__(self, sink, tag="node"):
        super().__init__()
        self.sink = sink
        self.tag = tag

    def exec(self, args):
        self.sink.append((self.tag, dict(args.params)))


def test_flow_params_lt_run_params_lt_node_params():
    seen = []
    node = Capture(seen).with_params(level="node")
    flow = Flow(node).with_params(level="flow", flow_only=1, shared="flow")
    run(flow.run(params={"shared": "run", "run_only": 2}))
    assert seen == [("node", {"level": "node", "flow_only": 1, "shared": "run", "run_only": 2})]


def test_node_params_do_not_leak_to_the_next_node():
    seen = []
    a = Capture(seen, "a").with_params(x="a")
    b = Capture(seen, "b")
    a.next(b)
    run(Flow(a).with_params(x="flow").run())
    assert seen == [("a", {"x": "a"}), ("b", {"x": "flow"})]


def test_sub_flow_own_params_override_inherited():
    seen = []
    sub = Flow(Capture(seen)).with_params(x="sub", y="sub")
    run(Flow(sub).with_params(x="outer", z="outer").run(params={"y": "run"}))
    assert seen == [("node", {"x": "sub", "y": "sub", "z": "outer"})]


def test_batch_item_params_win():
    seen = []

    class Batch(BatchFlow):
        def prep(self, args):
            return [{"item": 1, "x": "item"}, {"item": 2}]

    node = Capture(seen).with_params(x="node", own="node")
    run(Flow(Batch(node).with_params(x="batch", b=1)).run(params={"x": "run", "r": 1}))
    assert seen == [
        ("node", {"x": "item", "own": "node", "b": 1, "r": 1, "item": 1}),
        ("node", {"x": "node", "own": "node", "b": 1, "r": 1, "item": 2}),
    ]


def test_parallel_batch_item_params_win():
    seen = []

    class Batch(ParallelBatchFlow):
        def prep(self, args):
            return [{"x": i} for i in range(3)]

    run(Batch(Capture(seen).with_params(x="node")).run(params={"x": "run"}))
    assert sorted(params["x"] for _, params in seen) == [0, 1, 2]


def test_parallel_branches_inherit_params():
    seen = []
    par = ParallelFlow([Capture(seen, "a"), Capture(seen, "b").with_params(x="b")]).with_params(p=1)
    run(Flow(par).run(params={"x": "run"}))
    assert sorted(seen, key=lambda s: s[0]) == [("a", {"x": "run", "p": 1}), ("b", {"x": "b", "p": 1})]


def test_top_level_flow_without_start_node_follows_precedence():
    class Own(Flow):
        def exec(self, args):
            return dict(args.params)

    flow = Own().with_params(a="flow", b="flow")
    assert run(flow.run(params={"b": "run"})) == {"a": "flow", "b": "run"}
    assert run(flow.run()) == {"a": "flow", "b": "flow"}


def test_node_run_applies_given_params_below_the_nodes_own():
    seen = []
    node = Capture(seen).with_params(own="node", x="node")
    run(node.run(TypedContext(), params={"x": "run", "extra": 1}))
    assert seen == [("node", {"own": "node", "x": "node", "extra": 1})]


def test_with_params_merges_and_accepts_mapping_and_keywords():
    node = Node().with_params({"a": 1}).with_params(b=2).with_params({"a": 3}, c=4)
    assert node.params == {"a": 3, "b": 2, "c": 4}


def test_params_are_not_mutated_by_a_run():
    flow_params = {"a": 1}
    run_params = {"b": 2}
    node = Capture([]).with_params(c=3)
    flow = Flow(node).with_params(flow_params)
    run(flow.run(params=run_params, logger=RecordingLogger()))
    assert flow.params == {"a": 1}
    assert run_params == {"b": 2}
    assert node.params == {"c": 3}
