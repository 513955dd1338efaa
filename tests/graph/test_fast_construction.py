"""The builder's fast constructors make ordinary, frozen GraphNode and GraphEdge objects."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from flowcraft.graph import GraphEdge, GraphNode
from flowcraft.graph.models import _edge, _node


def test_fast_node_is_a_frozen_graph_node_equal_to_the_constructed_one() -> None:
    node = _node("a", "noop", {"k": 1}, {"maxRetries": 2})
    assert type(node) is GraphNode
    assert node == GraphNode("a", "noop", {"k": 1}, {"maxRetries": 2})
    assert hash(node.id) == hash("a") and node.key_order is None and node.extra == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.id = "b"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(node)) == node
    assert copy.deepcopy(node) == node
    assert node.to_dict() == {"id": "a", "type": "noop", "data": {"k": 1}, "config": {"maxRetries": 2}}


def test_fast_edge_is_a_frozen_graph_edge_equal_to_the_constructed_one() -> None:
    edge = _edge("a", "b", "go")
    assert type(edge) is GraphEdge
    assert edge == GraphEdge("a", "b", "go") and hash(edge) == hash(GraphEdge("a", "b", "go"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        edge.target = "c"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(edge)) == edge
    assert edge.to_dict() == {"source": "a", "target": "b", "action": "go"}
    assert dataclasses.replace(edge, target="c") == GraphEdge("a", "c", "go")
