"""The builder's one-pass path for well-formed dict input (``_compile_plain_dict``) gives
exactly what the checked path gives: the same blueprint (byte for byte), the same
predecessors, and for anything it does not handle it steps aside, so errors stay the
checked path's."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowcraft import DanglingEdgeError, DuplicateNodeIdError, InvalidGraphError, NoStartNodeError
from flowcraft.errors import UnknownNodeTypeError
from flowcraft.graph import GraphBuilder, WorkflowBlueprint, WorkflowGraph

from .conftest import DictResolver, Recorder

FIXTURES = json.loads((Path(__file__).parents[1] / "fixtures" / "ts" / "blueprints.json").read_text("utf-8"))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_builder(**options: Any) -> GraphBuilder:
    return GraphBuilder({"task": Recorder, "check": Recorder, "decide": Recorder}, **options)


def both_paths(builder: GraphBuilder, raw: dict[str, Any]) -> tuple[Any, Any]:
    """(plain-dict path's compile result or None, checked path's) for the same input."""
    plain = builder._compile_plain_dict(copy.deepcopy(raw))
    checked = builder._compile_checked(WorkflowGraph.from_dict(copy.deepcopy(raw)))
    return plain, checked


def assert_same(plain: Any, checked: Any) -> None:
    assert plain is not None, "the plain path stepped aside"
    assert plain.to_json() == checked.to_json()  # key order of the maps too
    assert plain == checked


ACTIONS = st.sampled_from([None, None, None, "yes", "no", "retry"])


@st.composite
def plain_graphs(draw: Any) -> dict[str, Any]:
    """Random plain graphs: DAGs or cycles, several starts, actions, duplicate edges,
    nodes with and without data (possibly with its own originalId)."""
    n = draw(st.integers(1, 9))
    nodes: list[dict[str, Any]] = []
    for i in range(n):
        node: dict[str, Any] = {"id": f"n{i}", "type": draw(st.sampled_from(["task", "check"]))}
        if draw(st.booleans()):
            node["data"] = draw(st.sampled_from([{}, {"k": 1}, {"originalId": "x", "k": 2}]))
        nodes.append(node)
    edges: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 14))):
        source, target = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        if not draw(st.booleans()) and source >= target:  # mostly forward edges
            continue
        edge: dict[str, Any] = {"source": f"n{source}", "target": f"n{target}"}
        action = draw(ACTIONS)
        if action is not None:
            edge["action"] = action
        if draw(st.integers(0, 5)) == 0:  # keys in another order: kept as read on a kept edge
            edge = dict(reversed(edge.items()))
        edges.append(edge)
    return {"nodes": nodes, "edges": edges}


@SETTINGS
@given(plain_graphs())
def test_random_plain_graphs_compile_as_the_checked_path_does(raw: dict[str, Any]) -> None:
    compiled = compile_both_ways(raw, NoStartNodeError)
    if compiled is None:
        return
    builder, plain, checked = compiled
    if plain is None:  # stepped aside (a kept edge with its keys in another order)
        assert any(next(iter(edge)) != "source" for edge in raw["edges"])
        assert builder.build_blueprint(copy.deepcopy(raw)).blueprint.to_json() == checked.to_json()
        return
    assert_same(plain, checked)


def compile_both_ways(
    raw: dict[str, Any], *refused: type[Exception]
) -> tuple[Any, WorkflowBlueprint | None, WorkflowBlueprint] | None:
    """``raw`` through the plain path and the checked path, each on its own copy: the
    builder and both blueprints; ``None`` when the checked path refused it with one of
    ``refused`` (and the plain path stepped aside, asserted here)."""
    builder = make_builder()
    try:
        checked = builder._compile_checked(WorkflowGraph.from_dict(copy.deepcopy(raw)))
    except refused:
        assert builder._compile_plain_dict(copy.deepcopy(raw)) is None
        return None
    return builder, builder._compile_plain_dict(copy.deepcopy(raw)), checked


@st.composite
def larger_plain_graphs(draw: Any) -> dict[str, Any]:
    """Random plain graphs with wider fan-ins and fan-outs, edges of one source apart
    from each other, and node ids that the builder's generated ids may clash with."""
    n = draw(st.integers(1, 30))
    ids = [f"n{i}" for i in range(n)]
    for i in draw(st.lists(st.integers(0, n - 1), max_size=2)):
        ids[i] = f"n{draw(st.integers(0, n - 1))}__parallel_container" + draw(st.sampled_from(["", "__yes"]))
    nodes = [{"id": node_id, "type": "task"} for node_id in dict.fromkeys(ids)]
    ids = [node["id"] for node in nodes]
    edges: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 3 * len(ids)))):
        source, target = draw(st.sampled_from(ids)), draw(st.sampled_from(ids))
        edge: dict[str, Any] = {"source": source, "target": target}
        action = draw(ACTIONS)
        if action is not None:
            edge["action"] = action
        edges.append(edge)
    return {"nodes": nodes, "edges": edges}


@SETTINGS
@given(larger_plain_graphs())
def test_larger_random_plain_graphs_compile_as_the_checked_path_does(raw: dict[str, Any]) -> None:
    compiled = compile_both_ways(raw, NoStartNodeError, DuplicateNodeIdError)
    if compiled is not None:
        _, plain, checked = compiled
        assert_same(plain, checked)


def test_two_generated_containers_with_one_id_are_left_to_the_checked_path() -> None:
    owners = ("a", "a__parallel_container__x")  # a's "x__parallel_container__y" group, the other's "y" group
    nodes = [{"id": node_id, "type": "task"} for node_id in (*owners, "b", "c")]
    edges = [
        {"source": owner, "target": target, "action": action}
        for owner, second in zip(owners, ("x__parallel_container__y", "y"), strict=True)
        for action in ("p", second)
        for target in ("b", "c")
    ]
    edges.append({"source": "a", "target": "a__parallel_container__x"})
    raw = {"nodes": nodes, "edges": edges}
    builder = make_builder()
    assert builder._compile_plain_dict(copy.deepcopy(raw)) is None
    with pytest.raises(DuplicateNodeIdError, match="a__parallel_container__x__parallel_container__y"):
        builder.build_blueprint(raw)


def test_edge_key_order_matters_only_on_kept_edges() -> None:
    nodes = [{"id": i, "type": "task"} for i in "abcd"]
    fanned = [{"source": "a", "target": "b"}, {"target": "c", "source": "a", "action": "x"}]
    fanned.append({"action": "x", "target": "d", "source": "a"})
    builder = make_builder()
    # replaced by containers: their key order is not kept, so the plain path takes them
    assert_same(*both_paths(builder, {"nodes": nodes, "edges": fanned}))
    kept = {"nodes": nodes[:2], "edges": [{"target": "b", "source": "a"}]}
    assert builder._compile_plain_dict(copy.deepcopy(kept)) is None
    blueprint = builder.build_blueprint(kept).blueprint
    assert list(blueprint.edges[0].to_dict()) == ["target", "source"]


PLAIN_FIXTURES = [
    case for case in FIXTURES["cases"] if not case.get("subWorkflowNodeTypes") and not case.get("conditionalNodeTypes")
]


@pytest.mark.parametrize("case", PLAIN_FIXTURES, ids=lambda case: case["name"])
def test_golden_graphs_take_the_plain_path_when_they_can(case: dict[str, Any]) -> None:
    builder = make_builder(sub_workflow_resolver=DictResolver({}))
    try:
        plain, checked = both_paths(builder, case["graph"])
    except DanglingEdgeError:
        assert builder._compile_plain_dict(copy.deepcopy(case["graph"])) is None
        return
    if plain is not None:
        assert_same(plain, checked)


def test_the_layered_dag_takes_the_plain_path() -> None:
    width, size = 5, 23
    nodes = [{"id": f"n{i}", "type": "task"} for i in range(size)]
    edges = []
    for i in range(size):
        layer, j = divmod(i, width)
        for k in sorted({j, (j + 1) % width}):
            if (layer + 1) * width + k < size:
                edges.append({"source": f"n{i}", "target": f"n{(layer + 1) * width + k}"})
    raw = {"nodes": nodes, "edges": edges}
    assert_same(*both_paths(make_builder(), raw))


@pytest.mark.parametrize(
    ("raw", "error", "path"),
    [
        ({"nodes": [{"id": "a", "type": "nope"}], "edges": []}, UnknownNodeTypeError, "nodes[0].type"),
        ({"nodes": [{"id": "a", "type": "task"}] * 2, "edges": []}, DuplicateNodeIdError, "nodes[1].id"),
        ({"nodes": [{"id": "a", "type": "task"}], "edges": [{"source": "a", "target": "b"}]}, DanglingEdgeError, "edges[0].target"),
        ({"nodes": [{"id": "", "type": "task"}], "edges": []}, InvalidGraphError, "nodes[0].id"),
        ({"nodes": [{"id": "a", "type": ""}], "edges": []}, InvalidGraphError, "nodes[0].type"),
        ({"nodes": [{"id": "a", "type": "task", "data": []}], "edges": []}, InvalidGraphError, "nodes[0].data"),
        ({"nodes": [{"id": "a", "type": "task", "data": {"workflowId": "w"}}], "edges": []}, InvalidGraphError, "nodes[0].data.workflowId"),
        ({"nodes": [{"id": "a", "type": "task"}], "edges": [{"source": "a", "target": ["a"]}]}, InvalidGraphError, "edges[0].target"),
        ({"nodes": [{"id": "a", "type": "task"}], "edges": [{"source": "a", "target": "a", "action": 3}]}, InvalidGraphError, "edges[0].action"),
        ({"nodes": [{"id": "a", "type": "task"}], "edges": "no"}, InvalidGraphError, "edges"),
        ({"nodes": [{"id": "a", "type": "task"}, {"id": "b", "type": "task"}], "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "a"}]}, NoStartNodeError, None),
    ],
)  # fmt: skip
def test_bad_input_gets_the_checked_paths_specific_error(
    raw: dict[str, Any], error: type[Exception], path: Any
) -> None:
    builder = make_builder()
    assert builder._compile_plain_dict(copy.deepcopy(raw)) is None
    with pytest.raises(error) as caught:
        builder.build_blueprint(raw)
    if path is not None:
        assert caught.value.path == path  # type: ignore[attr-defined]


def test_a_generated_id_clash_is_left_to_the_checked_path() -> None:
    raw = {
        "nodes": [{"id": "a", "type": "task"}, {"id": "b", "type": "task"}, {"id": "a__parallel_container", "type": "task"}],
        "edges": [{"source": "a", "target": "b"}, {"source": "a", "target": "a__parallel_container"}],
    }  # fmt: skip
    builder = make_builder()
    assert builder._compile_plain_dict(copy.deepcopy(raw)) is None
    with pytest.raises(DuplicateNodeIdError, match="a__parallel_container"):
        builder.build_blueprint(raw)


def test_a_user_node_named_like_the_root_container_keeps_its_producers() -> None:
    raw = {
        "nodes": [{"id": "__root_parallel_start", "type": "task"}, {"id": "b", "type": "task"}],
        "edges": [{"source": "__root_parallel_start", "target": "b"}],
    }
    assert_same(*both_paths(make_builder(), raw))


def test_the_literal_default_action_still_warns() -> None:
    warnings: list[str] = []

    class Collect:
        def warn(self, message: str, **_: Any) -> None:
            warnings.append(message)

        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: None

    builder = make_builder(logger=Collect())  # type: ignore[arg-type]
    raw = {"nodes": [{"id": "a", "type": "task"}, {"id": "b", "type": "task"}], "edges": [{"source": "a", "target": "b", "action": "default"}]}  # fmt: skip
    assert builder._compile_plain_dict(copy.deepcopy(raw)) is None
    builder.build_blueprint(raw)
    assert len(warnings) == 1 and "'default'" in warnings[0]


def test_other_node_shapes_step_aside_but_compile_the_same() -> None:
    raw = {
        "nodes": [{"type": "task", "id": "a"}, {"id": "b", "type": "task", "config": {"maxRetries": 2}}],
        "edges": [{"source": "a", "target": "b", "id": "e1"}],
    }
    builder = make_builder()
    assert builder._compile_plain_dict(copy.deepcopy(raw)) is None
    assert builder.build_blueprint(raw).blueprint == builder._compile_checked(WorkflowGraph.from_dict(raw))


def test_build_gives_the_same_maps_through_both_paths() -> None:
    raw = {
        "nodes": [{"id": i, "type": "task"} for i in "abcd"],
        "edges": [{"source": "a", "target": "b"}, {"source": "a", "target": "c"}, {"source": "b", "target": "d"}, {"source": "c", "target": "d"}],
    }  # fmt: skip
    builder = make_builder()
    from_dict, from_graph = builder.build(raw), builder.build(WorkflowGraph.from_dict(raw))
    assert from_dict.predecessor_id_map == from_graph.predecessor_id_map
    assert from_dict.predecessor_count_map == from_graph.predecessor_count_map
    assert from_dict.original_predecessor_id_map == from_graph.original_predecessor_id_map


def test_the_input_dict_is_left_as_it_was() -> None:
    raw = {
        "nodes": [{"id": "a", "type": "task", "data": {"k": 1}}, {"id": "b", "type": "task"}, {"id": "c", "type": "task"}],
        "edges": [{"source": "a", "target": "b"}, {"source": "a", "target": "c"}],
    }  # fmt: skip
    before = copy.deepcopy(raw)
    blueprint = make_builder().build_blueprint(raw).blueprint
    assert raw == before
    assert blueprint.nodes[0].data == {"k": 1, "originalId": "a"}
    assert blueprint.nodes[0].data is not raw["nodes"][0]["data"]
