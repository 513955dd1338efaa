"""What the job engine needs to know about a runnable graph: stable node ids, where a
run starts, which jobs a node hands on to, the fan-in facts of the one rule
(`flowcraft.topology.fan_in`), and how a graph is stored and recognised.

Two kinds of graph can run as jobs, because another process must be able to rebuild
them: a flow built from a blueprint (stored as its canonical JSON, keyed by content
hash), and a programmatic flow named by a factory, ``"package.module:function"``
(stored as ``{"factory": name}``, keyed by the flow's structural hash, so a worker whose
code builds a different graph refuses the job).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..errors import GraphError
from ..flow import Flow
from ..graph.models import WorkflowBlueprint
from ..node import AbstractNode
from ..patterns import BatchFlow, ParallelBatchFlow
from ..topology import fan_in, iter_reachable, linked_nodes
from ..waits import WaitNode
from .errors import GraphMismatchError, NotABlueprintFlowError
from .jobs import Arrival

__all__ = [
    "FACTORY_ATTRIBUTE",
    "JobPlan",
    "blueprint_hash",
    "canonical_json",
    "describe_change",
    "factory_name",
    "flow_from_factory",
    "job_successors",
    "node_shapes",
    "stable_node_ids",
    "structural_hash",
]

FACTORY_ATTRIBUTE = "factory"
"""The attribute [`flow_from_factory`][flowcraft.engine.flow_from_factory] sets on the flows it
builds: the factory's name."""


def canonical_json(blueprint: WorkflowBlueprint) -> str:
    """The blueprint's JSON with sorted keys: the same graph always gives the same text."""
    return json.dumps(blueprint.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def blueprint_hash(text: str) -> str:
    """The content address of a blueprint's canonical JSON (SHA-256, hex)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def job_successors(node: AbstractNode) -> Iterator[AbstractNode]:
    """The nodes a finished job hands on to: its successors, and a passed-through
    container's branches (a parallel block that is not a container runs inside its job)."""
    for bucket in node.successors.values():
        yield from bucket
    if node.is_passthrough:
        yield from node.branches


def _first_arrival(node: AbstractNode) -> bool:
    return node.fires_on_first_arrival


def stable_node_ids(start: AbstractNode) -> dict[AbstractNode, str]:
    """An id for every node of the job graph from ``start``, the same in every process.

    A node's explicit id (``with_id``) when it has one, else its class name and its
    position in a breadth-first walk that follows successors in the order they were
    added (``"Fetch#3"``).

    Raises:
        GraphMismatchError: two nodes share an explicit id (names it).
    """
    ids: dict[AbstractNode, str] = {}
    taken: dict[str, AbstractNode] = {}
    order = list(iter_reachable([start], job_successors))
    for node in order:
        if node.id is not None:
            name = str(node.id)
            if name in taken:
                raise GraphMismatchError(
                    f"Two nodes of the flow have the id {name!r} ({type(taken[name]).__name__} and "
                    f"{type(node).__name__}): give each node its own id with with_id(...)"
                )
            taken[name] = node
            ids[node] = name
    for position, node in enumerate(order):
        if node not in ids:
            name = f"{type(node).__name__}#{position}"
            while name in taken:
                name += "'"
            taken[name] = node
            ids[node] = name
    return ids


def _params_text(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=repr)


def _class_name(node: AbstractNode) -> str:
    kind = type(node)
    return f"{kind.__module__}.{kind.__qualname__}"


def _inner_roots(node: AbstractNode) -> list[AbstractNode]:
    """Where the graph that runs inside ``node``'s own job starts: a parallel block's
    branches (unless they are jobs of their own), a flow's start node, a batch's item
    node."""
    roots = [] if node.is_passthrough else list(node.branches)
    if isinstance(node, Flow) and node.start_node is not None:
        roots.append(node.start_node)
    if isinstance(node, (BatchFlow, ParallelBatchFlow)) and node.node_to_run is not None:
        roots.append(node.node_to_run)
    return roots


def _inner_shape(node: AbstractNode, depth: int = 0) -> list[list[Any]]:
    """The shape of the graph inside ``node``'s job (classes, params, edges, nested
    graphs), by position: a worker that builds other classes inside a block refuses it."""
    roots = _inner_roots(node)
    if not roots or depth > 64:
        return []
    order = list(iter_reachable(roots, linked_nodes))
    at = {inner: i for i, inner in enumerate(order)}
    return [
        [
            _class_name(inner),
            _params_text(inner.params),
            [(repr(action), [at[n] for n in bucket]) for action, bucket in inner.successors.items()],
            [at[n] for n in inner.branches],
            _inner_shape(inner, depth + 1),
        ]
        for inner in order
    ]


def _shape_lines(ids: Mapping[AbstractNode, str]) -> list[list[Any]]:
    lines = []
    for node, node_id in sorted(ids.items(), key=lambda item: item[1]):
        edges = [(repr(action), [ids[n] for n in bucket]) for action, bucket in node.successors.items()]
        branches = [ids[n] for n in node.branches] if node.is_passthrough else []
        lines.append([node_id, _class_name(node), _params_text(node.params), edges, branches, _inner_shape(node)])
    return lines


def structural_hash(start: AbstractNode, ids: Mapping[AbstractNode, str]) -> str:
    """A hash of the job graph's shape: node ids, classes, static params, edges, branches."""
    return _hash_of_lines(ids[start], _shape_lines(ids))


def _hash_of_lines(start_id: str, lines: list[list[Any]]) -> str:
    text = json.dumps({"start": start_id, "nodes": lines}, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def node_shapes(ids: Mapping[AbstractNode, str]) -> dict[str, str]:
    """A short digest of each node's part of the shape (class, params, edges), by node id:
    what ``describe_change`` compares to say which nodes changed."""
    return _shapes_of_lines(_shape_lines(ids))


def _shapes_of_lines(lines: list[list[Any]]) -> dict[str, str]:
    return {line[0]: hashlib.blake2b(repr(line[1:]).encode("utf-8"), digest_size=8).hexdigest() for line in lines}


def describe_change(before: Mapping[str, str], after: Mapping[str, str]) -> str:
    """Which node ids were added, removed or changed between two ``node_shapes``."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(node for node in set(before) & set(after) if before[node] != after[node])
    parts = [f"{label}: {', '.join(nodes)}" for label, nodes in
             (("added", added), ("removed", removed), ("changed", changed)) if nodes]  # fmt: skip
    return "; ".join(parts) if parts else "the start node or the order of successors changed"


def factory_name(factory: Callable[[], Flow]) -> str:
    """``"package.module:function"`` for a module-level function."""
    module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__", "")
    if not module or not qualname or "<" in qualname:
        raise NotABlueprintFlowError(
            f"{factory!r} cannot name a flow factory: use a function defined at module level "
            "(another process imports it as 'package.module:function')"
        )
    return f"{module}:{qualname}"


def flow_from_factory(name: str) -> Flow:
    """Import ``"package.module:function"``, call it, and return the flow it builds (tagged with its name).

    Raises:
        NotABlueprintFlowError: the name is malformed, cannot be imported, or does not build a Flow.
    """
    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute:
        raise NotABlueprintFlowError(f"Flow factory {name!r} must be written 'package.module:function'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise NotABlueprintFlowError(f"Flow factory {name!r} cannot be loaded: {error}") from error
    if not callable(target):
        raise NotABlueprintFlowError(f"Flow factory {name!r} is a {type(target).__name__}, not a function")
    flow = target()
    if not isinstance(flow, Flow) or flow.start_node is None:
        raise NotABlueprintFlowError(
            f"Flow factory {name!r} returned {type(flow).__name__}: it must return a Flow with a start node"
        )
    setattr(flow, FACTORY_ATTRIBUTE, name)
    return flow


def _inside(node: AbstractNode) -> Iterator[AbstractNode]:
    """The nodes that run inside ``node``'s own job (a sub-flow's, an in-process block's)."""
    if node.is_passthrough or not node.holds_graph:
        return

    def nested(holder: AbstractNode) -> Iterator[AbstractNode]:
        for attribute in ("start_node", "node_to_run"):  # a flow's graph, a batch's item node
            found = getattr(holder, attribute, None)
            if isinstance(found, AbstractNode):
                yield found

    roots = [*node.branches, *nested(node)]

    def links(inner: AbstractNode) -> Iterator[AbstractNode]:
        yield from linked_nodes(inner)
        if inner.holds_graph:
            yield from nested(inner)

    yield from iter_reachable(roots, links)


def _refuse_waits_in_blocks(ids: Mapping[AbstractNode, str]) -> None:
    """A wait parks a job; inside a block that runs as one job it would park the whole
    block, so it is refused before the run starts (names both)."""
    for node, node_id in ids.items():
        for inner in _inside(node):
            if isinstance(inner, WaitNode):
                name = f"{inner.id!r}" if inner.id is not None else type(inner).__name__
                raise GraphError(
                    f"Wait node {name} is inside {node_id!r} ({type(node).__name__}), which runs as one step: "
                    "a wait there would hold the whole block. Put wait nodes on the flow's own path "
                    "(or, in a graph file, in a parallel branch: those run as steps of their own)",
                    node_id=str(inner.id) if inner.id is not None else None,
                )


class JobPlan:
    """The job graph of one flow: ids, start, successors' fan-in counts, join release facts."""

    __slots__ = ("_arrivals", "concurrent", "counts", "flow", "ids", "joins", "nodes", "start", "start_id")

    def __init__(self, flow: Flow) -> None:
        start = flow.start_node
        if start is None:
            raise NotABlueprintFlowError(f"Flow {flow.name} has no start node")
        self.flow = flow
        self.start = start
        self.ids = stable_node_ids(start)
        _refuse_waits_in_blocks(self.ids)
        self.nodes: dict[str, AbstractNode] = {node_id: node for node, node_id in self.ids.items()}
        self.start_id = self.ids[start]
        fan = fan_in(start, job_successors, _first_arrival)
        self.counts = {self.ids[node]: count for node, count in fan.expected.items()}
        self.joins: dict[str, frozenset[str]] = {
            self.ids[join]: frozenset(self.ids[n] for n in reachers) for join, reachers in fan.reachers.items()
        }
        self.concurrent = any(node.is_passthrough and node.branches for node in self.ids) or any(
            len(bucket) > 1 for node in self.ids for bucket in node.successors.values()
        )
        """Whether jobs of one run may run at the same time (a passed-through parallel container)."""
        self._arrivals: dict[AbstractNode, Arrival] = {}

    def node(self, node_id: str) -> AbstractNode | None:
        """The node with this id, or ``None``."""
        return self.nodes.get(node_id)

    def arrival(self, node: AbstractNode) -> Arrival:
        """The arrival at ``node``: its id and how many arrivals make it run."""
        found = self._arrivals.get(node)
        if found is None:
            node_id = self.ids[node]
            found = self._arrivals[node] = Arrival(node_id, self.counts.get(node_id, 1))
        return found

    @property
    def structural_hash(self) -> str:
        """[`structural_hash`][flowcraft.engine.JobPlan.structural_hash] of this graph (the key a
        factory flow's runs pin)."""
        return structural_hash(self.start, self.ids)

    @property
    def shapes(self) -> dict[str, str]:
        """``node_shapes`` of this graph (stored with a factory flow's runs)."""
        return node_shapes(self.ids)

    def identity(self) -> tuple[str, dict[str, str]]:
        """The structural hash and the node shapes, from one walk over the graph."""
        lines = _shape_lines(self.ids)
        return _hash_of_lines(self.start_id, lines), _shapes_of_lines(lines)
