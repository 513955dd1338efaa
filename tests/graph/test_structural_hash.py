"""The structural hash that pins a factory flow's graph covers what runs inside a job:
the classes in a parallel block, a sub-flow and a batch's item node (a worker that
builds other classes there must refuse the run, not run the wrong code)."""

from __future__ import annotations

from collections.abc import Callable

from flowcraft import BatchFlow, Flow, Node, ParallelFlow
from flowcraft.engine.plan import describe_change, node_shapes, stable_node_ids, structural_hash


class Load(Node):
    pass


class Left(Node):
    pass


class Right(Node):
    pass


def _identity(flow: Flow) -> tuple[str, dict[str, str]]:
    assert flow.start_node is not None
    ids = stable_node_ids(flow.start_node)
    return structural_hash(flow.start_node, ids), node_shapes(ids)


def _with_block(inner: Callable[[], Node]) -> Flow:
    flow = Flow(Load().with_id("load"))
    flow.start_node.next(ParallelFlow([inner(), Right()]).with_id("block"))  # type: ignore[union-attr]
    return flow


def _with_subflow(inner: Callable[[], Node]) -> Flow:
    flow = Flow(Load().with_id("load"))
    flow.start_node.next(Flow(inner()).with_id("sub"))  # type: ignore[union-attr]
    return flow


def _with_batch(inner: Callable[[], Node]) -> Flow:
    flow = Flow(Load().with_id("load"))
    flow.start_node.next(BatchFlow(inner()).with_id("items"))  # type: ignore[union-attr]
    return flow


def test_the_same_graph_built_twice_has_one_hash() -> None:
    for build in (_with_block, _with_subflow, _with_batch):
        assert _identity(build(Left)) == _identity(build(Left))


def test_other_classes_inside_a_parallel_block_change_the_hash_and_name_the_block() -> None:
    (one, shapes_one), (other, shapes_other) = _identity(_with_block(Left)), _identity(_with_block(Load))
    assert one != other
    assert describe_change(shapes_one, shapes_other) == "changed: block"


def test_other_classes_inside_a_sub_flow_or_a_batch_change_the_hash() -> None:
    for build, node_id in ((_with_subflow, "sub"), (_with_batch, "items")):
        (one, shapes_one), (other, shapes_other) = _identity(build(Left)), _identity(build(Right))
        assert one != other
        assert describe_change(shapes_one, shapes_other) == f"changed: {node_id}"


def test_inner_params_and_wiring_change_the_hash() -> None:
    def wired(second: bool) -> Flow:
        left = Left()
        if second:
            left.next(Right())
        flow = Flow(Load().with_id("load"))
        flow.start_node.next(ParallelFlow([left]).with_id("block"))  # type: ignore[union-attr]
        return flow

    assert _identity(wired(False))[0] != _identity(wired(True))[0]
    plain, tuned = _with_block(Left), _with_block(lambda: Left().with_params({"size": 2}))
    assert _identity(plain)[0] != _identity(tuned)[0]
