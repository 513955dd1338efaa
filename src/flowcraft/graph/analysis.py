"""Static analysis of declarative graphs: degrees, start nodes, cycles, and validators.

A *validator* is ``(analysis, graph) -> list[GraphIssue]``. Ready-made ones:
[`check_for_cycles`][flowcraft.graph.check_for_cycles],
[`check_default_action_strings`][flowcraft.graph.check_default_action_strings]; build your own with
[`create_node_rule`][flowcraft.graph.create_node_rule], and run several with
[`validate_graph`][flowcraft.graph.validate_graph]. Programmatic
flows are checked with [`validate_flow`][flowcraft.graph.validate_flow].
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from ..topology import describe_double_visit, double_visits, iter_reachable, linked_nodes
from .models import WorkflowGraph

if TYPE_CHECKING:
    from ..node import AbstractNode

__all__ = [
    "AnalyzedNode",
    "GraphAnalysis",
    "GraphIssue",
    "GraphValidator",
    "Witness",
    "analyze_graph",
    "check_default_action_strings",
    "check_for_cycles",
    "create_node_rule",
    "is_node_type",
    "validate_flow",
    "validate_graph",
]


@dataclass(frozen=True, slots=True)
class Witness:
    """Why a concurrency issue holds: two paths that start at ``fork``.

    For a race, ``fork`` is the parallel fork and ``first``/``second`` are the paths from
    it (its branch starts first) to the two nodes. For an exclusive join, ``fork`` is
    where the exclusive paths part. For a maybe-unset read, ``first`` is a path from the
    start to the reader on which no node writes the key, and ``second`` is empty.
    """

    fork: str
    first: tuple[str, ...]
    second: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GraphIssue:
    """One problem a validator found: the node, a machine-readable ``type``, a message.

    ``severity`` is ``"error"`` or ``"warning"``; concurrency issues
    ([`check_concurrency`][flowcraft.graph.check_concurrency]) also carry the context
    ``keys`` involved and a [`Witness`][flowcraft.graph.Witness].
    """

    node_id: str
    type: str
    message: str
    severity: str = "error"
    keys: tuple[str, ...] = ()
    witness: Witness | None = None


@dataclass(frozen=True, slots=True)
class AnalyzedNode:
    """A graph node with its ``in_degree`` and ``out_degree`` (edges to/from known nodes)."""

    id: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    in_degree: int = 0
    out_degree: int = 0


@dataclass(frozen=True, slots=True)
class GraphAnalysis:
    """What [`analyze_graph`][flowcraft.graph.analyze_graph] found.

    ``cycles`` are paths that repeat their first id at the end, e.g. ``["a", "b", "a"]``.
    """

    nodes: dict[str, AnalyzedNode]
    all_node_ids: list[str]
    start_node_ids: list[str]
    cycles: list[list[str]]


GraphValidator: TypeAlias = Callable[[GraphAnalysis, WorkflowGraph], list[GraphIssue]]
"""``(analysis, graph) -> issues``."""


def analyze_graph(graph: WorkflowGraph | Mapping[str, Any]) -> GraphAnalysis:
    """Degrees, start nodes (in-degree 0) and cycles of ``graph`` (or its dict form).

    Edges naming unknown nodes are not counted (the builder reports them). Cycle search
    is an iterative depth-first search, so deep graphs do not hit the recursion limit.
    """
    graph = WorkflowGraph.coerce(graph)
    in_degree: dict[str, int] = {}
    out_degree: dict[str, int] = {}
    adjacency: dict[str, list[str]] = {}
    for node in graph.nodes:
        in_degree.setdefault(node.id, 0)
        out_degree.setdefault(node.id, 0)
        adjacency.setdefault(node.id, [])
    for edge in graph.edges:
        if edge.source in adjacency:
            out_degree[edge.source] += 1
            adjacency[edge.source].append(edge.target)
        if edge.target in in_degree:
            in_degree[edge.target] += 1
    nodes = {
        node.id: AnalyzedNode(node.id, node.type, node.data, node.config, in_degree[node.id], out_degree[node.id])
        for node in graph.nodes
    }
    all_ids = list(nodes)
    starts = [node_id for node_id in all_ids if in_degree[node_id] == 0]
    return GraphAnalysis(nodes, all_ids, starts, _find_cycles(all_ids, adjacency))


def _find_cycles(all_ids: Sequence[str], adjacency: Mapping[str, list[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    visited: set[str] = set()
    for root in all_ids:
        if root in visited:
            continue
        path: list[str] = [root]
        on_path: dict[str, int] = {root: 0}
        visited.add(root)
        stack: list[Iterator[str]] = [iter(adjacency.get(root, ()))]
        while stack:
            neighbour = next(stack[-1], None)
            if neighbour is None:
                stack.pop()
                on_path.pop(path.pop())
                continue
            if neighbour in on_path:
                cycles.append([*path[on_path[neighbour] :], neighbour])
            elif neighbour not in visited and neighbour in adjacency:
                visited.add(neighbour)
                on_path[neighbour] = len(path)
                path.append(neighbour)
                stack.append(iter(adjacency[neighbour]))
    return cycles


def check_for_cycles(analysis: GraphAnalysis, graph: WorkflowGraph | None = None) -> list[GraphIssue]:
    """One ``CycleDetected`` issue per distinct cycle (same set of nodes = same cycle).

    Loops are legal in Flowcraft; use this validator when a graph must be a DAG.
    """
    issues: dict[tuple[str, ...], GraphIssue] = {}
    for cycle in analysis.cycles:
        key = tuple(sorted(cycle[:-1]))
        if key not in issues:
            issues[key] = GraphIssue(cycle[0], "CycleDetected", f"Cycle detected involving nodes: {' -> '.join(cycle)}")
    return list(issues.values())


def check_default_action_strings(analysis: GraphAnalysis, graph: WorkflowGraph) -> list[GraphIssue]:
    """A warning for each edge whose action is the literal string ``"default"``.

    That string is an ordinary action, not ``DEFAULT_ACTION`` (as in Flowcraft TS): a node
    returning ``None`` will not take such an edge. Omit ``action`` for the default edge.
    """
    return [
        GraphIssue(
            edge.source,
            "DefaultActionString",
            f"Edge {edge.source!r} -> {edge.target!r} uses the action string 'default', which is not "
            "DEFAULT_ACTION; omit 'action' for the default edge.",
        )
        for edge in graph.edges
        if edge.action == "default"
    ]


def is_node_type(node_type: str) -> Callable[[AnalyzedNode], bool]:
    """A filter for [`create_node_rule`][flowcraft.graph.create_node_rule]: nodes of type ``node_type``."""
    return lambda node: node.type == node_type


def create_node_rule(
    filter: Callable[[AnalyzedNode], bool],  # noqa: A002
    check: Callable[[AnalyzedNode], GraphIssue | Iterable[GraphIssue] | None],
) -> GraphValidator:
    """A validator that runs ``check`` on every node ``filter`` accepts.

    ``check`` returns an issue, several issues, or ``None``.

    Examples:
        ```python
        needs_prompt = create_node_rule(
            is_node_type("llm"),
            lambda n: None if n.data.get("prompt") else GraphIssue(n.id, "MissingPrompt", "llm needs a prompt"),
        )
        ```
    """

    def validator(analysis: GraphAnalysis, graph: WorkflowGraph) -> list[GraphIssue]:
        issues: list[GraphIssue] = []
        for node in analysis.nodes.values():
            if filter(node):
                result = check(node)
                if isinstance(result, GraphIssue):
                    issues.append(result)
                elif result is not None:
                    issues.extend(result)
        return issues

    return validator


def validate_graph(graph: WorkflowGraph | Mapping[str, Any], *validators: GraphValidator) -> list[GraphIssue]:
    """Analyze ``graph`` once and return the issues of every validator, in order."""
    graph = WorkflowGraph.coerce(graph)
    analysis = analyze_graph(graph)
    return [issue for validator in validators for issue in validator(analysis, graph)]


def validate_flow(flow: AbstractNode) -> list[GraphIssue]:
    """Warnings about a programmatic flow's wiring (nested flows included).

    ``RunsTwice``: a node that a parallel block's branches reach and that is also the
    block's own successor runs twice, once inside the block and once after it.
    """

    def linked_or_inner(node: AbstractNode) -> Iterator[AbstractNode]:
        yield from linked_nodes(node)
        start = getattr(node, "start_node", None)  # a flow's inner graph
        if start is not None:
            yield start

    return [
        GraphIssue(
            type(node).__name__ if node.id is None else str(node.id), "RunsTwice", describe_double_visit(node, block)
        )
        for node, block in double_visits(iter_reachable([flow], linked_or_inner))
    ]
