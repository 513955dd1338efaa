"""Mermaid diagrams (``graph TD``) of flows, blueprints and graphs.

Shapes tell the structural nodes apart: parallel blocks are hexagons
``{{"parallel: <id>"}}`` whose branches are drawn with dotted arrows, input/output
mappers are circles, sub-workflow containers are subroutines ``[["..."]]``, conditional
joins are rhombi; user nodes are rectangles labelled ``<id> (<type>)``. Edges taken on an
action other than the default carry the action as a label. Mermaid ids are sanitized
(``:`` and other punctuation break Mermaid) and made unique; labels keep the real ids.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from ..actions import DEFAULT_ACTION, FILTER_FAILED
from ..flow import Flow
from ..node import AbstractNode
from ..patterns import ParallelFlow
from .builder import sanitize_id
from .internal_nodes import (
    CONDITIONAL_JOIN_TYPE,
    INPUT_MAPPER_TYPE,
    OUTPUT_MAPPER_TYPE,
    PARALLEL_CONTAINER_TYPE,
    SUB_WORKFLOW_CONTAINER_TYPE,
    ConditionalJoinNode,
    InputMappingNode,
    OutputMappingNode,
    SubWorkflowContainerNode,
)
from .models import GraphEdge, GraphNode, WorkflowBlueprint, WorkflowGraph

__all__ = ["generate_mermaid"]


def _quote(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


class _Ids:
    """Unique, Mermaid-safe ids: ``<sanitized>_<n>``."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.ids: dict[Any, str] = {}

    def get(self, key: Any, name: str) -> str:
        found = self.ids.get(key)
        if found is None:
            base = sanitize_id(name) or "node"
            count = self.counts.get(base, 0)
            self.counts[base] = count + 1
            found = self.ids[key] = f"{base}_{count}"
        return found


def _shape(uid: str, kind: str, label: str, original: str) -> str:
    if kind == PARALLEL_CONTAINER_TYPE:
        return f"  {uid}{{{{{_quote('parallel: ' + label)}}}}}"
    if kind == INPUT_MAPPER_TYPE:
        return f"  {uid}(({_quote('inputs: ' + original)}))"
    if kind == OUTPUT_MAPPER_TYPE:
        return f"  {uid}(({_quote('outputs: ' + original)}))"
    if kind == SUB_WORKFLOW_CONTAINER_TYPE:
        return f"  {uid}[[{_quote(label)}]]"
    if kind == CONDITIONAL_JOIN_TYPE:
        return f"  {uid}{{{_quote('join: ' + label)}}}"
    return f"  {uid}[{_quote(label)}]"


def _arrow(source: str, target: str, action: Any, *, branch: bool = False) -> str:
    if branch:
        return f"  {source} -.-> {target}"
    if action is None or action is DEFAULT_ACTION:
        return f"  {source} --> {target}"
    text = "filter failed" if action is FILTER_FAILED else str(action)
    return f"  {source} -- {_quote(text)} --> {target}"


def generate_mermaid(source: Flow | WorkflowBlueprint | WorkflowGraph | Mapping[str, Any]) -> str:
    """Mermaid ``graph TD`` text for a flow, a blueprint or a graph (or their dict forms).

    Examples:
        ```python
        print(generate_mermaid(GraphBuilder(registry).build(graph).flow))
        ```
    """
    if isinstance(source, Flow):
        return _from_flow(source)
    if isinstance(source, WorkflowBlueprint | WorkflowGraph):
        return _from_graph(source.nodes, source.edges)
    if isinstance(source, Mapping):
        if "startNodeId" in source:
            blueprint = WorkflowBlueprint.from_dict(source)
            return _from_graph(blueprint.nodes, blueprint.edges)
        graph = WorkflowGraph.from_dict(source)
        return _from_graph(graph.nodes, graph.edges)
    raise TypeError(f"generate_mermaid() expects a Flow, a WorkflowBlueprint or a WorkflowGraph, got {source!r}")


def _from_graph(nodes: tuple[GraphNode, ...], edges: tuple[GraphEdge, ...]) -> str:
    ids = _Ids()
    kinds: dict[str, str] = {}
    lines = ["graph TD"]
    for node in nodes:
        uid = ids.get(node.id, node.id)
        kinds[node.id] = node.type
        original = str(node.data.get("originalId", node.id))
        label = node.id if node.type.startswith("__internal_") else f"{node.id} ({node.type})"
        lines.append(_shape(uid, node.type, label, original))
    for edge in edges:
        source, target = ids.get(edge.source, edge.source), ids.get(edge.target, edge.target)
        branch = kinds.get(edge.source) == PARALLEL_CONTAINER_TYPE
        lines.append(_arrow(source, target, edge.action, branch=branch))
    return "\n".join(lines)


def _graph_field(node: AbstractNode, key: str) -> str | None:
    """``id``/``type`` of the graph node ``node`` was built from (a [`GraphNode`][flowcraft.graph.GraphNode]
    or its dict form), when it has one."""
    graph_data = node.graph_data
    value = graph_data.get(key) if isinstance(graph_data, Mapping) else getattr(graph_data, key, None)
    return value if isinstance(value, str) and value else None


def _name_of(node: AbstractNode) -> str:
    """The node's id; else its graph node's id; else its class name."""
    if node.id is not None:
        return str(node.id)
    return _graph_field(node, "id") or type(node).__name__


def _kind_of(node: AbstractNode) -> str:
    graph_type = _graph_field(node, "type")
    if graph_type is not None:
        return graph_type
    for cls, kind in (
        (InputMappingNode, INPUT_MAPPER_TYPE),
        (OutputMappingNode, OUTPUT_MAPPER_TYPE),
        (SubWorkflowContainerNode, SUB_WORKFLOW_CONTAINER_TYPE),
        (ConditionalJoinNode, CONDITIONAL_JOIN_TYPE),
        (ParallelFlow, PARALLEL_CONTAINER_TYPE),
    ):
        if isinstance(node, cls):
            return kind
    return type(node).__name__


def _from_flow(flow: Flow) -> str:
    start = flow.start_node
    if start is None:
        return "graph TD\n  %% empty flow"
    ids = _Ids()
    nodes: list[str] = []
    edges: dict[str, None] = {}
    seen = {id(start)}
    queue: deque[AbstractNode] = deque([start])

    def visit(node: AbstractNode) -> str:
        if id(node) not in seen:
            seen.add(id(node))
            queue.append(node)
        return ids.get(id(node), _name_of(node))

    while queue:
        node = queue.popleft()
        name = _name_of(node)
        uid = ids.get(id(node), name)
        kind = _kind_of(node)
        label = name if kind.startswith("__internal_") or kind == name else f"{name} ({kind})"
        nodes.append(_shape(uid, kind, label, node.original_id))
        if isinstance(node, ParallelFlow):
            for branch in node.nodes_to_run:
                edges[_arrow(uid, visit(branch), None, branch=True)] = None
        for action, successors in node.successors.items():
            for successor in successors:
                edges[_arrow(uid, visit(successor), action)] = None
    return "\n".join(["graph TD", *nodes, *edges])
