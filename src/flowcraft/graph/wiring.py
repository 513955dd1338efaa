"""Wiring the builder's two paths share: the parallel containers a node needs, the
generated containers and the start node, and the check that a generated id is free."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from ..errors import DuplicateNodeIdError
from .internal_nodes import PARALLEL_CONTAINER_TYPE
from .models import GraphEdge, GraphNode, _edge, _node

__all__ = ["ROOT_PARALLEL_START_ID", "add_container", "add_start", "claim_id", "parallel_groups"]

_Edge = TypeVar("_Edge")  # how a caller names an edge (an index, a raw dict)

ROOT_PARALLEL_START_ID = "__root_parallel_start"
"""The id of the container put in front of a graph's several start nodes."""


def claim_id(index: Mapping[str, GraphNode], generated_id: str, owner: str) -> None:
    """Raise when ``generated_id``, which the builder needs for ``owner``, is a node's id already."""
    if generated_id in index:
        raise DuplicateNodeIdError(
            f"The builder needs the id {generated_id!r} for a node it generates (for {owner!r}), but the graph "
            "already has a node with that id. Rename that node.",
            node_id=generated_id,
        )


def add_container(
    nodes: list[GraphNode],
    edges: list[GraphEdge],
    index: dict[str, GraphNode],
    keep: bytearray,
    node_id: str,
    container_id: str,
    action: str | None,
    members: list[int],
) -> None:
    """Put the parallel container ``container_id`` between ``node_id`` and the targets of
    the edges ``members`` (on ``action``); those edges are marked not kept."""
    claim_id(index, container_id, node_id)
    container = _node(container_id, PARALLEL_CONTAINER_TYPE, {})
    nodes.append(container)
    index[container_id] = container
    edges.append(_edge(node_id, container_id, action))
    for i in members:
        keep[i] = 0
        edges.append(_edge(container_id, edges[i].target))


def add_start(
    starts: list[str],
    nodes: list[GraphNode],
    edges: list[GraphEdge],
    index: dict[str, GraphNode],
    predecessors: dict[str, dict[str, None]] | None,
) -> str:
    """The start node's id among ``starts`` (the nodes without predecessors); several get a
    root container (its edges added to ``edges`` and, when given, ``predecessors``)."""
    if len(starts) == 1:
        return starts[0]
    claim_id(index, ROOT_PARALLEL_START_ID, starts[0])
    root = GraphNode(ROOT_PARALLEL_START_ID, PARALLEL_CONTAINER_TYPE, {})
    nodes.append(root)
    index[ROOT_PARALLEL_START_ID] = root
    for start in starts:
        edges.append(_edge(ROOT_PARALLEL_START_ID, start))
        if predecessors is not None:
            predecessors[start] = {ROOT_PARALLEL_START_ID: None}
    return ROOT_PARALLEL_START_ID


def parallel_groups(
    node_id: str, out_edges: list[_Edge], actions: list[str | None]
) -> list[tuple[str, str | None, list[_Edge]]]:
    """The parallel containers ``node_id`` needs for its out edges ``out_edges`` (with
    ``actions``): (container id, action, the edges it replaces), one per action with
    several edges. The default action's group (else the first such group) gets the plain
    name ``<id>__parallel_container``; every other is named after its action, so the
    literal action "default" gets ``__default`` apart from the default action's group."""
    first = actions[0]
    if actions.count(first) == len(actions):  # the common case: one group
        return [(f"{node_id}__parallel_container", first, out_edges)]
    by_action: dict[str | None, list[_Edge]] = {}
    for i, action in zip(out_edges, actions, strict=True):
        by_action.setdefault(action, []).append(i)
    multi = [action for action, group in by_action.items() if len(group) >= 2]
    if not multi:
        return []
    plain = None if len(by_action.get(None, ())) >= 2 else multi[0]
    return [
        (
            f"{node_id}__parallel_container" if action == plain else f"{node_id}__parallel_container__{action}",
            action,
            by_action[action],
        )
        for action in multi
    ]
