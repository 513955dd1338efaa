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

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .internal_nodes import PARALLEL_CONTAINER_TYPE
from .models import _NO_DATA, GraphEdge, GraphNode, WorkflowBlueprint, _edge, _node
from .wiring import ROOT_PARALLEL_START_ID, add_start, parallel_groups

__all__ = ["compile_plain_dict"]

# A raw edge dict (``{"source", "target", "action"?}``), read in place.
_RawEdge = dict[str, str]
# A source's targets: the one target itself, or a list of several.
_Out = dict[str, Any]


def compile_plain_dict(raw: dict[str, Any], is_plain_type: Callable[[str], bool]) -> WorkflowBlueprint | None:
    """The blueprint of ``raw`` when it is a plain graph (the plain node and edge shapes,
    types for which ``is_plain_type`` holds: no config, sub-workflow, conditional or
    internal type; no generated-id clash); ``None`` for anything else, which then takes
    the builder's checked path and gets its specific error. Same blueprint, byte for byte.

    The layered DAG at V=5k builds in about half of the checked path's time
    (benchmarks/floors.py, same run, alternating)."""
    raw_nodes, raw_edges = raw.get("nodes"), raw.get("edges")
    if type(raw_nodes) is not list or type(raw_edges) is not list:
        return None
    read = _plain_nodes(raw_nodes, is_plain_type)
    if read is None:
        return None
    nodes, index = read
    if len(index) < len(nodes):
        return None
    parsed = _plain_edges(raw_edges, index)
    if parsed is None:
        return None
    out, acted, single = parsed
    wired = _plain_wiring(raw_edges, out, acted, single, nodes, index)
    del parsed, out
    if wired is None:
        return None
    edges, preds, counts, container_ids = wired
    producers, starts = _plain_producers(index, preds, container_ids, acted)
    if not starts or (len(starts) > 1 and ROOT_PARALLEL_START_ID in index):
        return None
    start_id = add_start(starts, nodes, edges, index, None)
    if len(starts) > 1:
        counts.update(dict.fromkeys(starts, 1))  # under the root container
    counts[start_id] = 0
    return WorkflowBlueprint(tuple(nodes), tuple(edges), start_id, counts, producers)


_PLAIN_NODE_KEYS = ("id", "type", "data")
_ACTION_EDGE_KEYS = ("source", "target", "action")


def _plain_nodes(
    raw_nodes: list[Any], is_plain_type: Callable[[str], bool]
) -> tuple[list[GraphNode], dict[str, GraphNode]] | None:
    """The blueprint nodes of ``raw_nodes`` and the nodes by id (fewer than the nodes
    when an id repeats), when each is ``{"id", "type"}`` or ``{"id", "type", "data"}``
    (in that order) of a plain type; ``None`` otherwise."""
    nodes: list[GraphNode] = []
    append = nodes.append
    index: dict[str, GraphNode] = {}
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
            node = _node(node_id, node_type, {"originalId": node_id}, None, _NO_DATA)
        elif size == 3 and tuple(raw) == _PLAIN_NODE_KEYS:
            data = raw["data"]
            if type(data) is not dict or "workflowId" in data:
                return None
            node = _node(node_id, node_type, {**data, "originalId": node_id})
        else:
            return None
        append(node)
        index[node_id] = node
    return nodes, index


def _plain_edges(raw_edges: list[Any], index: Mapping[str, GraphNode]) -> tuple[_Out, bool, bool] | None:
    """Each source's targets (the target itself when it has one edge, else a list),
    whether any edge has an action and whether any source has a single edge, when every
    edge is ``{"source", "target"}`` or ``{"source", "target", "action"}`` (a non-empty
    action other than ``"default"``) between known nodes; ``None`` otherwise. No edge
    objects yet: most are replaced by parallel containers (their key order, checked for
    the kept ones by ``_plain_wiring``, does not matter)."""
    acted = False
    out: _Out = {}
    several = 0
    for raw in raw_edges:
        if type(raw) is not dict:
            return None
        source, target = raw.get("source"), raw.get("target")
        if type(source) is not str or type(target) is not str:
            return None
        source_node, target_node = index.get(source), index.get(target)
        if source_node is None or target_node is None:
            return None
        size = len(raw)
        if size == 3:
            action = raw.get("action")
            if type(action) is not str or not action or action == "default":
                return None
            acted = True
        elif size != 2:
            return None
        # The nodes' own id strings from here on: later look-ups match them by identity and
        # do not touch the edges' copies again (-2% at V=5k, -5% at V=10k).
        source, target = source_node.id, target_node.id
        bucket = out.get(source)
        if bucket is None:
            out[source] = target
        elif type(bucket) is str:
            out[source] = [bucket, target]
            several += 1
        else:
            bucket.append(target)
    return out, acted, several < len(out)


# Each target's distinct predecessors: the one itself, or a list of several. They become
# the producer lists, and a list made with its second item holds two slots, not the eight
# an appended one grows to (the DAG's blueprint at V=10k: 9.4 MB, not 9.9 MB).
_Preds = dict[str, Any]
# A parallel container to add: (owner id, container id, action, the targets it leads to).
_Group = tuple[str, str, str | None, list[str]]


def _acted_groups(raw_edges: list[_RawEdge], index: Mapping[str, GraphNode]) -> tuple[list[_Group], set[int]] | None:
    """The parallel containers of a graph with actions, in node order, and the ``id`` of
    each raw edge they replace; ``None`` when two would get the same id."""
    out: dict[str, list[_RawEdge]] = {}
    for raw in raw_edges:
        out.setdefault(raw["source"], []).append(raw)
    groups: list[_Group] = []
    replaced: set[int] = set()
    for node_id in index:
        several = out.get(node_id)
        if several is None or len(several) < 2:
            continue
        for container_id, action, members in parallel_groups(node_id, several, [e.get("action") for e in several]):
            groups.append((node_id, container_id, action, [e["target"] for e in members]))
            replaced.update(map(id, members))
    if len({group[1] for group in groups}) < len(groups):
        return None
    return groups, replaced


def _plain_wiring(
    raw_edges: list[_RawEdge],
    out: _Out,
    acted: bool,
    single: bool,
    nodes: list[GraphNode],
    index: dict[str, GraphNode],
) -> tuple[list[GraphEdge], _Preds, dict[str, int], list[str]] | None:
    """The final edges (the kept ones in input order, then each parallel container's),
    each target's distinct predecessors and their number (targets in order of first
    appearance; counted here, while they are at hand, and not in a pass over the
    predecessors after: -2% at V=10k) and the containers' ids, their nodes appended to
    ``nodes``. ``None`` when a generated id is taken or a kept edge's keys are not in the
    plain order.

    Without actions, a container's owner stands in for it among its targets'
    predecessors: each owner has one container and no kept edge, so the owners are as
    distinct as their containers and the lists are the producer lists already."""
    replaced: set[int] = set()
    groups: Iterable[_Group]
    if acted:
        planned = _acted_groups(raw_edges, index)
        if planned is None:
            return None
        groups, replaced = planned
    else:  # one default container per node with several edges (its ids differ: no clash among them)
        groups = (
            (node_id, f"{node_id}__parallel_container", None, targets)
            for node_id in index
            if type(targets := out.get(node_id)) is list
        )
    edges: list[GraphEdge] = []
    append = edges.append
    preds: _Preds = {}
    counts: dict[str, int] = {}
    if acted or single:
        for raw in raw_edges:
            source = raw["source"]
            if acted:
                if id(raw) in replaced:
                    continue
                target = raw["target"]
            else:
                target = out[source]  # the node's own id string when the edge is kept
                if type(target) is not str:
                    continue
            if next(iter(raw)) != "source" or (len(raw) == 3 and tuple(raw) != _ACTION_EDGE_KEYS):
                return None
            append(_edge(source, target, raw.get("action")))
            _add_predecessor(preds, counts, target, source)
    container_ids: list[str] = []
    add_node, add_id = nodes.append, container_ids.append
    for owner, container_id, action, targets in groups:
        if container_id in index:
            return None
        add_node(_node(container_id, PARALLEL_CONTAINER_TYPE, {}))
        add_id(container_id)
        append(_edge(owner, container_id, action))
        preds[container_id] = owner
        counts[container_id] = 1
        pred = container_id if acted else owner
        for target in targets:
            append(_edge(container_id, target))
            _add_predecessor(preds, counts, target, pred)
    return edges, preds, counts, container_ids


def _add_predecessor(preds: _Preds, counts: dict[str, int], target: str, source: str) -> None:
    """Record ``source`` among ``target``'s distinct predecessors, and their number."""
    sources = preds.get(target)
    if sources is None:
        preds[target] = source
        counts[target] = 1
    elif type(sources) is str:
        if sources != source:
            preds[target] = [sources, source]
            counts[target] = 2
    elif source not in sources:
        sources.append(source)
        counts[target] = len(sources)


def _plain_producers(
    user_ids: Iterable[str], preds: _Preds, container_ids: list[str], acted: bool
) -> tuple[dict[str, list[str]], list[str]]:
    """``_original_producers`` of a plain graph (user nodes first, then containers, in
    node order) and the user nodes without predecessors (the starts). The predecessor
    lists become the producer lists: a container stands for its owner (already in place
    without actions)."""
    producers: dict[str, list[str]] = {}
    starts: list[str] = []
    get = preds.get
    for node_id in user_ids:
        sources = get(node_id)
        if sources is None:
            starts.append(node_id)
        else:
            producers[node_id] = [sources] if type(sources) is str else sources
    if acted:
        owners = {container_id: preds[container_id] for container_id in container_ids}
        for producer_ids in producers.values():
            producer_ids[:] = dict.fromkeys([owners.get(source, source) for source in producer_ids])
    for container_id in container_ids:
        producers[container_id] = [preds[container_id]]  # its owner
    return producers, starts
