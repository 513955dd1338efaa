"""The graph compiler: [`GraphBuilder`][flowcraft.graph.GraphBuilder] turns a
[`WorkflowGraph`][flowcraft.graph.WorkflowGraph] into a flat,
serializable [`WorkflowBlueprint`][flowcraft.graph.WorkflowBlueprint] (and, with
[`GraphBuilder.build`][flowcraft.graph.GraphBuilder.build], into a
runnable flow).

Compilation, in order (each pass is linear in nodes + edges; adjacency maps only):

1. **Flatten**: sub-workflow nodes are inlined. The node becomes a sub-workflow
   container ``<id>``, followed by ``<sanitized id>_input_mapper``, the sub-graph's
   nodes with ids ``<id>:<child>`` (recursively, any depth), and
   ``<sanitized id>_output_mapper`` after the sub-graph's terminal nodes. Edges out of
   the sub-workflow node leave from its output mapper. ``inputs`` values (or list
   elements) that name nodes of the same (sub-)graph are re-prefixed.
2. **Conditional joins**: for ``conditional_node_types``, branches that converge get an
   ``<id>__conditional_join`` in front of the convergence node, so it is not mistaken
   for a fan-in (a conditional join fires on the first arrival).
3. **Parallel containers**: several successors on one action become an
   ``__internal_parallel_container__`` — ``<id>__parallel_container`` for the default
   action's group (or, when it has none, the first such group),
   ``<id>__parallel_container__<action>`` for any other (the literal action
   ``"default"`` is an ordinary action: ``<id>__parallel_container__default``).
4. **Start**: the node nobody targets; several such nodes get a root container
   ``__root_parallel_start``. A graph where every node has a predecessor is rejected.
5. **Maps**: ``predecessor_count_map`` (distinct direct predecessors, 0 for the start;
   keys in order of first appearance as an edge target, then the rest, as in Flowcraft TS)
   and ``original_predecessor_id_map`` (the user-defined nodes that produce a node's
   input, looking through internal wiring; an output mapper stands for its
   sub-workflow).

A well-formed dict graph without sub-workflows, conditional types or configs (the
common case) takes a one-pass path that gives the same blueprint without parsing it
into a ``WorkflowGraph`` first; anything else, and every malformed input, takes the
checked passes above and gets their specific errors.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..collector import CollectorPaused
from ..errors import (
    DanglingEdgeError,
    DuplicateNodeIdError,
    InvalidGraphError,
    MissingSubWorkflowError,
    NoStartNodeError,
    UnknownNodeTypeError,
)
from ..loggers import Logger, NullLogger
from ..retry import resolve_exception_type
from ..waits import BUILTIN_NODE_TYPES
from .blueprint import BlueprintExecutor
from .internal_nodes import (
    CONDITIONAL_JOIN_TYPE,
    INPUT_MAPPER_TYPE,
    OUTPUT_MAPPER_TYPE,
    SUB_WORKFLOW_CONTAINER_TYPE,
)
from .models import GraphEdge, GraphNode, WorkflowBlueprint, WorkflowGraph, _node
from .plain_build import compile_plain_dict
from .registry import NodeFactory, ensure_registry
from .wiring import ROOT_PARALLEL_START_ID, add_container, add_start, claim_id, parallel_groups

if TYPE_CHECKING:
    from ..flow import Flow
    from ..node import AbstractNode

__all__ = [
    "ROOT_PARALLEL_START_ID",
    "BlueprintBuildResult",
    "BuildResult",
    "GraphBuilder",
    "SubWorkflowResolver",
    "sanitize_id",
]

_NOT_ID_CHAR = re.compile(r"[^A-Za-z0-9_]")


def sanitize_id(node_id: str) -> str:
    """Flowcraft's id sanitizing (ASCII semantics): ``:`` → ``_``, then every character
    outside ``[A-Za-z0-9_]`` removed."""
    return _NOT_ID_CHAR.sub("", node_id.replace(":", "_"))


@runtime_checkable
class SubWorkflowResolver(Protocol):
    """Finds the graph of a sub-workflow by the ``workflowId`` in a node's data.

    Examples:
        ```python
        class DictResolver:
            def __init__(self, graphs):
                self.graphs = graphs
            def get_graph(self, workflow_id):
                return self.graphs.get(workflow_id)
        ```
    """

    def get_graph(self, workflow_id: str | int) -> WorkflowGraph | Mapping[str, Any] | None:
        """The graph (or its dict form) for ``workflow_id``; ``None`` when unknown."""
        ...


@dataclass(frozen=True, slots=True)
class BlueprintBuildResult:
    """What [`GraphBuilder.build_blueprint`][flowcraft.graph.GraphBuilder.build_blueprint] returns."""

    blueprint: WorkflowBlueprint


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What [`GraphBuilder.build`][flowcraft.graph.GraphBuilder.build] returns: a runnable flow and
    the fan-in metadata.

    ``predecessor_id_map`` maps every flattened node id to its distinct direct
    predecessors; ``original_predecessor_id_map`` to its original producer ids.
    """

    flow: Flow
    node_map: dict[str, AbstractNode]
    predecessor_count_map: dict[str, int]
    predecessor_id_map: dict[str, list[str]]
    original_predecessor_id_map: dict[str, list[str]]


class GraphBuilder:
    """Compiles declarative graphs into blueprints and runnable flows.

    Args:
        registry: node ``type`` → node class or factory (internal types are added).
        dependencies: services passed to every node constructor as keyword arguments.
        sub_workflow_node_types: types whose nodes are inlined sub-workflows (their
            ``data.workflowId`` is resolved by ``sub_workflow_resolver``).
        sub_workflow_resolver: finds sub-workflow graphs by id.
        conditional_node_types: types whose outgoing edges are exclusive branches.
        logger: receives warnings (e.g. an edge using the literal action ``"default"``).

    Examples:
        ```python
        builder = GraphBuilder({"fetch": Fetch, "save": Save}, {"http": client})
        result = builder.build(graph_dict)
        await result.flow.run(TypedContext())
        ```
    """

    def __init__(
        self,
        registry: Mapping[str, NodeFactory],
        dependencies: Mapping[str, Any] | None = None,
        *,
        sub_workflow_node_types: Sequence[str] = (),
        sub_workflow_resolver: SubWorkflowResolver | None = None,
        conditional_node_types: Sequence[str] = (),
        logger: Logger | None = None,
    ) -> None:
        if isinstance(sub_workflow_node_types, str) or isinstance(conditional_node_types, str):
            raise TypeError("sub_workflow_node_types and conditional_node_types must be sequences of type names")
        self.registry = ensure_registry(registry)
        self.dependencies: dict[str, Any] = dict(dependencies or {})
        self.sub_workflow_node_types = frozenset(sub_workflow_node_types)
        self.sub_workflow_resolver = sub_workflow_resolver
        self.conditional_node_types = frozenset(conditional_node_types)
        self.logger: Logger = logger if logger is not None else NullLogger()

    # ---- public API ------------------------------------------------------------------------

    def build_blueprint(self, graph: WorkflowGraph | Mapping[str, Any]) -> BlueprintBuildResult:
        """Compile ``graph`` (or its dict form) into a [`WorkflowBlueprint`][flowcraft.graph.WorkflowBlueprint].

        Raises:
            InvalidGraphError: malformed input (``path`` says where).
            UnknownNodeTypeError: a node type missing from the registry.
            DanglingEdgeError: an edge whose source or target does not exist.
            DuplicateNodeIdError: two nodes (or a node and a generated id) share an id.
            MissingSubWorkflowError: no resolver, unknown ``workflowId``, or a
                sub-workflow that includes itself.
            NoStartNodeError: every node has a predecessor.
        """
        with CollectorPaused():
            return BlueprintBuildResult(self._compile(graph))

    def build(self, graph: WorkflowGraph | Mapping[str, Any]) -> BuildResult:
        """Compile ``graph`` and hydrate it into a runnable flow (same errors as
        [`build_blueprint`][flowcraft.graph.GraphBuilder.build_blueprint], plus
        [`GraphError`][flowcraft.GraphError] for a node class
        that cannot be constructed)."""
        with CollectorPaused():
            blueprint = self._compile(graph)
            predecessors = _direct_predecessors(blueprint.edges)
            predecessor_ids = {node.id: list(predecessors.get(node.id, ())) for node in blueprint.nodes}
            executor = BlueprintExecutor(blueprint, self.registry, self.dependencies)
        return BuildResult(
            executor.flow,
            executor.node_map,
            dict(blueprint.predecessor_count_map),
            predecessor_ids,
            {k: list(v) for k, v in blueprint.original_predecessor_id_map.items()},
        )

    # ---- compilation -----------------------------------------------------------------------

    def _compile(self, raw: WorkflowGraph | Mapping[str, Any]) -> WorkflowBlueprint:
        """The blueprint of ``raw``."""
        if type(raw) is dict:
            compiled = self._compile_plain_dict(raw)
            if compiled is not None:
                return compiled
        return self._compile_checked(raw)

    def _compile_plain_dict(self, raw: dict[str, Any]) -> WorkflowBlueprint | None:
        """The blueprint of a well-formed plain dict graph in one pass, or ``None`` (see
        [`compile_plain_dict`][flowcraft.graph.plain_build.compile_plain_dict])."""
        return compile_plain_dict(raw, self._is_plain_type)

    def _is_plain_type(self, node_type: str) -> bool:
        """A registered (or built-in) type that needs no inlining, joins or looking through."""
        return (
            (node_type in self.registry or node_type in BUILTIN_NODE_TYPES)
            and node_type not in self.sub_workflow_node_types
            and node_type not in self.conditional_node_types
            and not node_type.startswith("__internal_")
        )

    def _compile_checked(self, raw: WorkflowGraph | Mapping[str, Any]) -> WorkflowBlueprint:
        """The blueprint through the checked passes (parse, flatten, joins, containers)."""
        graph = WorkflowGraph.coerce(raw)
        # A graph parsed here is this build's own: its top-level nodes (and their data) can
        # go into the blueprint as they are instead of being copied.
        nodes, flat_edges = self._flatten(graph, "", (), owned=graph is not raw)
        index = {node.id: node for node in nodes}
        if len(index) < len(nodes):
            _duplicate_id(nodes)
        edges = flat_edges
        out: dict[str, list[int]] = {}
        for i, edge in enumerate(edges):
            bucket = out.get(edge.source)
            if bucket is None:
                out[edge.source] = [i]
            else:
                bucket.append(i)
        if self.conditional_node_types:
            self._insert_conditional_joins(nodes, edges, out, index)
        final = self._insert_parallel_containers(nodes, edges, out, index)
        predecessors = _direct_predecessors(final)
        start_id = self._choose_start(nodes, final, index, predecessors)
        # Keys in Flowcraft TS's order: first appearance as an edge target, then the nodes
        # nobody targets (count 0: the start, or the root container), so the JSON compares
        # byte for byte.
        counts = {target: len(preds) for target, preds in predecessors.items()}
        counts[start_id] = 0
        return WorkflowBlueprint(tuple(nodes), tuple(final), start_id, counts, _original_producers(nodes, predecessors))

    def _flatten(
        self, graph: WorkflowGraph, prefix: str, chain: tuple[str | int, ...], owned: bool = False
    ) -> tuple[list[GraphNode], list[GraphEdge]]:
        where = "" if not chain else f" in sub-workflow {chain[-1]!r} (inlined as {prefix[:-1]!r})"
        kinds: dict[str, bool] = {}  # local id -> is a sub-workflow node
        sub_types, registry = self.sub_workflow_node_types, self.registry
        for i, node in enumerate(graph.nodes):
            if node.id in kinds:
                raise DuplicateNodeIdError(
                    f"Duplicate node id {node.id!r}{where} (nodes[{i}]): every node of a graph needs its own id.",
                    node_id=prefix + node.id,
                    path=f"nodes[{i}].id",
                )
            is_sub = node.type in sub_types
            if not is_sub and node.type not in registry and node.type not in BUILTIN_NODE_TYPES:
                known = ", ".join(sorted(t for t in registry if not t.startswith("__internal_"))[:12])
                raise UnknownNodeTypeError(
                    f"Node {prefix + node.id!r}{where} has type {node.type!r}, which is not in the node registry "
                    f"(known types: {known or 'none'}; built in: wait, sleep). Register a class for it, or list it in "
                    "sub_workflow_node_types if it is a sub-workflow.",
                    node_id=prefix + node.id,
                    path=f"nodes[{i}].type",
                )
            kinds[node.id] = is_sub
            if node.config and "retryOn" in node.config:
                _check_retry_on(node.config["retryOn"], prefix + node.id, where, i)

        nodes: list[GraphNode] = []
        edges: list[GraphEdge] = []
        for i, node in enumerate(graph.nodes):
            node_id = prefix + node.id
            data = node.data
            inputs = data.get("inputs")
            if prefix and isinstance(inputs, Mapping | list):
                data = {**data, "inputs": _reprefix_inputs(inputs, kinds, prefix)}
            if kinds[node.id]:
                self._inline(node, i, node_id, data, chain, nodes, edges)
                continue
            if "workflowId" in data:
                raise InvalidGraphError(
                    f"Node {node_id!r}{where} has a 'workflowId' but its type {node.type!r} is not a sub-workflow "
                    "type: add it to sub_workflow_node_types, or remove workflowId from its data.",
                    node_id=node_id,
                    path=f"nodes[{i}].data.workflowId",
                )
            if owned:
                data["originalId"] = node.id
                nodes.append(node)
            else:
                nodes.append(_node(node_id, node.type, {**data, "originalId": node.id}, node.config, node.extra))

        for i, edge in enumerate(graph.edges):
            if edge.source not in kinds or edge.target not in kinds:
                end, end_id = ("source", edge.source) if edge.source not in kinds else ("target", edge.target)
                raise DanglingEdgeError(
                    f"Edge {edge.source!r} -> {edge.target!r}{where} (edges[{i}]) has unknown {end} "
                    f"{end_id!r}: add a node with that id or fix the edge.",
                    node_id=prefix + end_id,
                    edge=edge,
                    path=f"edges[{i}].{end}",
                )
            if edge.action == "default":
                self.logger.warn(
                    f"Edge {edge.source!r} -> {edge.target!r}{where} uses the action string 'default', which is not "
                    "DEFAULT_ACTION: omit 'action' for the default edge.",
                    edge=edge.to_dict(),
                )
            if kinds[edge.source]:
                source = sanitize_id(prefix + edge.source) + "_output_mapper"
                edges.append(edge.with_ends(source, prefix + edge.target))
            elif prefix:
                edges.append(edge.with_ends(prefix + edge.source, prefix + edge.target))
            else:
                edges.append(edge)
        return nodes, edges

    def _inline(
        self,
        node: GraphNode,
        index: int,
        node_id: str,
        data: dict[str, Any],
        chain: tuple[str | int, ...],
        nodes: list[GraphNode],
        edges: list[GraphEdge],
    ) -> None:
        path = f"nodes[{index}].data"
        workflow_id = node.data.get("workflowId")
        if isinstance(workflow_id, bool) or not isinstance(workflow_id, str | int):
            raise InvalidGraphError(
                f"Sub-workflow node {node_id!r} (type {node.type!r}) needs data.workflowId (a string or int), "
                f"got {workflow_id!r}.",
                node_id=node_id,
                path=f"{path}.workflowId",
            )
        resolver = self.sub_workflow_resolver
        if resolver is None:
            raise MissingSubWorkflowError(
                f"Node {node_id!r} is a sub-workflow (type {node.type!r}) but the GraphBuilder has no "
                f"sub_workflow_resolver: pass one that can find workflow {workflow_id!r}.",
                node_id=node_id,
            )
        if workflow_id in chain:
            cycle = " -> ".join(repr(w) for w in (*chain[chain.index(workflow_id) :], workflow_id))
            raise MissingSubWorkflowError(
                f"Sub-workflow node {node_id!r} includes workflow {workflow_id!r}, which includes itself "
                f"({cycle}); a sub-workflow cannot contain itself directly or through others.",
                node_id=node_id,
            )
        resolved = resolver.get_graph(workflow_id)
        if resolved is None:
            raise MissingSubWorkflowError(
                f"Sub-workflow node {node_id!r} refers to workflow {workflow_id!r}, which the resolver does not know.",
                node_id=node_id,
                path=f"{path}.workflowId",
            )
        try:
            sub_graph = WorkflowGraph.coerce(resolved)
        except InvalidGraphError as error:
            raise InvalidGraphError(
                f"Sub-workflow {workflow_id!r} (used by node {node_id!r}) is malformed: {error}",
                node_id=node_id,
                path=error.path,
            ) from error
        if not sub_graph.nodes:
            raise InvalidGraphError(
                f"Sub-workflow {workflow_id!r} (used by node {node_id!r}) has no nodes.", node_id=node_id
            )
        mappers: list[dict[str, Any]] = []
        for key, shape in (("inputs", "sub-workflow key: parent key"), ("outputs", "parent key: sub-workflow key")):
            value = node.data.get(key)
            if value is None:
                mappers.append({"originalId": node.id})
                continue
            if not isinstance(value, Mapping):
                # A documented difference: Flowcraft TS reads a list as an object keyed by
                # position, so its mapper would copy to or from context keys "0", "1", ...
                hint = (
                    " A list is refused: Flowcraft TS would read it as an object keyed '0', '1', ... and copy "
                    "context keys named '0', '1', ..."
                    if isinstance(value, list | tuple)
                    else ""
                )
                raise InvalidGraphError(
                    f"Sub-workflow node {node_id!r}: data.{key} must be an object of key mappings "
                    f"({{{shape}}}), got {value!r}.{hint}",
                    node_id=node_id,
                    path=f"{path}.{key}",
                )
            for name, mapped in value.items():
                if not isinstance(mapped, str):
                    raise InvalidGraphError(
                        f"Sub-workflow node {node_id!r}: data.{key}[{name!r}] must name one context key (a string), "
                        f"got {type(mapped).__name__} {mapped!r}.",
                        node_id=node_id,
                        path=f"{path}.{key}.{name}",
                    )
            mappers.append({**value, "originalId": node.id})
        sanitized = sanitize_id(node_id)
        input_id, output_id = f"{sanitized}_input_mapper", f"{sanitized}_output_mapper"
        nodes.append(GraphNode(node_id, SUB_WORKFLOW_CONTAINER_TYPE, {**data, "originalId": node.id}))
        nodes.append(GraphNode(input_id, INPUT_MAPPER_TYPE, mappers[0]))
        nodes.append(GraphNode(output_id, OUTPUT_MAPPER_TYPE, mappers[1]))

        sub_nodes, sub_edges = self._flatten(sub_graph, node_id + ":", (*chain, workflow_id))
        nodes.extend(GraphNode(n.id, n.type, {**n.data, "isSubWorkflow": True}, n.config, n.extra) for n in sub_nodes)
        edges.extend(sub_edges)
        edges.append(GraphEdge(node_id, input_id))
        targets = {e.target for e in sub_edges}
        sources = {e.source for e in sub_edges}
        starts = [n.id for n in sub_nodes if n.id not in targets]
        terminals = [n.id for n in sub_nodes if n.id not in sources]
        if not starts or not terminals:
            missing = (
                "start node (one without incoming edges)"
                if not starts
                else "terminal node (one without outgoing edges)"
            )
            raise (NoStartNodeError if not starts else InvalidGraphError)(
                f"Sub-workflow {workflow_id!r} (used by node {node_id!r}) has no {missing}, so it could "
                f"never {'start' if not starts else 'hand back to the parent'}.",
                node_id=node_id,
            )
        edges.extend(GraphEdge(input_id, start) for start in starts)
        edges.extend(GraphEdge(terminal, output_id) for terminal in terminals)

    def _insert_conditional_joins(
        self,
        nodes: list[GraphNode],
        edges: list[GraphEdge],
        out: dict[str, list[int]],
        index: dict[str, GraphNode],
    ) -> None:
        for node in [n for n in nodes if n.type in self.conditional_node_types]:
            branches = [edges[i].target for i in out.get(node.id, ())]
            if len(branches) < 2:
                continue
            target = _find_convergence(branches, edges, out)
            if target is None:
                continue
            join_id = f"{node.id}__conditional_join"
            claim_id(index, join_id, node.id)
            self.logger.debug(f"[GraphBuilder] conditional join {join_id!r} inserted before {target!r}")
            join = GraphNode(join_id, CONDITIONAL_JOIN_TYPE, {})
            nodes.append(join)
            index[join_id] = join
            reroute = dict.fromkeys(_find_branch_terminals(branches, target, edges, out))
            if any(edges[i].target == target for i in out[node.id]):
                reroute[node.id] = None
            for source in reroute:
                for i in out.get(source, ()):
                    edge = edges[i]
                    if edge.target == target:
                        edges[i] = edge.with_ends(edge.source, join_id)
            out[join_id] = [len(edges)]
            edges.append(GraphEdge(join_id, target))

    def _insert_parallel_containers(
        self,
        nodes: list[GraphNode],
        edges: list[GraphEdge],
        out: dict[str, list[int]],
        index: dict[str, GraphNode],
    ) -> list[GraphEdge]:
        """Put a container in front of each action group with several successors;
        returns the edges, those it replaced left out."""
        conditional = self.conditional_node_types
        keep: bytearray | None = None
        for n in range(len(nodes)):  # not the containers added on the way
            node = nodes[n]
            node_id = node.id
            indexes = out.get(node_id)
            if indexes is None or len(indexes) < 2 or node.type in conditional:
                continue
            groups = parallel_groups(node_id, indexes, [edges[i].action for i in indexes])
            if groups and keep is None:
                keep = bytearray(b"\x01") * len(edges)
            for container_id, action, members in groups:
                add_container(nodes, edges, index, keep, node_id, container_id, action, members)  # type: ignore[arg-type]
        if keep is None:
            return edges
        keep.extend(b"\x01" * (len(edges) - len(keep)))
        return list(compress(edges, keep))

    def _choose_start(
        self,
        nodes: list[GraphNode],
        edges: list[GraphEdge],
        index: dict[str, GraphNode],
        predecessors: dict[str, dict[str, None]],
    ) -> str:
        """The start node's id; several nodes without predecessors get a root container
        (its edges added to ``edges`` and ``predecessors``)."""
        starts = [node.id for node in nodes if node.id not in predecessors]
        if not starts:
            if not nodes:
                raise NoStartNodeError("The graph has no nodes, so there is nothing to start.")
            sample = ", ".join(repr(n.id) for n in nodes[:5])
            raise NoStartNodeError(
                f"The graph has no start node: every node ({sample}{', ...' if len(nodes) > 5 else ''}) has an "
                "incoming edge, so the graph is one big cycle. Add an entry node that nothing points to.",
                node_id=nodes[0].id,
            )
        return add_start(starts, nodes, edges, index, predecessors)


def _direct_predecessors(edges: Iterable[GraphEdge]) -> dict[str, dict[str, None]]:
    """Each edge target's distinct sources (ordered dict keys), targets in order of first
    appearance."""
    predecessors: dict[str, dict[str, None]] = {}
    for edge in edges:
        preds = predecessors.get(edge.target)
        if preds is None:
            predecessors[edge.target] = {edge.source: None}
        else:
            preds[edge.source] = None
    return predecessors


def _duplicate_id(nodes: list[GraphNode]) -> None:
    """Raise for the first id that two nodes of a flattened graph share."""
    index: dict[str, GraphNode] = {}
    for node in nodes:
        if node.id in index:
            owners = " and ".join(_owner(n) for n in (index[node.id], node))
            raise DuplicateNodeIdError(
                f"Two nodes of the flattened graph have the id {node.id!r} ({owners}): an id "
                "generated for an inlined sub-workflow (its nodes or its _input_mapper/_output_mapper) "
                "collides with another node. Rename one of them.",
                node_id=node.id,
            )
        index[node.id] = node


def _check_retry_on(names: Any, node_id: str, where: str, i: int) -> None:
    """Resolve ``config.retryOn`` now, so an unknown exception name is a build error."""
    for j, name in enumerate(names if isinstance(names, list) else [names]):
        try:
            resolve_exception_type(name)
        except ValueError as error:
            raise InvalidGraphError(
                f"Node {node_id!r}{where}: config.retryOn[{j}]: {error}",
                node_id=node_id,
                path=f"nodes[{i}].config.retryOn[{j}]",
            ) from None


def _owner(node: GraphNode) -> str:
    """What ``node`` of a flattened graph stands for, in words."""
    original = node.data.get("originalId", node.id)
    if node.type == INPUT_MAPPER_TYPE:
        return f"the input mapper of sub-workflow node {original!r}"
    if node.type == OUTPUT_MAPPER_TYPE:
        return f"the output mapper of sub-workflow node {original!r}"
    if node.data.get("isSubWorkflow"):
        return f"node {original!r} of an inlined sub-workflow"
    return f"node {node.id!r}"


def _reprefix_inputs(
    inputs: Mapping[str, Any] | list[Any], local_ids: Mapping[str, bool], prefix: str
) -> dict[str, Any] | list[Any]:
    """``inputs`` with every value (or list element) naming a node of the same graph
    prefixed; a list of them is treated element by element, as Flowcraft TS does."""

    def fix(value: Any) -> Any:
        return prefix + value if isinstance(value, str) and value in local_ids else value

    if isinstance(inputs, list):
        return [[fix(v) for v in value] if isinstance(value, list) else fix(value) for value in inputs]
    return {key: [fix(v) for v in value] if isinstance(value, list) else fix(value) for key, value in inputs.items()}


def _find_convergence(branches: list[str], edges: list[GraphEdge], out: dict[str, list[int]]) -> str | None:
    """The first node (breadth-first) reached from every branch start, as Flowcraft TS finds it."""
    wanted = len(branches)
    queue = list(branches)
    queued = set(branches)
    visited_by: dict[str, set[str]] = {start: {start} for start in branches}
    head = 0
    while head < len(queue):
        current = queue[head]
        head += 1
        visitors = visited_by[current]
        for i in out.get(current, ()):
            successor = edges[i].target
            seen = visited_by.setdefault(successor, set())
            seen |= visitors
            if len(seen) == wanted:
                return successor
            if successor not in queued:
                queued.add(successor)
                queue.append(successor)
    return None


def _find_branch_terminals(
    branches: list[str], target: str, edges: list[GraphEdge], out: dict[str, list[int]]
) -> list[str]:
    """The nodes of each branch that lead straight to ``target``."""
    terminals: dict[str, None] = {}
    for start in branches:
        queue: deque[str] = deque([start])
        visited: set[str] = set()
        while queue:
            current = queue.popleft()
            if current in visited:
                continue
            visited.add(current)
            successors = [edges[i].target for i in out.get(current, ())]
            if target in successors:
                terminals[current] = None
            else:
                queue.extend(s for s in successors if s not in visited)
    return list(terminals)


def _original_producers(nodes: list[GraphNode], predecessors: Mapping[str, Mapping[str, None]]) -> dict[str, list[str]]:
    """Each node's user-defined producers, looking through internal wiring nodes."""
    # memo: node id -> what it stands for as a producer (a user node: its original id; an
    # internal node: its own producers, filled in on first use).
    memo: dict[str, tuple[str, ...]] = {}
    wiring: dict[str, bool] = {}  # node type -> looked through
    for node in nodes:
        node_type = node.type
        through = wiring.get(node_type)
        if through is None:
            through = wiring[node_type] = node_type.startswith("__internal_") and node_type != OUTPUT_MAPPER_TYPE
        if not through:
            original = node.data.get("originalId", node.id)
            memo[node.id] = (original if isinstance(original, str) else node.id,)

    def producers(node_id: str) -> tuple[str, ...]:
        preds = predecessors.get(node_id, ())
        if len(preds) == 1:  # the common case: a container or mapper after one node
            for pred in preds:
                found = memo.get(pred)
                if found is not None:
                    memo[node_id] = found
                    return found
        memo[node_id] = ()  # guards cycles of internal nodes
        result = gather(preds)
        memo[node_id] = result
        return result

    def gather(preds: Iterable[str]) -> tuple[str, ...]:
        collected: dict[str, None] = {}
        for pred in preds:
            found = memo.get(pred)
            for producer in found if found is not None else producers(pred):
                collected[producer] = None
        return tuple(collected)

    originals: dict[str, list[str]] = {}
    for node in nodes:  # in node order, as Flowcraft TS writes the map
        node_id = node.id
        preds = predecessors.get(node_id)
        if not preds:
            continue
        if len(preds) == 1:
            (pred,) = preds
            result = memo.get(pred)
            if result is None:
                result = producers(pred)
            if result:
                originals[node_id] = list(result)
            continue
        collected: dict[str, None] = {}
        for pred in preds:
            found = memo.get(pred)
            for producer in found if found is not None else producers(pred):
                collected[producer] = None
        if collected:
            originals[node_id] = list(collected)
    return originals
