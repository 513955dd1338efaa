"""Interchange with Flowcraft TS 1.0.0, byte for byte (issue 10 items 22 and 23).

``ts_interchange.json`` holds blueprints built by Flowcraft TS (``ts_interchange.mjs``)
for graphs carrying fields the builder does not interpret — a visual editor's
``position``/``label``, an explicit ``"action": ""`` or ``null``, ``"config": null``,
unusual key orders — and for ``predecessorCountMap``'s key order (first appearance as an
edge target, then the nodes nobody targets). Our JSON text must be the same.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from flowcraft import DEFAULT_ACTION, DuplicateNodeIdError, InvalidGraphError, TypedContext
from flowcraft.graph import BlueprintExecutor, GraphBuilder, GraphEdge, GraphNode, WorkflowBlueprint, WorkflowGraph

from .conftest import DictResolver, Recorder

FIXTURES = json.loads((Path(__file__).parent / "ts_interchange.json").read_text("utf-8"))
CASES = {case["name"]: case for case in FIXTURES["cases"]}
# Documented differences (docs/declarative.md): TS builds these, we refuse them.
DIFFERENT = {"diff_list_inputs_on_a_sub_workflow_node", "diff_sub_workflow_id_collision", "diff_generated_id_collision"}
SAME = sorted(set(CASES) - DIFFERENT)
REGISTRY = {"task": Recorder, "check": Recorder, "decide": Recorder}
DOCS = Path(__file__).parents[2] / "docs" / "declarative.md"


def compact(value: Any) -> str:
    """JSON text as JavaScript's JSON.stringify writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def builder_for(case: dict[str, Any]) -> GraphBuilder:
    return GraphBuilder(
        REGISTRY,
        sub_workflow_node_types=case.get("subWorkflowNodeTypes", ()),
        conditional_node_types=case.get("conditionalNodeTypes", ()),
        sub_workflow_resolver=DictResolver(case.get("subWorkflows", {})),
    )


def test_fixture_file() -> None:
    assert FIXTURES["generator"] == "flowcraft@1.0.0"
    assert len(CASES) == 9 and DIFFERENT <= set(CASES)


@pytest.mark.parametrize("name", SAME)
def test_blueprint_json_is_flowcraft_ts_byte_for_byte(name: str) -> None:
    case = CASES[name]
    ours = builder_for(case).build_blueprint(case["graph"]).blueprint
    assert ours.to_json() == compact(case["blueprint"])
    # also from a WorkflowGraph object, and through the graph's own JSON round trip
    graph = WorkflowGraph.from_json(WorkflowGraph.from_dict(case["graph"]).to_json())
    assert builder_for(case).build_blueprint(graph).blueprint.to_json() == compact(case["blueprint"])


@pytest.mark.parametrize("name", SAME)
def test_graph_and_blueprint_json_round_trip_unchanged(name: str) -> None:
    case = CASES[name]
    for raw in [case["graph"], *case.get("subWorkflows", {}).values()]:
        assert WorkflowGraph.from_dict(raw).to_json() == compact(raw)
    assert WorkflowBlueprint.from_dict(case["blueprint"]).to_json() == compact(case["blueprint"])


def test_unknown_fields_are_kept_in_extra_and_mean_nothing_to_the_builder() -> None:
    graph = WorkflowGraph.from_dict(CASES["ui_fields"]["graph"])
    a, b, c = graph.nodes[:3]
    assert a.extra == {"position": {"x": 0, "y": 0}, "label": "Load"} and a.data == {"k": 1}
    assert (b.config, b.extra) == (None, {"config": None})  # "config": null is no config
    assert (c.config, c.extra) == ({"maxRetries": 2}, {"selected": False})
    first, second, third = graph.edges[:3]
    assert (first.action, first.id, first.extra) == (None, "e1", {"label": "first", "action": ""})
    assert (second.action, second.extra) == (None, {"action": None, "animated": True})
    assert (third.id, third.extra) == (None, {"id": None})
    assert GraphNode.from_dict({"id": "a", "type": "t"}).extra == {}
    assert GraphEdge("a", "b", extra={"label": "x"}).to_dict() == {"source": "a", "target": "b", "label": "x"}
    # a field the model writes itself wins over a raw copy in extra
    assert GraphEdge("a", "b", "go", extra={"action": ""}).to_dict() == {"source": "a", "target": "b", "action": "go"}


def test_hydrated_nodes_see_their_graph_node_with_extra_and_explicit_empty_actions_are_default() -> None:
    case = CASES["ui_fields"]
    blueprint = builder_for(case).build_blueprint(case["graph"]).blueprint
    executor = BlueprintExecutor(blueprint.to_dict(), REGISTRY)
    assert executor.node_map["a"].graph_data.extra["label"] == "Load"
    assert executor.node_map["b"].max_retries == 1  # "config": null applies nothing
    assert executor.node_map["c"].max_retries == 2
    assert executor.node_map["a"].successors[DEFAULT_ACTION] == [executor.node_map["b"]]  # "action": ""
    assert executor.node_map["b"].successors[DEFAULT_ACTION] == [executor.node_map["c"]]  # "action": null
    ctx = TypedContext()
    asyncio.run(executor.flow.run(ctx, executor=executor))
    log = ctx.to_dict()["log"]
    assert log[:3] == ["a", "b", "c"] and sorted(log[3:5]) == ["d", "e"]


def test_predecessor_count_map_keys_in_order_of_first_appearance_as_a_target() -> None:
    case = CASES["count_map_key_order"]
    blueprint = builder_for(case).build_blueprint(case["graph"]).blueprint
    assert list(blueprint.predecessor_count_map) == ["c", "b", "d", "a"]
    assert list(blueprint.predecessor_count_map.items()) == list(case["blueprint"]["predecessorCountMap"].items())


def differences_section() -> str:
    return " ".join(DOCS.read_text("utf-8").split("## Differences from Flowcraft TS 1.0.0", 1)[1].split())


def test_list_inputs_elements_are_reprefixed_as_in_ts() -> None:
    case = CASES["list_inputs_reprefixed"]
    blueprint = builder_for(case).build_blueprint(case["graph"]).blueprint
    llm = next(node for node in blueprint.nodes if node.id == "sum:llm")
    assert llm.data["inputs"] == ["sum:fetch", "literal", ["sum:fetch", "other"]]


def test_difference_list_inputs_on_a_sub_workflow_node_are_refused() -> None:
    # TS reads the list as an object keyed by position: its input mapper copies context
    # key "f" into a key named "0" and "k" into "1". We refuse it, naming node and field.
    case = CASES["diff_list_inputs_on_a_sub_workflow_node"]
    mapper = next(node for node in case["blueprint"]["nodes"] if node["id"] == "s_input_mapper")
    assert mapper["data"] == {"0": "f", "1": "k", "originalId": "s"}
    with pytest.raises(InvalidGraphError, match=r"Sub-workflow node 's': data.inputs must be an object") as info:
        builder_for(case).build_blueprint(case["graph"])
    assert (info.value.node_id, info.value.path) == ("s", "nodes[1].data.inputs")
    assert "A list is refused" in str(info.value)
    # list values inside the object can never name one context key either
    graph = json.loads(json.dumps(case["graph"]))
    graph["nodes"][1]["data"]["inputs"] = {"x": ["f", "k"]}
    with pytest.raises(InvalidGraphError, match=r"data.inputs\['x'\] must name one context key") as info:
        builder_for(case).build_blueprint(graph)
    assert info.value.path == "nodes[1].data.inputs.x"
    assert "list-valued `inputs`" in differences_section()


def test_difference_sub_workflow_id_collision_is_refused() -> None:
    # "a-b" and "ab" both sanitize to "ab": TS writes two nodes "ab_input_mapper" (and two
    # "ab_output_mapper") and wires both sub-workflows through them, a corrupted graph.
    case = CASES["diff_sub_workflow_id_collision"]
    ids = [node["id"] for node in case["blueprint"]["nodes"]]
    assert ids.count("ab_input_mapper") == 2 and ids.count("ab_output_mapper") == 2
    with pytest.raises(
        DuplicateNodeIdError,
        match=r"'ab_input_mapper' \(the input mapper of sub-workflow node 'a-b' and the input mapper of sub-workflow node 'ab'\)",
    ) as info:
        builder_for(case).build_blueprint(case["graph"])
    assert info.value.node_id == "ab_input_mapper"
    assert "writes duplicate node ids" in differences_section()


def test_difference_generated_id_collision_is_refused() -> None:
    # TS silently skips the parallel container when a user node has its id, so only the
    # first successor of "a" ever runs.
    case = CASES["diff_generated_id_collision"]
    assert {"source": "a", "target": "b"} in case["blueprint"]["edges"]
    assert [n["type"] for n in case["blueprint"]["nodes"] if n["id"] == "a__parallel_container"] == ["task"]
    with pytest.raises(DuplicateNodeIdError, match="'a__parallel_container' for a node it generates"):
        builder_for(case).build_blueprint(case["graph"])
    assert "silently skips the insertion" in differences_section()
