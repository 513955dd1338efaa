"""The builder's one-pass path for well-formed dict input.

A dict graph whose nodes are ``{"id", "type"}`` or ``{"id", "type", "data"}`` of plain
registered types and whose edges are ``{"source", "target"}`` or ``{"source", "target",
"action"}`` between known nodes (the common case) compiles here in one pass per list: no
parsed ``WorkflowGraph``, no copies of it, no edge objects for the edges parallel
containers replace. The blueprint is the checked path's, byte for byte (tested against it
on random graphs); anything else returns ``None`` and takes the checked path, which gives
its specific errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import compress
from typing import Any, NamedTuple

from .internal_nodes import PARALLEL_CONTAINER_TYPE
from .models import _NO_DATA, GraphEdge, GraphNode, WorkflowBlueprint, _edge, _node
from .wiring import ROOT_PARALLEL_START_ID, add_start, parallel_groups

__all__ = ["compile_plain_dict"]


def compile_plain_dict(raw: dict[str, Any], is_plain_type: Callable[[str], bool]) -> WorkflowBlueprint | None:
    """The blueprint of ``raw`` when it is a plain graph (the plain node and edge shapes,
    types for which ``is_plain_type`` holds: no config, sub-workflow, conditional or
    internal type; no generated-id clash); ``None`` for anything else, which then takes
    the builder's checked path and gets its specific error. Same blueprint, byte for byte.

    The layered DAG at V=5k builds in about two thirds of the checked path's time
    (benchmarks/floors.py, same run, alternating)."""
    raw_nodes, raw_edges = raw.get("nodes"), raw.get("edges")
    if type(raw_nodes) is not list or type(raw_edges) is not list:
        return None
    nodes = _plain_nodes(raw_nodes, is_plain_type)
    if nodes is None:
        return None
    index = {node.id: node for node in nodes}
    if len(index) < len(nodes):
        return None
    parsed = _plain_edges(raw_edges, index)
    if parsed is None:
        return None
    out, acted = parsed
    user_ids = list(index)
    groups = _plain_containers(user_ids, raw_edges, out, acted, nodes, index)
    if groups is None:
        return None
    wired = _plain_wiring(raw_edges, groups)
    del parsed, out, groups  # their memory goes to the producer lists (fewer page faults)
    if wired is None:
        return None
    edges, predecessors, counts, owners = wired
    starts = [node_id for node_id in user_ids if node_id not in predecessors]  # containers all have one
    if not starts or (len(starts) > 1 and ROOT_PARALLEL_START_ID in index):
        return None
    start_id = add_start(starts, nodes, edges, index, predecessors)
    if len(starts) > 1:
        counts.update(dict.fromkeys(starts, 1))  # under the root container
    counts[start_id] = 0
    root = ROOT_PARALLEL_START_ID if len(starts) > 1 else None
    producers = _plain_producers(user_ids, predecessors, owners, root)
    return WorkflowBlueprint(tuple(nodes), tuple(edges), start_id, counts, producers)


_PLAIN_NODE_KEYS = ("id", "type", "data")
_ACTION_EDGE_KEYS = ("source", "target", "action")
# A parallel container to add: (owner id, container id, action, indexes of the edges it replaces).
_Group = tuple[str, str, str | None, list[int]]


def _plain_nodes(raw_nodes: list[Any], is_plain_type: Callable[[str], bool]) -> list[GraphNode] | None:
    """The blueprint nodes of ``raw_nodes`` when each is ``{"id", "type"}`` or
    ``{"id", "type", "data"}`` (in that order) of a plain type; ``None`` otherwise."""
    nodes: list[GraphNode] = []
    append = nodes.append
    plain_types: dict[str, bool] = {}
    for raw in raw_nodes:
        if type(raw) is not dict:
            return None
        node_id, node_type = raw.get("id"), raw.get("type")
        if type(node_id) is not str or not node_id or type(node_type) is not str:
            return None
        plain = plain_types.get(node_type)
        if plain is None:
            plain = plain_types[node_type] = bool(node_type) and is_plain_type(node_type)
        if not plain:
            return None
        size = len(raw)
        if size == 2 and next(iter(raw)) == "id":
            append(_node(node_id, node_type, {"originalId": node_id}, None, _NO_DATA))
        elif size == 3 and tuple(raw) == _PLAIN_NODE_KEYS:
            data = raw["data"]
            if type(data) is not dict or "workflowId" in data:
                return None
            append(_node(node_id, node_type, {**data, "originalId": node_id}))
        else:
            return None
    return nodes


def _plain_edges(raw_edges: list[Any], index: Mapping[str, GraphNode]) -> tuple[dict[str, list[int]], bool] | None:
    """Each source's edge indexes and whether any edge has an action, when every edge
    is ``{"source", "target"}`` or ``{"source", "target", "action"}`` (a non-empty action
    other than ``"default"``) between known nodes; ``None`` otherwise. No edge objects
    yet: most are replaced by parallel containers (their key order, checked for the kept
    ones by ``_plain_wiring``, does not matter). Read in place, no tuple per edge (-4%
    instructions)."""
    acted = False
    out: dict[str, list[int]] = {}
    for i, raw in enumerate(raw_edges):
        if type(raw) is not dict:
            return None
        source, target = raw.get("source"), raw.get("target")
        if type(source) is not str or type(target) is not str or source not in index or target not in index:
            return None
        size = len(raw)
        if size == 3:
            action = raw.get("action")
            if type(action) is not str or not action or action == "default":
                return None
            acted = True
        elif size != 2:
            return None
        bucket = out.get(source)
        if bucket is None:
            out[source] = [i]
        else:
            bucket.append(i)
    return out, acted


def _plain_containers(
    user_ids: list[str],
    raw_edges: list[dict[str, str]],
    out: dict[str, list[int]],
    acted: bool,
    nodes: list[GraphNode],
    index: dict[str, GraphNode],
) -> list[_Group] | None:
    """The parallel containers to add (named and placed as ``_insert_parallel_containers``
    does), their nodes appended to ``nodes`` and ``index``; ``None`` when a generated id
    is taken."""
    groups: list[_Group] = []
    for node_id in user_ids:
        indexes = out.get(node_id)
        if indexes is None or len(indexes) < 2:
            continue
        if acted:
            planned = parallel_groups(node_id, indexes, [raw_edges[i].get("action") for i in indexes])
            groups.extend((node_id, container_id, action, members) for container_id, action, members in planned)
        else:  # no edge has an action: one default group (-2% instructions: no list or call per node)
            groups.append((node_id, f"{node_id}__parallel_container", None, indexes))
    for group in groups:
        container_id = group[1]
        if container_id in index:
            return None
        container = _node(container_id, PARALLEL_CONTAINER_TYPE, {})
        nodes.append(container)
        index[container_id] = container
    return groups


class _PlainWiring(NamedTuple):
    """What ``_plain_wiring`` finds."""

    edges: list[GraphEdge]  # the kept ones in input order, then each container's
    predecessors: dict[str, dict[str, None]]  # of each user node (ordered dict keys)
    counts: dict[str, int]  # distinct direct predecessors, by first appearance as a target
    owners: dict[str, str]  # each container's owner, its one predecessor


def _plain_wiring(raw_edges: list[dict[str, str]], groups: list[_Group]) -> _PlainWiring | None:
    """The final edges and the predecessor maps, in the order the checked path finds
    them; ``None`` when a kept edge's keys are not in the plain order. Containers'
    predecessors need no dict each, a container has its owner only; counted on the way
    (-7% instructions)."""
    keep = bytearray(b"\x01") * len(raw_edges)
    for group in groups:
        for i in group[3]:
            keep[i] = 0
    edges: list[GraphEdge] = []
    append = edges.append
    predecessors: dict[str, dict[str, None]] = {}
    counts: dict[str, int] = {}
    for raw in compress(raw_edges, keep):
        if next(iter(raw)) != "source" or (len(raw) == 3 and tuple(raw) != _ACTION_EDGE_KEYS):
            return None
        source, target = raw["source"], raw["target"]
        append(_edge(source, target, raw.get("action")))
        preds = predecessors.get(target)
        if preds is None:
            predecessors[target] = {source: None}
            counts[target] = 1
        else:
            preds[source] = None
            counts[target] = len(preds)
    owners: dict[str, str] = {}
    for owner, container_id, action, members in groups:
        append(_edge(owner, container_id, action))
        counts[container_id] = 1
        owners[container_id] = owner
        for i in members:
            target = raw_edges[i]["target"]
            append(_edge(container_id, target))
            preds = predecessors.get(target)
            if preds is None:
                predecessors[target] = {container_id: None}
                counts[target] = 1
            else:
                preds[container_id] = None
                counts[target] = len(preds)
    return _PlainWiring(edges, predecessors, counts, owners)


def _plain_producers(
    user_ids: list[str],
    predecessors: Mapping[str, Mapping[str, None]],
    owners: Mapping[str, str],
    root: str | None,
) -> dict[str, list[str]]:
    """``_original_producers`` of a plain graph: a user node stands for itself, a
    parallel container for its owner, the ``root`` container (if any) for nobody; user
    nodes first, then containers, in node order."""
    originals: dict[str, list[str]] = {}
    get_preds, stands_for = predecessors.get, owners.get
    for node_id in user_ids:
        preds = get_preds(node_id)
        if preds is None:
            continue
        count = len(preds)
        if count == 1:  # a node after one container (or one node), or a start under the root
            (pred,) = preds
            if pred != root:
                originals[node_id] = [stands_for(pred, pred)]
        elif count == 2:  # a fan-in of two (-8% instructions: no map, dict or call)
            first, second = preds
            first, second = stands_for(first, first), stands_for(second, second)
            originals[node_id] = [first] if first == second else [first, second]
        else:  # no root among several: a start has just the root
            originals[node_id] = list(dict.fromkeys(map(stands_for, preds, preds)))
    for container_id, owner in owners.items():
        originals[container_id] = [owner]
    return originals
