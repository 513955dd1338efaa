"""Graph shape: traversal, stable node ids, and the fan-in rule every engine uses.

**The fan-in rule** (`fan_in`), in one place for the in-memory join gate
(`flowcraft.executors.joins`), the job engine ([`flowcraft.engine`][flowcraft.engine]) and the
Redis scripts, which receive its numbers instead of deriving them:

1. A *join* is a node with more than one distinct predecessor among the nodes that can
   run concurrently with it — inside one parallel block in memory, inside one run in
   the job engine. It runs once, after each of those predecessors handed control to it.
2. Loop back-edges (an edge to a node on the current depth-first path from the root)
   are not counted: a loop's entry is not a join of the loop and the path into it.
3. A node that joins exclusive branches (``fires_on_first_arrival``: the conditional
   join a graph builder inserts) is not a join: it runs on its first arrival.
4. A waiting join is released early — it runs with the arrivals it has — when a
   branch ends (a node hands control to no one) or nothing runs any more, if no running
   node and no other waiting join can still reach it (`FanIn.releasable`). When
   nothing runs and every waiting join can reach another (a cycle), they are all
   released.

``predecessorCountMap`` in blueprint JSON counts every edge, back-edges included; it is
kept only for interchange with Flowcraft TS and no engine reads it.

Every node counts its own wiring changes (``next``, ``start``, setting a parallel
block's branches) in ``_wiring``; the sum over a graph's nodes only grows, so executors
can cache what they derive from a graph and check it in one cheap pass.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from .node import AbstractNode

__all__ = [
    "FanIn",
    "describe_double_visit",
    "double_visits",
    "fan_in",
    "iter_reachable",
    "linked_nodes",
    "node_fan_in",
    "releasable",
    "wiring_stamp",
]

K = TypeVar("K", bound=Hashable)


def wiring_stamp(nodes: Iterable[AbstractNode]) -> int:
    """A number that changes whenever any of ``nodes`` is rewired."""
    return sum(node._wiring for node in nodes)


def linked_nodes(node: AbstractNode) -> Iterator[AbstractNode]:
    """Every node ``node`` can hand control to: its successors and its parallel branches."""
    for bucket in node.successors.values():
        yield from bucket
    yield from node.branches


def iter_reachable(
    roots: Iterable[AbstractNode], successors: Callable[[AbstractNode], Iterable[AbstractNode]] = linked_nodes
) -> Iterator[AbstractNode]:
    """Breadth-first over every node reachable from ``roots`` along ``successors`` (each
    once, roots first, successors in the order they were added)."""
    seen: set[int] = set()
    queue: deque[AbstractNode] = deque()
    for root in roots:
        if id(root) not in seen:
            seen.add(id(root))
            queue.append(root)
    while queue:
        node = queue.popleft()
        yield node
        for nxt in successors(node):
            if id(nxt) not in seen:
                seen.add(id(nxt))
                queue.append(nxt)


def double_visits(roots: Iterable[AbstractNode]) -> list[tuple[AbstractNode, AbstractNode]]:
    """``(node, block)`` for each node that a parallel block's branches reach and that is
    also one of the block's own successors: it runs twice, once inside the block and once
    after it. Every block reachable from ``roots`` is checked."""
    found: list[tuple[AbstractNode, AbstractNode]] = []
    for block in iter_reachable(roots):
        branches = block.branches
        if not branches or not block.successors:
            continue
        after = {id(node) for bucket in block.successors.values() for node in bucket}

        def inside(node: AbstractNode, block: AbstractNode = block) -> Iterable[AbstractNode]:
            return () if node is block else linked_nodes(node)

        found.extend((node, block) for node in iter_reachable(branches, inside) if id(node) in after)
    return found


def describe_double_visit(node: AbstractNode, block: AbstractNode) -> str:
    """The warning for a [`double_visits`][flowcraft.topology.double_visits] pair, naming the node and the block."""

    def name(n: AbstractNode) -> str:
        return type(n).__name__ if n.id is None else f"{n.id!r} ({type(n).__name__})"

    return (
        f"node {name(node)} is reached by a branch of parallel block {name(block)} and is also that block's "
        "successor: it runs twice, once inside the block and once after it. Wire it to one of the two."
    )


@dataclasses.dataclass(frozen=True, slots=True)
class FanIn(Generic[K]):
    """The joins of a graph: how many arrivals each waits for, and who can still reach it."""

    expected: Mapping[K, int]
    """Join → the number of distinct predecessors it waits for (joins only)."""
    reachers: Mapping[K, frozenset[K]]
    """Join → every node that can reach it along any edge (the join itself included)."""

    def count(self, node: K) -> int:
        """How many distinct arrivals make ``node`` run (1 for a node that is not a join)."""
        return self.expected.get(node, 1)

    def releasable(self, waiting: Sequence[K], running: Iterable[K]) -> list[K]:
        """The waiting joins that can get no further arrival (rule 4 of the module docstring).

        ``waiting``: joins with some but not all arrivals; ``running``: the nodes being
        run (or decided on and not finished) anywhere in the region.
        """
        return releasable(waiting, running, self.reachers)


def releasable(waiting: Sequence[K], running: Iterable[K], reachers: Mapping[K, frozenset[K]]) -> list[K]:
    """Rule 4 of the module docstring over ``reachers`` (join → nodes that can reach it).

    A join without reachers (no release facts) is held while anything runs.
    """
    active = list(running)
    ready = []
    for join in waiting:
        reach = reachers.get(join)
        if reach is None:
            blocked = bool(active)
        else:
            blocked = any(node in reach for node in active) or any(o != join and o in reach for o in waiting)
        if not blocked:
            ready.append(join)
    if not ready and not active:
        return list(waiting)
    return ready


def fan_in(root: K, successors: Callable[[K], Iterable[K]], fires_on_first_arrival: Callable[[K], bool]) -> FanIn[K]:
    """The fan-in rule (module docstring) for the graph reachable from ``root``."""
    preds: dict[K, set[K]] = {}
    visited: set[K] = {root}
    on_path: set[K] = {root}
    order: list[K] = [root]
    stack: list[tuple[K, Iterator[K]]] = [(root, iter(successors(root)))]
    while stack:
        node, following = stack[-1]
        for nxt in following:
            if nxt in on_path:
                continue  # a back-edge closes a loop: not an arrival (rule 2)
            preds.setdefault(nxt, set()).add(node)
            if nxt not in visited:
                visited.add(nxt)
                on_path.add(nxt)
                order.append(nxt)
                stack.append((nxt, iter(successors(nxt))))
                break
        else:
            stack.pop()
            on_path.discard(node)
    expected = {
        node: len(sources) for node, sources in preds.items() if len(sources) > 1 and not fires_on_first_arrival(node)
    }
    if not expected:
        return FanIn({}, {})
    reverse: dict[K, list[K]] = {}
    for node in order:
        for nxt in successors(node):
            reverse.setdefault(nxt, []).append(node)
    reachers: dict[K, frozenset[K]] = {}
    for join in expected:
        seen = {join}
        queue = deque([join])
        while queue:
            for source in reverse.get(queue.popleft(), ()):
                if source not in seen:
                    seen.add(source)
                    queue.append(source)
        reachers[join] = frozenset(seen)
    return FanIn(expected, reachers)


def _first_arrival(node: AbstractNode) -> bool:
    return node.fires_on_first_arrival


def node_fan_in(root: AbstractNode) -> FanIn[AbstractNode]:
    """`fan_in` over live nodes: successors and parallel branches are the edges."""
    return fan_in(root, linked_nodes, _first_arrival)
