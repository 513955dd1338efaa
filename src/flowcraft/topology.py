"""Graph shape helpers shared by flows and executors: traversal and fan-in counts.

Every node counts its own wiring changes (``next``, ``start``, setting a parallel
block's branches) in ``_wiring``; the sum over a graph's nodes only grows, so executors
can cache what they derive from a graph and check it in one cheap pass.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .node import AbstractNode

__all__ = ["iter_reachable", "linked_nodes", "predecessor_counts", "wiring_stamp"]


def wiring_stamp(nodes: Iterable[AbstractNode]) -> int:
    """A number that changes whenever any of ``nodes`` is rewired."""
    return sum(node._wiring for node in nodes)


def linked_nodes(node: AbstractNode) -> Iterator[AbstractNode]:
    """Every node ``node`` can hand control to: its successors and its parallel branches."""
    for bucket in node.successors.values():
        yield from bucket
    branches: Iterable[AbstractNode] | None = getattr(node, "nodes_to_run", None)
    if branches:
        yield from branches


def iter_reachable(roots: Iterable[AbstractNode]) -> Iterator[AbstractNode]:
    """Breadth-first over every node reachable from ``roots`` (each once, roots first)."""
    seen: set[int] = set()
    queue: deque[AbstractNode] = deque()
    for root in roots:
        if id(root) not in seen:
            seen.add(id(root))
            queue.append(root)
    while queue:
        node = queue.popleft()
        yield node
        for nxt in linked_nodes(node):
            if id(nxt) not in seen:
                seen.add(id(nxt))
                queue.append(nxt)


def predecessor_counts(root: AbstractNode) -> dict[AbstractNode, int]:
    """For nodes reachable from ``root`` with more than one distinct predecessor, that count.

    Back edges (an edge to a node on the current depth-first path, i.e. the edge that
    closes a loop) are not counted: a loop's entry is not a join of the loop and the path
    into it. Nodes that join exclusive branches (``fires_on_first_arrival``) are left out:
    they never wait.
    """
    preds: dict[AbstractNode, set[int]] = {}
    visited: set[int] = {id(root)}
    on_path: set[int] = {id(root)}
    stack: list[tuple[AbstractNode, Iterator[AbstractNode]]] = [(root, linked_nodes(root))]
    while stack:
        node, successors = stack[-1]
        for nxt in successors:
            if id(nxt) in on_path:
                continue
            preds.setdefault(nxt, set()).add(id(node))
            if id(nxt) not in visited:
                visited.add(id(nxt))
                on_path.add(id(nxt))
                stack.append((nxt, linked_nodes(nxt)))
                break
        else:
            stack.pop()
            on_path.discard(id(node))
    return {
        node: len(sources)
        for node, sources in preds.items()
        if len(sources) > 1 and not getattr(node, "fires_on_first_arrival", False)
    }
