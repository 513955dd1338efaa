"""Hydrating blueprints: [`BlueprintExecutor`][flowcraft.graph.BlueprintExecutor] turns a
[`WorkflowBlueprint`][flowcraft.graph.WorkflowBlueprint]
into live nodes wired into a [`Flow`][flowcraft.Flow], and runs it in memory.

Wiring rules (what a blueprint's edges mean at run time):

- An edge without ``action`` is a ``DEFAULT_ACTION`` edge.
- A parallel container's outgoing edges become its branches (``nodes_to_run``); its
  ``successors`` stay empty, because the branches walk on by themselves.
- Actions out of an inlined sub-workflow: an output mapper returns the action it was
  reached with. So every action-less edge into an output mapper is wired for
  ``DEFAULT_ACTION`` *and* for each
  action the mapper itself has outgoing edges for — unless the source node has its own
  edge for that action. With ``sub -"approved"-> ok``, the sub-workflow's terminal node
  returning ``"approved"`` reaches the output mapper, which returns ``"approved"``.
- A conditional join returns ``DEFAULT_ACTION`` whatever action it was reached by, so its
  one (default) edge to the convergence node always fires.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..actions import DEFAULT_ACTION
from ..errors import DanglingEdgeError, DuplicateNodeIdError, GraphError, InvalidGraphError, UnknownNodeTypeError
from ..executors.base import RunOptions
from ..executors.in_memory import InMemoryExecutor
from ..flow import Flow
from ..node import AbstractNode, Node
from ..patterns import ParallelFlow
from ..retry import POLICY_CONFIG_KEYS, RetryPolicy, retry_policy_from_config
from ..waits import BUILTIN_NODE_TYPES
from .internal_nodes import OUTPUT_MAPPER_TYPE, PARALLEL_CONTAINER_TYPE
from .models import GraphEdge, GraphNode, WorkflowBlueprint
from .registry import NodeFactory, ensure_registry

if TYPE_CHECKING:
    from ..context import Context

__all__ = ["BlueprintExecutor"]

_FORWARDING_TYPES = frozenset({OUTPUT_MAPPER_TYPE})
_MS = 1000.0


class BlueprintFlow(Flow):
    """The flow hydrated from a blueprint; ``blueprint`` is what it was built from.

    Executors that need the declarative form (the distributed one) read it from here.
    """

    def __init__(self, start: AbstractNode, blueprint: WorkflowBlueprint) -> None:
        super().__init__(start)
        self.blueprint = blueprint


class BlueprintExecutor:
    """Hydrates a blueprint (nodes built through ``registry`` with ``dependencies``) and
    runs its flow in memory with correct fan-in.

    The blueprint is validated once, here: the start node, every map entry and every
    edge must name nodes it contains.

    Examples:
        ```python
        executor = BlueprintExecutor(blueprint_dict, {"fetch": Fetch}, {"http": client})
        action = await executor.flow.run(TypedContext(), executor=executor)
        ```
    """

    def __init__(
        self,
        blueprint: WorkflowBlueprint | Mapping[str, Any],
        registry: Mapping[str, NodeFactory],
        dependencies: Mapping[str, Any] | None = None,
    ) -> None:
        self.blueprint = WorkflowBlueprint.coerce(blueprint)
        self.registry = ensure_registry(registry)
        self.dependencies: dict[str, Any] = dict(dependencies or {})
        if "data" in self.dependencies:
            raise GraphError("A dependency may not be named 'data': nodes receive their graph data under that name.")
        self._engine = InMemoryExecutor()
        types = _validate(self.blueprint)
        self.node_map: dict[str, AbstractNode] = {}
        checked: dict[Any, bool] = {}
        for i, graph_node in enumerate(self.blueprint.nodes):
            self.node_map[graph_node.id] = self._create(graph_node, i, checked)
        _wire(self.blueprint.edges, self.node_map, types)
        self.flow = BlueprintFlow(self.node_map[self.blueprint.start_node_id], self.blueprint)

    def get_node(self, node_id: str) -> AbstractNode | None:
        """The hydrated node with id ``node_id`` (``None`` when there is none)."""
        return self.node_map.get(node_id)

    async def run(self, flow: Flow, context: Context | None = None, options: RunOptions | None = None) -> Any:
        """Run this executor's own flow in memory and return its final action.

        Raises:
            ValueError: ``flow`` is not `flow` (use an ``InMemoryExecutor`` for other flows).
        """
        if flow is not self.flow:
            raise ValueError(
                "BlueprintExecutor runs only the flow it hydrated (executor.flow); "
                "use InMemoryExecutor for other flows."
            )
        return await self._engine.run(flow, context, options)

    # ---- hydration -------------------------------------------------------------------------

    def _create(self, graph_node: GraphNode, i: int, checked: dict[Any, bool]) -> AbstractNode:
        factory = self.registry.get(graph_node.type) or BUILTIN_NODE_TYPES.get(graph_node.type)
        if factory is None:
            raise UnknownNodeTypeError(
                f"Blueprint node {graph_node.id!r} has type {graph_node.type!r}, which is not in the node registry.",
                node_id=graph_node.id,
                path=f"nodes[{i}].type",
            )
        kwargs = {**self.dependencies, "data": {**graph_node.data, "nodeId": graph_node.id}}
        name = getattr(factory, "__qualname__", repr(factory))
        if factory not in checked:
            checked[factory] = True
            try:
                inspect.signature(factory).bind(**kwargs)
            except TypeError as error:
                deps = "".join(f", {key}=..." for key in self.dependencies)
                raise GraphError(
                    f"Node {graph_node.id!r}: type {graph_node.type!r} ({name}) cannot be constructed as "
                    f"{name}(data=...{deps}): {error}. Accept a `data` keyword and the dependencies (e.g. **deps).",
                    node_id=graph_node.id,
                ) from None
            except ValueError:  # no signature available (some builtins): just try the call
                pass
        try:
            node = factory(**kwargs)
        except GraphError:
            raise
        except Exception as error:
            raise GraphError(
                f"Constructing node {graph_node.id!r} of type {graph_node.type!r} ({name}) failed: "
                f"{type(error).__name__}: {error}",
                node_id=graph_node.id,
            ) from error
        if not isinstance(node, AbstractNode):
            raise GraphError(
                f"Node {graph_node.id!r}: the registry entry for type {graph_node.type!r} ({name}) returned "
                f"{type(node).__name__}, not a node.",
                node_id=graph_node.id,
            )
        if graph_node.config:
            _apply_config(node, graph_node, i)
        node.with_id(graph_node.id)
        node.with_graph_data(graph_node)
        return node


def _apply_config(node: AbstractNode, graph_node: GraphNode, i: int) -> None:
    config = graph_node.config or {}
    if not isinstance(node, Node):
        raise GraphError(
            f"Node {graph_node.id!r} has a config, but its class {type(node).__name__} is not a Node with retry "
            "options.",
            node_id=graph_node.id,
        )
    if node.retry is not None or any(key in config for key in POLICY_CONFIG_KEYS):
        try:
            node.retry = retry_policy_from_config(config, node.retry or RetryPolicy(node.max_retries, node.wait))
        except (TypeError, ValueError) as error:
            field = str(error).split(":", 1)[0].split("[", 1)[0]
            raise InvalidGraphError(
                f"Node {graph_node.id!r}: config.{error}",
                node_id=graph_node.id,
                path=f"nodes[{i}].config.{field}",
            ) from None
        config = {"timeout": config["timeout"]} if "timeout" in config else {}
    for key, attr, scale in (("maxRetries", "max_retries", None), ("wait", "wait", _MS), ("timeout", "timeout", _MS)):
        if key not in config:
            continue
        value = config[key]
        if scale is not None and value is not None and isinstance(value, int | float) and not isinstance(value, bool):
            value = value / scale
        try:
            setattr(node, attr, value)
        except ValueError as error:
            raise InvalidGraphError(
                f"Node {graph_node.id!r}: config.{key} is invalid: {error}",
                node_id=graph_node.id,
                path=f"nodes[{i}].config.{key}",
            ) from error


def _validate(blueprint: WorkflowBlueprint) -> dict[str, str]:
    """Check every reference of ``blueprint`` once; returns id → type."""
    types: dict[str, str] = {}
    originals: set[str] = set()
    for i, node in enumerate(blueprint.nodes):
        if node.id in types:
            raise DuplicateNodeIdError(
                f"Blueprint has two nodes with id {node.id!r} (nodes[{i}]).", node_id=node.id, path=f"nodes[{i}].id"
            )
        types[node.id] = node.type
        original = node.data.get("originalId")
        originals.add(original if isinstance(original, str) else node.id)
    if blueprint.start_node_id not in types:
        raise InvalidGraphError(
            f"Blueprint startNodeId {blueprint.start_node_id!r} is not one of its nodes.",
            node_id=blueprint.start_node_id,
            path="startNodeId",
        )
    for i, edge in enumerate(blueprint.edges):
        for end, end_id in (("source", edge.source), ("target", edge.target)):
            if end_id not in types:
                raise DanglingEdgeError(
                    f"Blueprint edge {edge.source!r} -> {edge.target!r} (edges[{i}]) has unknown {end} {end_id!r}.",
                    node_id=end_id,
                    edge=edge,
                    path=f"edges[{i}].{end}",
                )
    for key in blueprint.predecessor_count_map:
        if key not in types:
            raise InvalidGraphError(
                f"Blueprint predecessorCountMap names {key!r}, which is not one of its nodes.",
                node_id=key,
                path=f"predecessorCountMap.{key}",
            )
    for key, producers in blueprint.original_predecessor_id_map.items():
        if key not in types:
            raise InvalidGraphError(
                f"Blueprint originalPredecessorIdMap names {key!r}, which is not one of its nodes.",
                node_id=key,
                path=f"originalPredecessorIdMap.{key}",
            )
        for producer in producers:
            if producer not in originals and producer not in types:
                raise InvalidGraphError(
                    f"Blueprint originalPredecessorIdMap[{key!r}] names producer {producer!r}, which is neither a "
                    "node id nor an originalId of the blueprint.",
                    node_id=key,
                    path=f"originalPredecessorIdMap.{key}",
                )
    return types


def _wire(edges: tuple[GraphEdge, ...], node_map: dict[str, AbstractNode], types: dict[str, str]) -> None:
    out: dict[str, list[GraphEdge]] = {}
    for edge in edges:
        out.setdefault(edge.source, []).append(edge)

    accepted: dict[str, frozenset[Any]] = {}

    def accepts(node_id: str) -> frozenset[Any]:
        """The actions a forwarding node can pass on: default plus its own edges' actions."""
        found = accepted.get(node_id)
        if found is not None:
            return found
        accepted[node_id] = frozenset({DEFAULT_ACTION})  # guards cycles
        actions: set[Any] = {DEFAULT_ACTION}
        for edge in out.get(node_id, ()):
            if edge.action is not None:
                actions.add(edge.action)
            elif types[edge.target] in _FORWARDING_TYPES:
                actions |= accepts(edge.target)
        accepted[node_id] = result = frozenset(actions)
        return result

    for source_id, source_edges in out.items():
        source = node_map[source_id]
        if types[source_id] == PARALLEL_CONTAINER_TYPE:
            if not isinstance(source, ParallelFlow):
                raise GraphError(
                    f"Parallel container {source_id!r} was built as {type(source).__name__}, which is not a "
                    "ParallelFlow; register a ParallelFlow subclass for the internal parallel container type.",
                    node_id=source_id,
                )
            source.nodes_to_run = list(dict.fromkeys(node_map[edge.target] for edge in source_edges))
            continue
        for edge in source_edges:
            source.next(node_map[edge.target], DEFAULT_ACTION if edge.action is None else edge.action)
        for edge in source_edges:
            if edge.action is None and types[edge.target] in _FORWARDING_TYPES:
                for action in accepts(edge.target):
                    if action not in source.successors:
                        source.next(node_map[edge.target], action)
