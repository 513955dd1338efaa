"""Cleaning graphs saved by UI editors (positions, styles, selection state...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidGraphError

__all__ = ["sanitize_graph"]

_NODE_KEYS = ("id", "type", "data", "config")
_EDGE_KEYS = ("id", "source", "target", "action")


def _items(raw: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = raw.get(key, [])
    if not isinstance(value, list | tuple):
        raise InvalidGraphError(f"{key}: expected a list, got {type(value).__name__}", path=key)
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise InvalidGraphError(f"{key}[{i}]: expected an object, got {type(item).__name__}", path=f"{key}[{i}]")
    return list(value)


def sanitize_graph(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Keep only ``id/type/data/config`` on nodes and ``id/source/target/action`` on edges.

    Keys that are absent (or an empty ``config`` / ``action``, as Flowcraft TS drops them)
    are left out. The result can be passed to [`WorkflowGraph.from_dict`][flowcraft.graph.WorkflowGraph.from_dict].

    Examples:
        ```python
        sanitize_graph({"nodes": [{"id": "a", "type": "t", "position": {"x": 1}}], "edges": []})
        # {"nodes": [{"id": "a", "type": "t"}], "edges": []}
        ```
    """
    if not isinstance(raw, Mapping):
        raise InvalidGraphError(f"graph: expected an object, got {type(raw).__name__}", path="graph")
    nodes = []
    for node in _items(raw, "nodes"):
        clean = {key: node[key] for key in _NODE_KEYS if key in node}
        if not clean.get("config"):
            clean.pop("config", None)
        nodes.append(clean)
    edges = []
    for edge in _items(raw, "edges"):
        clean = {key: edge[key] for key in _EDGE_KEYS if key in edge}
        if not clean.get("action"):
            clean.pop("action", None)
        if clean.get("id") is None:
            clean.pop("id", None)
        edges.append(clean)
    return {"nodes": nodes, "edges": edges}
