"""Static concurrency-safety analysis: which nodes may run at the same time, and what
they read and write.

Nodes declare their *effects* with class attributes ``reads`` and ``writes``
(context key names or [`ContextKey`][flowcraft.ContextKey]s) and ``updates`` (keys
changed atomically with ``ctx.update``); in JSON graphs, with ``data.reads`` /
``data.writes`` / ``data.updates`` or on the registry class. A ``ContextKey`` with a
merge policy in ``writes`` is written atomically too.
[`check_concurrency`][flowcraft.graph.check_concurrency] then reports, each issue with a
[`Witness`][flowcraft.graph.Witness]:

- ``parallel-lost-update`` — a node reads a key and writes it back (read-modify-write,
  not atomically) while another node that may run at the same time writes it: one of the
  writes is lost (on distributed and durable runs each node changes its own copy of the
  context). Use ``ctx.update`` or a key with a merge policy;
- ``parallel-write-conflict`` — two nodes that may run at once write one key (the last
  writer wins, and which one that is changes from run to run) — unless both write it
  atomically (``updates``, or a key with a merge policy);
- ``parallel-read-write-race`` — a node reads a key that a node running at the same time
  may write (it sees the value or not);
- ``maybe-unset-read`` — a node reads a key that some node writes, but not on every path
  to the reader (keys no node writes are the run's inputs and are not reported);
- ``exclusive-join`` — a join inside a parallel region that at most one of its
  predecessors can reach (it waits for arrivals that cannot come: it runs late, when the
  unrelated branches are done, and never in engines that only count arrivals);
- ``undeclared-effects`` — a warning: a node with no declaration may run in parallel
  with another node, so nothing can be said about it.

**When may two nodes run at the same time?** When some parallel fork (a parallel block,
a parallel container, several successors on one action of a JSON graph, a parallel
batch's items) reaches one from one branch and the other from another branch, and
neither can reach the other (a path from one to the other means the second waits for
the first: joins wait for every arrival). Different actions of one node are exclusive.
A parallel block with ``concurrency=1`` runs its branches one after the other.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..context import merge_of
from ..node import AbstractNode
from ..patterns import ParallelBatchFlow
from ..topology import fan_in
from .analysis import GraphIssue, Witness
from .builder import _find_convergence
from .internal_nodes import (
    CONDITIONAL_JOIN_TYPE,
    INPUT_MAPPER_TYPE,
    OUTPUT_MAPPER_TYPE,
    PARALLEL_CONTAINER_TYPE,
    SUB_WORKFLOW_CONTAINER_TYPE,
    InputMappingNode,
    OutputMappingNode,
)
from .models import GraphEdge, GraphNode, WorkflowBlueprint, WorkflowGraph

__all__ = ["CONCURRENCY_ISSUE_TYPES", "Effects", "check_concurrency", "declared_effects"]

CONCURRENCY_ISSUE_TYPES = (
    "parallel-lost-update",
    "parallel-write-conflict",
    "parallel-read-write-race",
    "maybe-unset-read",
    "exclusive-join",
    "undeclared-effects",
)
"""The issue types [`check_concurrency`][flowcraft.graph.check_concurrency] reports."""

_BOOKKEEPING = frozenset({"nodeId", "originalId", "isSubWorkflow"})


@dataclass(frozen=True, slots=True)
class Effects:
    """The context keys a node reads and writes (by name); ``merged``: the written keys it
    changes atomically (``ctx.update``, or a key with a merge policy)."""

    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()
    merged: frozenset[str] = frozenset()


def _names(value: Any, owner: str, attr: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset({str.__str__(value)})
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{owner}.{attr} must be context key names, got {type(value).__name__} {value!r}") from None
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{owner}.{attr} must be context key names, got {type(item).__name__} {item!r}")
    return frozenset(str.__str__(item) for item in items)


def _merged(value: Any) -> frozenset[str]:
    """The names of the keys with a merge policy among declared ``writes``."""
    items = [value] if isinstance(value, str) else list(value or ())
    return frozenset(str.__str__(k) for k in items if isinstance(k, str) and merge_of(k) is not None)


def _effects(reads: Any, writes: Any, updates: Any, owner: str) -> Effects:
    updated = _names(updates, owner, "updates")
    return Effects(_names(reads, owner, "reads"), _names(writes, owner, "writes") | updated, _merged(writes) | updated)


def declared_effects(node: object) -> Effects | None:
    """The ``reads``/``writes``/``updates`` a node (or node class) declares, or ``None``
    when it declares none of them. ``updates`` are written keys (atomically changed with
    ``ctx.update``), as are ``writes`` keys with a merge policy.

    Raises:
        TypeError: a declaration that is not a key name or a collection of key names.
    """
    reads, writes = getattr(node, "reads", None), getattr(node, "writes", None)
    updates = getattr(node, "updates", None)
    if reads is None and writes is None and updates is None:
        return None
    owner = node.__name__ if isinstance(node, type) else type(node).__name__
    return _effects(reads, writes, updates, owner)


# ---- the model both front ends build --------------------------------------------------------


@dataclass
class _Model:
    root: str = ""
    order: list[str] = field(default_factory=list)
    effects: dict[str, Effects | None] = field(default_factory=dict)
    edges: dict[str, list[str]] = field(default_factory=dict)
    forks: list[tuple[str, list[str], bool]] = field(default_factory=list)  # fork, branch starts, self-concurrent
    first_arrival: set[str] = field(default_factory=set)
    virtual: set[str] = field(default_factory=set)  # not user nodes: never reported, left out of paths
    display: dict[str, str] = field(default_factory=dict)

    def add(self, node_id: str, effects: Effects | None, *, virtual: bool = False, display: str | None = None) -> None:
        self.order.append(node_id)
        self.effects[node_id] = effects
        self.edges.setdefault(node_id, [])
        if virtual:
            self.virtual.add(node_id)
        if display is not None:
            self.display[node_id] = display

    def link(self, source: str, target: str) -> None:
        bucket = self.edges.setdefault(source, [])
        if target not in bucket:
            bucket.append(target)

    def name(self, node_id: str) -> str:
        return self.display.get(node_id, node_id)


def _reach_from(model: _Model, starts: Iterable[str]) -> dict[str, str | None]:
    """Breadth-first from ``starts``: node → the node it was reached from (``None``: a start)."""
    parent: dict[str, str | None] = {}
    queue: deque[str] = deque()
    for start in starts:
        if start not in parent:
            parent[start] = None
            queue.append(start)
    while queue:
        node = queue.popleft()
        for nxt in model.edges.get(node, ()):
            if nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    return parent


def _path(parent: Mapping[str, str | None], node: str) -> list[str]:
    path = [node]
    while (up := parent[path[-1]]) is not None:
        path.append(up)
    return path[::-1]


# ---- live flows --------------------------------------------------------------------------


def _node_effects(node: AbstractNode) -> Effects | None:
    if isinstance(node, InputMappingNode | OutputMappingNode):
        mappings = node.mappings
        return Effects(frozenset(mappings.values()), frozenset(mappings))
    declared = declared_effects(node)
    if declared is not None:
        return declared
    data = getattr(node.graph_data, "data", None)  # a node built from a JSON graph
    if isinstance(data, Mapping) and ("reads" in data or "writes" in data or "updates" in data):
        return _effects(data.get("reads"), data.get("writes"), data.get("updates"), f"node {node.original_id!r} data")
    if node.is_structural or node.is_passthrough or node.holds_graph:
        return Effects()  # wiring and blocks: their inner nodes carry the effects
    return None


def _from_flow(top: AbstractNode) -> _Model:
    model = _Model()
    names: dict[int, str] = {}
    taken: set[str] = set()
    blocks: list[tuple[str, list[str], list[str]]] = []  # block, inner starts, successor targets

    def name_of(node: AbstractNode) -> str:
        known = names.get(id(node))
        if known is not None:
            return known
        base = type(node).__name__ if node.id is None else str(node.id)
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}#{n}"
        taken.add(name)
        names[id(node)] = name
        return name

    pending: deque[AbstractNode] = deque([top])
    seen: set[int] = {id(top)}

    def visit(node: AbstractNode) -> str:
        if id(node) not in seen:
            seen.add(id(node))
            pending.append(node)
        return name_of(node)

    model.root = name_of(top)
    while pending:
        node = pending.popleft()
        me = name_of(node)
        model.add(me, Effects() if node is top else _node_effects(node), virtual=node is top)
        targets = [visit(bucket[0]) for bucket in node.successors.values() if bucket]
        inner: list[AbstractNode] = list(node.branches)
        self_concurrent = False
        batch_node = getattr(node, "node_to_run", None)
        if not inner and isinstance(batch_node, AbstractNode):
            inner = [batch_node]
            self_concurrent = isinstance(node, ParallelBatchFlow) and node.concurrency != 1
        start = getattr(node, "start_node", None)
        if not inner and node.holds_graph and isinstance(start, AbstractNode):
            inner = [start]
        inner_ids = [visit(n) for n in inner]
        limit = getattr(node, "concurrency", None)
        if (len(inner_ids) > 1 and limit != 1) or self_concurrent:
            model.forks.append((me, inner_ids, self_concurrent))
        for target in inner_ids:
            model.link(me, target)
        if inner_ids and targets:
            blocks.append((me, inner_ids, targets))  # successors run after the block's walk
        else:
            for target in targets:
                model.link(me, target)
    for block, inner_ids, targets in blocks:
        end = f"{block}:end"
        model.add(end, Effects(), virtual=True, display=block)
        region = _reach_from(model, inner_ids)
        for node_id in region:
            if node_id != block:
                model.link(node_id, end)
        for target in targets:
            model.link(end, target)
    return model


# ---- JSON graphs and blueprints ------------------------------------------------------------------


def _json_effects(node: GraphNode, registry: Mapping[str, Any] | None) -> Effects | None:
    data = node.data
    if node.type in (INPUT_MAPPER_TYPE, OUTPUT_MAPPER_TYPE):
        mappings = {k: v for k, v in data.items() if k not in _BOOKKEEPING and isinstance(v, str)}
        return Effects(frozenset(mappings.values()), frozenset(mappings))
    if node.type in (PARALLEL_CONTAINER_TYPE, SUB_WORKFLOW_CONTAINER_TYPE, CONDITIONAL_JOIN_TYPE):
        return Effects()
    if "reads" in data or "writes" in data or "updates" in data:
        return _effects(data.get("reads"), data.get("writes"), data.get("updates"), f"node {node.id!r} data")
    kind = registry.get(node.type) if registry is not None else None
    return declared_effects(kind) if kind is not None else None


def _from_json(
    nodes: Sequence[GraphNode],
    edges: Sequence[GraphEdge],
    start_ids: Sequence[str],
    *,
    compiled: bool,
    registry: Mapping[str, Any] | None,
    conditional_types: frozenset[str],
) -> _Model:
    model = _Model()
    types = {node.id: node.type for node in nodes}
    for node in nodes:
        model.add(node.id, _json_effects(node, registry))
        if node.type == CONDITIONAL_JOIN_TYPE:
            model.first_arrival.add(node.id)
    groups: dict[tuple[str, Any], list[str]] = {}
    out: dict[str, list[int]] = {}
    for i, edge in enumerate(edges):
        if edge.source in types and edge.target in types:
            groups.setdefault((edge.source, edge.action), []).append(edge.target)
            out.setdefault(edge.source, []).append(i)
    for (source, action), targets in groups.items():
        if compiled and types[source] == PARALLEL_CONTAINER_TYPE:
            model.forks.append((source, list(targets), False))
            model.virtual.add(source)
            model.display[source] = source.split("__parallel_container")[0]
        elif not compiled and len(targets) > 1 and types[source] not in conditional_types:
            label = "" if action is None else f"__{action}"
            fork = f"{source}__parallel_container{label}"
            model.add(fork, Effects(), virtual=True, display=source)
            model.forks.append((fork, list(targets), False))
            model.link(source, fork)
            for target in targets:
                model.link(fork, target)
            continue
        for target in targets:
            model.link(source, target)
    if not compiled:
        for node in nodes:  # where a conditional node's branches meet, the builder puts a conditional join
            if node.type in conditional_types and len(out.get(node.id, ())) > 1:
                branches = [edges[i].target for i in out[node.id]]
                meet = _find_convergence(branches, list(edges), out)
                if meet is not None:
                    model.first_arrival.add(meet)
    if len(start_ids) == 1:
        model.root = start_ids[0]
    else:
        model.root = "__root_parallel_start"
        model.add(model.root, Effects(), virtual=True, display="(start)")
        model.forks.append((model.root, list(start_ids), False))
        for start in start_ids:
            model.link(model.root, start)
    return model


# ---- the analysis ------------------------------------------------------------------------------


class _Analysis:
    def __init__(self, model: _Model, inputs: frozenset[str]) -> None:
        self.model = model
        self.inputs = inputs
        reachable = _reach_from(model, [model.root])
        self.nodes = [n for n in model.order if n in reachable]
        self.index = {n: i for i, n in enumerate(self.nodes)}
        self.reach = {n: frozenset(_reach_from(model, model.edges.get(n, ()))) for n in self.nodes}
        self.pairs: dict[frozenset[str], tuple[str, str, Witness]] = {}
        self.issues: list[GraphIssue] = []

    def ordered(self, a: str, b: str) -> bool:
        return b in self.reach[a] or a in self.reach[b]

    def witness_path(self, parent: Mapping[str, str | None], node: str) -> tuple[str, ...]:
        virtual = self.model.virtual
        return tuple(self.model.name(n) for n in _path(parent, node) if n not in virtual)

    def find_pairs(self) -> None:
        model = self.model
        for fork, starts, self_concurrent in model.forks:
            if fork not in self.index:
                continue
            regions = [_reach_from(model, [start]) for start in starts]
            for i, first in enumerate(regions):
                for second in regions[i + 1 :]:
                    for a in first:
                        for b in second:
                            if a != b and not self.ordered(a, b):
                                self.record(fork, a, first, b, second)
            if self_concurrent:  # two items of a parallel batch run the same nodes at once
                for a in regions[0]:
                    for b in regions[0]:
                        self.record(fork, a, regions[0], b, regions[0])

    def record(self, fork: str, a: str, pa: Mapping[str, str | None], b: str, pb: Mapping[str, str | None]) -> None:
        if a in self.model.virtual or b in self.model.virtual:
            return
        key = frozenset((a, b))
        if key not in self.pairs:
            witness = Witness(self.model.name(fork), self.witness_path(pa, a), self.witness_path(pb, b))
            self.pairs[key] = (a, b, witness)

    def races(self) -> None:
        effects, name = self.model.effects, self.model.name
        undeclared: dict[str, tuple[str, Witness]] = {}
        for a, b, witness in self.pairs.values():
            ea, eb = effects[a], effects[b]
            for node, other in ((a, b), (b, a)):
                if effects[node] is None and node not in undeclared:
                    undeclared[node] = (other, witness)
            if ea is None or eb is None:
                continue
            same = a == b
            shared = ea.writes & eb.writes
            lost = sorted(k for k in shared if _rmw(ea, k) or _rmw(eb, k))
            if lost:
                self.issues.append(self._lost_update(a, ea, b, eb, lost, witness))
            both = sorted(k for k in shared if k not in lost and not (k in ea.merged and k in eb.merged))
            if both:
                what = "each item of a parallel batch" if same else f"{name(a)!r} and {name(b)!r}"
                self.issues.append(
                    GraphIssue(
                        name(b), "parallel-write-conflict",
                        f"{what} may run at the same time and both write {_keys(both)}: the last writer wins, "
                        f"and which one that is changes from run to run (parallel fork {witness.fork!r}). "
                        "Write different keys and combine them after the join.",
                        "error", tuple(both), witness,
                    )
                )  # fmt: skip
            directions = [(a, b, witness)] if same else [(a, b, witness), (b, a, _swap(witness))]
            for reader, writer, w in directions:
                raced = sorted(effects[reader].reads & effects[writer].writes - set(lost))  # type: ignore[union-attr]
                if raced:
                    self.issues.append(
                        GraphIssue(
                            name(reader), "parallel-read-write-race",
                            f"{name(reader)!r} reads {_keys(raced)}, which {name(writer)!r} may write at the same "
                            f"time (parallel fork {w.fork!r}): it sees the old value or the new one. Read it after "
                            "the join, or let the writer hand it over.",
                            "error", tuple(raced), w,
                        )
                    )  # fmt: skip
        for node in sorted(undeclared, key=self.index.__getitem__):
            other, witness = undeclared[node]
            if witness.first and witness.first[-1] != name(node):
                witness = _swap(witness)
            self.issues.append(
                GraphIssue(
                    name(node), "undeclared-effects",
                    f"{name(node)!r} may run at the same time as {name(other)!r} (parallel fork {witness.fork!r}) "
                    "but declares no reads/writes: declare them (class attributes reads and writes, or "
                    "data.reads/data.writes in JSON) so its races can be checked.",
                    "warning", (), witness,
                )
            )  # fmt: skip

    def _lost_update(self, a: str, ea: Effects, b: str, eb: Effects, lost: list[str], witness: Witness) -> GraphIssue:
        name, keys = self.model.name, _keys(lost)
        rmw = [n for n, e in ((a, ea), (b, eb)) if any(_rmw(e, k) for k in lost)]
        if a == b:
            what = f"{name(a)!r} reads {keys} and writes it back, and each item of a parallel batch runs it"
        elif len(rmw) == 2:
            what = f"{name(a)!r} and {name(b)!r} both read {keys} and write it back, and may run at the same time"
        else:
            other = b if rmw[0] == a else a
            what = f"{name(rmw[0])!r} reads {keys} and writes it back while {name(other)!r} may write it at once"
        return GraphIssue(
            name(rmw[-1]), "parallel-lost-update",
            f"{what} (parallel fork {witness.fork!r}): an update is lost (the last writer wins; in distributed and "
            "durable runs each node changes its own copy of the context). Change the key atomically: "
            "await ctx.update(key, fn) (declared in updates), or set it through a ContextKey with a merge policy "
            "(merge='append', 'add', 'max', 'union' or a reducer).",
            "error", tuple(lost), witness if rmw[-1] == a else _swap(witness),  # the reported node's path first
        )  # fmt: skip

    def joins_and_reads(self) -> None:
        model, name = self.model, self.model.name
        succ = model.edges
        joins = fan_in(model.root, lambda n: succ.get(n, ()), model.first_arrival.__contains__)
        preds: dict[str, list[str]] = {n: [] for n in self.nodes}
        forward: dict[str, list[str]] = {n: [] for n in self.nodes}  # predecessors along non-back edges
        back = _back_edges(model)
        for n in self.nodes:
            for t in succ.get(n, ()):
                if t in preds:
                    preds[t].append(n)
                    if (n, t) not in back:
                        forward[t].append(n)
        concurrent = {n for pair in self.pairs for n in pair}
        mhp = set(self.pairs)
        direct = {(fork, s) for fork, starts, _ in model.forks for s in starts}
        all_joins: set[str] = set()
        for join in joins.expected:
            if join not in self.index:
                continue
            arrivals = forward[join]
            co = any(frozenset((p, q)) in mhp for i, p in enumerate(arrivals) for q in arrivals[i + 1 :])
            co = co or any(
                (p, join) in direct and any(q != p and (q in concurrent) for q in arrivals) for p in arrivals
            )
            if co:
                all_joins.add(join)
                continue
            if join in model.virtual or not (join in concurrent or any(p in concurrent for p in arrivals)):
                continue
            self.issues.append(
                GraphIssue(
                    name(join), "exclusive-join",
                    f"{name(join)!r} waits for {len(set(arrivals))} predecessors, but at most one of them can reach "
                    "it in a run (they lie on different actions): inside a parallel region it runs only when the "
                    "other branches are done, and never where joins only count arrivals. Merge exclusive "
                    "branches with a conditional join (conditional_node_types), or give each its own node.",
                    "error", (), self._divergence(arrivals),
                )
            )  # fmt: skip
        self._must_written(preds, forward, all_joins | (model.virtual - {model.root}))

    def _divergence(self, arrivals: Sequence[str]) -> Witness:
        parent = _reach_from(self.model, [self.model.root])
        first, second = _path(parent, arrivals[0]), _path(parent, arrivals[1])
        common = 0
        while common < min(len(first), len(second)) and first[common] == second[common]:
            common += 1
        fork = first[max(common - 1, 0)]
        virtual = self.model.virtual
        return Witness(
            self.model.name(fork),
            tuple(self.model.name(n) for n in first[common:] if n not in virtual),
            tuple(self.model.name(n) for n in second[common:] if n not in virtual),
        )

    def _must_written(self, preds: dict[str, list[str]], forward: dict[str, list[str]], unions: set[str]) -> None:
        model, name, effects = self.model, self.model.name, self.model.effects
        written_anywhere = {k for n in self.nodes if (e := effects[n]) is not None for k in e.writes}
        top = frozenset(written_anywhere | self.inputs)
        must_in: dict[str, frozenset[str]] = {n: top for n in self.nodes}
        must_in[model.root] = self.inputs
        changed = True
        while changed:
            changed = False
            for n in self.nodes:
                if n == model.root:
                    continue
                outs = [must_in[p] | _writes(effects[p]) for p in (forward[n] if n in unions else preds[n])]
                if not outs:
                    continue
                new = frozenset().union(*outs) if n in unions else frozenset.intersection(*outs)
                if new != must_in[n]:
                    must_in[n] = new
                    changed = True
        raced = {(i.node_id, k) for i in self.issues if i.type == "parallel-read-write-race" for k in i.keys}
        for n in self.nodes:
            e = effects[n]
            if e is None or n in model.virtual:
                continue
            missing = sorted(k for k in e.reads - must_in[n] - e.writes if k in written_anywhere)
            missing = [k for k in missing if (name(n), k) not in raced]
            if missing:
                self.issues.append(
                    GraphIssue(
                        name(n), "maybe-unset-read",
                        f"{name(n)!r} reads {_keys(missing)}, which not every path to it writes first: it may "
                        "find the key unset. Write it on every path before, or pass it in the initial context "
                        "(inputs=...).",
                        "error", tuple(missing), self._unwritten_path(n, set(missing)),
                    )
                )  # fmt: skip

    def _unwritten_path(self, reader: str, keys: set[str]) -> Witness:
        model = self.model
        effects = model.effects
        parent: dict[str, str | None] = {model.root: None}
        queue = deque([model.root])
        while queue:
            node = queue.popleft()
            if node == reader:
                break
            e = effects[node]
            if node != model.root and e is not None and e.writes & keys:
                continue
            for nxt in model.edges.get(node, ()):
                if nxt not in parent:
                    parent[nxt] = node
                    queue.append(nxt)
        if reader not in parent:
            parent = _reach_from(model, [model.root])
        virtual = model.virtual
        path = tuple(model.name(n) for n in _path(parent, reader) if n not in virtual)
        return Witness(path[0] if path else model.name(reader), path)


def _rmw(effects: Effects, key: str) -> bool:
    """Whether the node reads ``key`` and writes it back not atomically (read-modify-write)."""
    return key in effects.reads and key in effects.writes and key not in effects.merged


def _writes(effects: Effects | None) -> frozenset[str]:
    return effects.writes if effects is not None else frozenset()


def _swap(witness: Witness) -> Witness:
    return Witness(witness.fork, witness.second, witness.first)


def _keys(keys: Sequence[str]) -> str:
    return ", ".join(repr(k) for k in keys)


def _back_edges(model: _Model) -> set[tuple[str, str]]:
    """Edges to a node on the current depth-first path from the root (loops)."""
    back: set[tuple[str, str]] = set()
    on_path = {model.root}
    visited = {model.root}
    stack = [(model.root, iter(model.edges.get(model.root, ())))]
    while stack:
        node, following = stack[-1]
        for nxt in following:
            if nxt in on_path:
                back.add((node, nxt))
            elif nxt not in visited:
                visited.add(nxt)
                on_path.add(nxt)
                stack.append((nxt, iter(model.edges.get(nxt, ()))))
                break
        else:
            stack.pop()
            on_path.discard(node)
    return back


def check_concurrency(
    target: AbstractNode | WorkflowGraph | WorkflowBlueprint | Mapping[str, Any],
    *,
    registry: Mapping[str, Any] | None = None,
    conditional_node_types: Sequence[str] = (),
    inputs: Iterable[str] = (),
) -> list[GraphIssue]:
    """The concurrency issues of a flow, a JSON graph or a compiled blueprint.

    Args:
        target: a flow (or any node: its whole graph, nested flows included), a
            [`WorkflowGraph`][flowcraft.graph.WorkflowGraph] or its dict form (several
            successors on one action are a parallel fork; sub-workflows are not looked
            into — compile to a blueprint for that), or a
            [`WorkflowBlueprint`][flowcraft.graph.WorkflowBlueprint].
        registry: node type → class, for the ``reads``/``writes`` of JSON nodes whose
            data declares none.
        conditional_node_types: for a raw graph, the types whose outgoing edges are
            exclusive (as given to the [`GraphBuilder`][flowcraft.graph.GraphBuilder]).
        inputs: keys the run starts with (never reported as maybe unset).

    Returns:
        Issues of the types in ``CONCURRENCY_ISSUE_TYPES``; ``severity`` is
        ``"warning"`` for ``undeclared-effects`` and ``"error"`` for the others.

    Examples:
        ```python
        class Price(Node):
            reads, writes = ("order",), ("total",)

        class Tax(Node):
            reads, writes = ("order",), ("total",)

        issues = check_concurrency(Flow(ParallelFlow([Price(), Tax()])))
        assert [i.type for i in issues] == ["parallel-write-conflict"]
        ```
    """
    if isinstance(target, AbstractNode):
        model = _from_flow(target)
    elif isinstance(target, WorkflowBlueprint):
        model = _from_json(
            target.nodes, target.edges, [target.start_node_id], compiled=True, registry=registry,
            conditional_types=frozenset(),
        )  # fmt: skip
    else:
        if isinstance(target, Mapping) and "startNodeId" in target:
            return check_concurrency(WorkflowBlueprint.from_dict(target), registry=registry, inputs=inputs)
        graph = WorkflowGraph.coerce(target)
        targets = {edge.target for edge in graph.edges}
        starts = [node.id for node in graph.nodes if node.id not in targets] or [graph.nodes[0].id]
        model = _from_json(
            graph.nodes, graph.edges, starts, compiled=False, registry=registry,
            conditional_types=frozenset(conditional_node_types),
        )  # fmt: skip
    analysis = _Analysis(model, frozenset(inputs))
    analysis.find_pairs()
    analysis.races()
    analysis.joins_and_reads()
    return analysis.issues
