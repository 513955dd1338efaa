"""WorkflowGraph / WorkflowBlueprint models: JSON round trip and shape errors with a path."""

from __future__ import annotations

import json

import pytest

from flowcraft import InvalidGraphError
from flowcraft.graph import GraphEdge, GraphNode, WorkflowBlueprint, WorkflowGraph, sanitize_graph

GRAPH = {
    "nodes": [
        {"id": "a", "type": "t", "data": {"x": 1}, "config": {"maxRetries": 3, "wait": 100, "timeout": 2000}},
        {"id": "日本", "type": "t", "data": {}},
    ],
    "edges": [{"source": "a", "target": "日本", "action": "go", "id": "e1"}],
}


def test_graph_round_trips_through_json() -> None:
    graph = WorkflowGraph.from_dict(GRAPH)
    assert graph.nodes[0] == GraphNode("a", "t", {"x": 1}, {"maxRetries": 3, "wait": 100, "timeout": 2000})
    assert graph.edges[0] == GraphEdge("a", "日本", "go", "e1")
    assert graph.to_dict() == GRAPH
    assert WorkflowGraph.from_json(graph.to_json()) == graph
    assert "日本" in graph.to_json()  # not \\u-escaped


def test_missing_data_and_edges_default_empty() -> None:
    graph = WorkflowGraph.from_dict({"nodes": [{"id": "a", "type": "t"}]})
    assert graph.nodes[0].data == {} and graph.edges == ()


def test_empty_action_means_default_as_in_ts() -> None:
    assert GraphEdge.from_dict({"source": "a", "target": "b", "action": ""}).action is None


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ([], "graph", "expected an object"),
        ({}, "nodes", "missing"),
        ({"nodes": {}}, "nodes", "expected a list"),
        ({"nodes": [{"id": "a", "type": "t"}, {"type": "t"}]}, "nodes[1].id", "non-empty string"),
        ({"nodes": [{"id": "a", "type": "t"}, {"id": "b", "type": "t"}, {"id": "c"}]}, "nodes[2].type", "string"),
        ({"nodes": [{"id": 3, "type": "t"}]}, "nodes[0].id", "got int 3"),
        ({"nodes": [{"id": "a", "type": "t", "data": []}]}, "nodes[0].data", "an object"),
        ({"nodes": [{"id": "a", "type": "t", "config": {"retries": 2}}]}, "nodes[0].config.retries", "unknown"),
        ({"nodes": [{"id": "a", "type": "t", "config": {"maxRetries": 0}}]}, "nodes[0].config.maxRetries", ">= 1"),
        ({"nodes": [{"id": "a", "type": "t", "config": {"wait": -1}}]}, "nodes[0].config.wait", "milliseconds"),
        ({"nodes": [{"id": "a", "type": "t", "config": {"timeout": 0}}]}, "nodes[0].config.timeout", "> 0"),
        ({"nodes": [], "edges": [{"source": "a"}]}, "edges[0].target", "non-empty string"),
        ({"nodes": [], "edges": [{"source": "a", "target": "b", "action": 1}]}, "edges[0].action", "a string"),
        ({"nodes": [], "edges": ["a->b"]}, "edges[0]", "an object"),
    ],
)
def test_malformed_graph_names_the_path(raw: object, path: str, message: str) -> None:
    with pytest.raises(InvalidGraphError, match=message) as info:
        WorkflowGraph.from_dict(raw)
    assert info.value.path == path
    assert path in str(info.value)


def test_invalid_json_text() -> None:
    with pytest.raises(InvalidGraphError, match="not valid JSON"):
        WorkflowGraph.from_json("{nodes")


BLUEPRINT = {
    "nodes": [{"id": "a", "type": "t", "data": {"originalId": "a"}}, {"id": "b", "type": "t", "data": {}}],
    "edges": [{"source": "a", "target": "b"}],
    "startNodeId": "a",
    "predecessorCountMap": {"a": 0, "b": 1},
    "originalPredecessorIdMap": {"b": ["a"]},
}


def test_blueprint_round_trips() -> None:
    blueprint = WorkflowBlueprint.from_dict(BLUEPRINT)
    assert blueprint.start_node_id == "a"
    assert blueprint.predecessor_count_map == {"a": 0, "b": 1}
    assert blueprint.to_dict() == BLUEPRINT
    assert WorkflowBlueprint.from_json(blueprint.to_json(indent=2)) == blueprint


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"startNodeId": None}, "startNodeId"),
        ({"edges": None}, "edges"),
        ({"predecessorCountMap": {"a": -1}}, "predecessorCountMap.a"),
        ({"predecessorCountMap": []}, "predecessorCountMap"),
        ({"originalPredecessorIdMap": {"b": "a"}}, "originalPredecessorIdMap.b"),
        ({"originalPredecessorIdMap": {"b": [1]}}, "originalPredecessorIdMap.b[0]"),
    ],
)
def test_malformed_blueprint_names_the_path(change: dict[str, object], path: str) -> None:
    raw = {**BLUEPRINT, **change}
    if change.get("edges", 0) is None:
        del raw["edges"]
    with pytest.raises(InvalidGraphError) as info:
        WorkflowBlueprint.from_dict(raw)
    assert info.value.path == path


def test_sanitize_graph_keeps_only_the_format_fields() -> None:
    raw = {
        "nodes": [
            {"id": "a", "type": "t", "data": {"k": 1}, "position": {"x": 1}, "selected": True, "config": {}},
            {"id": "b", "type": "t", "config": {"maxRetries": 2}, "style": "x"},
        ],
        "edges": [
            {"id": "e1", "source": "a", "target": "b", "action": "", "animated": True},
            {"source": "b", "target": "a", "action": "back", "label": "B"},
        ],
        "viewport": {"zoom": 1},
    }
    assert sanitize_graph(raw) == {
        "nodes": [{"id": "a", "type": "t", "data": {"k": 1}}, {"id": "b", "type": "t", "config": {"maxRetries": 2}}],
        "edges": [{"id": "e1", "source": "a", "target": "b"}, {"source": "b", "target": "a", "action": "back"}],
    }
    WorkflowGraph.from_dict(sanitize_graph(raw))  # the result parses


def test_sanitize_graph_rejects_non_lists() -> None:
    with pytest.raises(InvalidGraphError, match="nodes: expected a list"):
        sanitize_graph({"nodes": {"a": {}}})
    with pytest.raises(InvalidGraphError, match=r"edges\[0\]: expected an object"):
        sanitize_graph({"nodes": [], "edges": [1]})


def test_unknown_fields_round_trip_unchanged() -> None:
    """Issue 10 item 22: a visual editor's fields survive from_dict/to_dict, in order."""
    raw = {
        "nodes": [
            {"type": "t", "id": "a", "position": {"x": 1, "y": 2}},
            {"id": "b", "type": "t", "config": None, "label": "B"},
            {"id": "c", "type": "t"},
        ],
        "edges": [
            {"id": "e1", "target": "b", "source": "a", "label": "go", "action": ""},
            {"source": "b", "target": "c", "action": None, "id": None},
        ],
        "viewport": {"zoom": 1.5},
    }
    graph = WorkflowGraph.from_dict(raw)
    assert graph.extra == {"viewport": {"zoom": 1.5}}
    assert graph.to_json() == json.dumps(raw, separators=(",", ":"))
    assert WorkflowGraph.from_json(graph.to_json()) == graph
    assert graph.to_json(indent=2) == json.dumps(raw, indent=2)


def test_nodes_and_edges_with_extra_pickle_and_copy() -> None:
    import copy
    import pickle

    graph = WorkflowGraph.from_dict(
        {
            "nodes": [{"id": "a", "type": "t"}, {"type": "t", "id": "b", "position": {"x": 1}}],
            "edges": [{"target": "b", "source": "a", "label": "x"}],
        }
    )
    for clone in (pickle.loads(pickle.dumps(graph)), copy.deepcopy(graph), copy.copy(graph)):
        assert clone == graph and clone.to_json() == graph.to_json()
    assert pickle.loads(pickle.dumps(GraphNode("a", "t"))).extra == {}
    assert hash(GraphEdge("a", "b", extra={"label": "x"})) == hash(GraphEdge("a", "b"))


def test_key_order_and_the_empty_extra() -> None:
    node = GraphNode.from_dict({"type": "t", "id": "a"})
    assert node.key_order == ("type", "id") and node.to_dict() == {"type": "t", "id": "a"}
    assert list(node.to_dict()) == ["type", "id"]
    assert GraphNode.from_dict({"id": "a", "type": "t", "data": {}}).key_order is None
    made = GraphNode("a", "t", {"x": 1}, key_order=("data", "id", "type"))
    assert list(made.to_dict()) == ["data", "id", "type"] and made.extra == {}
    edge = GraphEdge.from_dict({"target": "b", "source": "a"})
    assert edge.key_order == ("target", "source") and list(edge.to_dict()) == ["target", "source"]
    assert GraphEdge("a", "b").key_order is None
    empty = GraphNode("a", "t").extra
    assert repr(empty) == "{}" and len(empty) == 0 and list(empty) == [] and empty == {}
    with pytest.raises(KeyError):
        empty["position"]
    assert "extra={}" in repr(GraphNode("a", "t"))
