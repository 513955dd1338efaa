"""The declarative formats: [`WorkflowGraph`][flowcraft.graph.WorkflowGraph] (what people write) and
[`WorkflowBlueprint`][flowcraft.graph.WorkflowBlueprint] (what the builder compiles it to).

Both read and write Flowcraft's camelCase JSON, so files are interchangeable with
Flowcraft TS. ``from_dict`` checks the *shape* of the input and raises
[`InvalidGraphError`][flowcraft.InvalidGraphError] with a ``path`` such as ``nodes[3].id``;
references between nodes (unknown types, dangling edges, duplicate ids) are checked by
the builder and by [`BlueprintExecutor`][flowcraft.graph.BlueprintExecutor].

Fields this library does not interpret (a visual editor's ``position`` or ``label``, an
explicit ``"action": ""`` or ``"config": null``...) are kept in ``extra`` and written back
by ``to_dict`` in the order they were read, so a file round-trips unchanged and the
builder carries them into the blueprint, as Flowcraft TS does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidGraphError

__all__ = ["GraphEdge", "GraphNode", "WorkflowBlueprint", "WorkflowGraph"]

_CONFIG_KEYS = ("maxRetries", "wait", "timeout", "retryDelay", "backoff", "maxWait", "jitter", "retryOn")
_NODE_KEYS = frozenset({"id", "type", "data", "config"})
_EDGE_KEYS = frozenset({"source", "target", "action", "id"})


class _NoExtra(Mapping[str, Any]):
    """The empty, read-only ``extra`` shared by every node and edge that has none."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "{}"

    def __reduce__(self) -> str:
        return "_NO_EXTRA"  # pickled and copied as this module's one instance


_NO_EXTRA: Mapping[str, Any] = _NoExtra()
# Key orders that to_dict() writes by itself (so no key order needs to be kept).
_PLAIN_NODE_KEYS = ("id", "type", "data")
_NO_DATA_KEYS = ("id", "type")  # read without "data": to_dict leaves an empty one out


class _Extra(dict[str, Any]):
    """``extra`` fields plus the key order they were read in (one slot on the node, so
    building large graphs stays fast); compares as the plain dict of the fields."""

    __slots__ = ("order",)

    def __init__(self, fields: Mapping[str, Any] | tuple[()], order: tuple[str, ...]) -> None:
        super().__init__(fields)
        self.order = order


_NO_DATA = _Extra((), _NO_DATA_KEYS)


def _with_extra(out: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``out`` plus the ``extra`` fields, in the order they were read; keys that were not
    read (e.g. ``data`` added by the builder) follow, as Flowcraft TS writes them."""
    for key, value in extra.items():
        if key not in out:  # a field the model writes itself wins over a raw copy of it
            out[key] = value
    if type(extra) is not _Extra:
        return out
    ordered = {key: out[key] for key in extra.order if key in out}
    if len(ordered) < len(out):
        ordered.update((key, value) for key, value in out.items() if key not in ordered)
    return ordered


def _fail(path: str, expected: str, got: Any) -> InvalidGraphError:
    shown = repr(got)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return InvalidGraphError(f"{path}: expected {expected}, got {type(got).__name__} {shown}", path=path)


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, "an object", value)
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(path, "a non-empty string", value)
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _fail(path, "a list", value)
    return list(value)


def _check_config(config: Mapping[str, Any], path: str) -> None:
    for key, value in config.items():
        where = f"{path}.{key}"
        if key not in _CONFIG_KEYS:
            raise InvalidGraphError(
                f"{where}: unknown config key {key!r}; allowed keys are {', '.join(_CONFIG_KEYS)}", path=where
            )
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if key == "maxRetries" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise _fail(where, "an integer >= 1 (total attempts)", value)
        if key == "wait" and (not number or value < 0):
            raise _fail(where, "a number of milliseconds >= 0", value)
        if key == "timeout" and value is not None and (not number or value <= 0):
            raise _fail(where, "a number of milliseconds > 0 or null", value)
        if key in ("retryDelay", "maxWait") and (not number or value < 0):
            raise _fail(where, "a number of milliseconds >= 0", value)
        if key == "backoff" and (not number or value < 1):
            raise _fail(where, "a number >= 1", value)
        if key == "jitter" and (not number or not 0 <= value <= 1):
            raise _fail(where, "a number in [0, 1]", value)
        if key == "retryOn" and not (
            isinstance(value, list) and value and all(isinstance(name, str) and name for name in value)
        ):
            raise _fail(where, 'a non-empty list of exception names ("TimeoutError", "package.module.Error")', value)
    if "wait" in config and "retryDelay" in config:
        raise InvalidGraphError(
            f"{path}: give retryDelay or wait (the same delay), not both", path=f"{path}.retryDelay"
        )


@dataclass(frozen=True, slots=True)
class GraphNode:
    """One node of a graph or blueprint: ``id``, registry ``type``, ``data`` and ``config``.

    ``config`` uses Flowcraft's JSON names and units: ``maxRetries``, ``wait`` and
    ``timeout`` in milliseconds, and the retry policy's ``retryDelay`` (= ``wait``),
    ``backoff``, ``maxWait`` (ms), ``jitter`` and ``retryOn`` (exception names).
    Treat ``data`` as read-only.

    ``extra`` holds the fields of the JSON node that this library does not interpret
    (``position``, ``label``, an explicit ``"config": null``...): the builder carries them
    into the blueprint unchanged and ``to_dict`` writes them back, in the order the keys
    were read ([`key_order`][flowcraft.graph.GraphNode.key_order]). A ``data`` that was not read
    and is still empty is left
    out, so files round-trip unchanged. Treat ``extra`` as read-only too.
    """

    id: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: _NO_EXTRA)

    # Hand-written so building large blueprints stays fast: a frozen dataclass's own
    # __init__ goes through object.__setattr__, twice as slow as the slot setters.
    def __init__(
        self,
        id: str,  # noqa: A002
        type: str,  # noqa: A002
        data: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        key_order: tuple[str, ...] | None = None,
    ) -> None:
        _NODE_SET_ID(self, id)
        _NODE_SET_TYPE(self, type)
        _NODE_SET_DATA(self, {} if data is None else data)
        _NODE_SET_CONFIG(self, config)
        if key_order is None:
            _NODE_SET_EXTRA(self, _NO_EXTRA if extra is None else extra)
        else:
            _NODE_SET_EXTRA(self, _Extra(extra or (), tuple(key_order)))

    @property
    def key_order(self) -> tuple[str, ...] | None:
        """The order of the keys as read (``None``: ``id, type, data, config``, then ``extra``)."""
        extra = self.extra
        return extra.order if type(extra) is _Extra else None

    @classmethod
    def from_dict(cls, raw: Any, path: str = "node") -> GraphNode:
        """Parse ``{"id", "type", "data"?, "config"?, ...}``; ``path`` prefixes error
        locations. Other fields are kept in ``extra``."""
        obj = _mapping(raw, path)
        node_id = _string(obj.get("id"), f"{path}.id")
        node_type = _string(obj.get("type"), f"{path}.type")
        data = obj.get("data")
        data = {} if data is None else dict(_mapping(data, f"{path}.data"))
        config = obj.get("config")
        if config is not None:
            config = dict(_mapping(config, f"{path}.config"))
            _check_config(config, f"{path}.config")
        keys = tuple(obj)
        if keys == _PLAIN_NODE_KEYS or (keys == ("id", "type", "data", "config") and config is not None):
            return cls(node_id, node_type, data, config)
        if keys == _NO_DATA_KEYS:
            return cls(node_id, node_type, data, None, _NO_DATA)
        # "config": null is kept as written (Flowcraft TS keeps it); it means no config.
        extra = {key: value for key, value in obj.items() if key not in _NODE_KEYS or key == "config"}
        if config is not None:
            del extra["config"]
        node = cls(node_id, node_type, data, config, extra)
        return node if tuple(node.to_dict()) == keys else cls(node_id, node_type, data, config, extra, keys)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``config`` only when set), with ``extra`` and in the order read."""
        extra = self.extra
        if type(extra) is _Extra:
            out: dict[str, Any] = {"id": self.id, "type": self.type}
            if self.data or "data" in extra.order:
                out["data"] = self.data
            if self.config is not None:
                out["config"] = self.config
            return out if extra is _NO_DATA else _with_extra(out, extra)
        out = {"id": self.id, "type": self.type, "data": self.data}
        if self.config is not None:
            out["config"] = self.config
        return _with_extra(out, extra) if extra else out


@dataclass(frozen=True, slots=True)
class GraphEdge:
    """A directed edge; ``action=None`` means ``DEFAULT_ACTION``.

    The literal string ``"default"`` is an ordinary action, not ``DEFAULT_ACTION`` (the
    builder warns about it). An empty-string action is read as no action, as in
    Flowcraft TS. ``id`` is optional (UI editors add one).

    ``extra`` holds the fields this library does not interpret (``label``, an explicit
    ``"action": ""`` or ``null``...), carried into the blueprint and written back by
    ``to_dict`` in the order read ([`key_order`][flowcraft.graph.GraphEdge.key_order]), as for
    [`GraphNode`][flowcraft.graph.GraphNode].
    """

    source: str
    target: str
    action: str | None = None
    id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: _NO_EXTRA, hash=False)

    def __init__(
        self,
        source: str,
        target: str,
        action: str | None = None,
        id: str | None = None,  # noqa: A002
        extra: Mapping[str, Any] | None = None,
        key_order: tuple[str, ...] | None = None,
    ) -> None:
        _EDGE_SET_SOURCE(self, source)
        _EDGE_SET_TARGET(self, target)
        _EDGE_SET_ACTION(self, action)
        _EDGE_SET_ID(self, id)
        if key_order is None:
            _EDGE_SET_EXTRA(self, _NO_EXTRA if extra is None else extra)
        else:
            _EDGE_SET_EXTRA(self, _Extra(extra or (), tuple(key_order)))

    @property
    def key_order(self) -> tuple[str, ...] | None:
        """The order of the keys as read (``None``: ``source, target, action, id``, then ``extra``)."""
        extra = self.extra
        return extra.order if type(extra) is _Extra else None

    @classmethod
    def from_dict(cls, raw: Any, path: str = "edge") -> GraphEdge:
        """Parse ``{"source", "target", "action"?, "id"?, ...}``; other fields are kept in
        ``extra``."""
        obj = _mapping(raw, path)
        source = _string(obj.get("source"), f"{path}.source")
        target = _string(obj.get("target"), f"{path}.target")
        action = obj.get("action")
        if action is not None and not isinstance(action, str):
            raise _fail(f"{path}.action", "a string (omit it for the default action)", action)
        edge_id = obj.get("id")
        if edge_id is not None and not isinstance(edge_id, str):
            raise _fail(f"{path}.id", "a string", edge_id)
        edge = cls(source, target, action or None, edge_id)
        keys = tuple(obj)
        if keys == tuple(edge.to_dict()):
            return edge
        # An explicit "action": "" / null or "id": null is kept as written (they mean no
        # action / no id), as are fields this library does not interpret.
        extra = {key: value for key, value in obj.items() if key not in _EDGE_KEYS or value is None or value == ""}
        edge = cls(source, target, action or None, edge_id, extra)
        return edge if keys == tuple(edge.to_dict()) else cls(source, target, action or None, edge_id, extra, keys)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``action`` and ``id`` only when set), with ``extra`` and in the
        order read."""
        out: dict[str, Any] = {"source": self.source, "target": self.target}
        if self.action is not None:
            out["action"] = self.action
        if self.id is not None:
            out["id"] = self.id
        extra = self.extra
        return _with_extra(out, extra) if extra or type(extra) is _Extra else out

    def with_ends(self, source: str, target: str) -> GraphEdge:
        """The same edge (action, id, ``extra``) between other nodes."""
        return GraphEdge(source, target, self.action, self.id, self.extra)


class _NodeLayout:
    """The slots of [`GraphNode`][flowcraft.graph.GraphNode], without its frozen ``__setattr__``:
    ``_node`` fills one with plain slot stores and then makes it a ``GraphNode``."""

    __slots__ = GraphNode.__slots__
    id: str
    type: str
    data: dict[str, Any]
    config: dict[str, Any] | None
    extra: Mapping[str, Any]


class _EdgeLayout:
    """The slots of [`GraphEdge`][flowcraft.graph.GraphEdge], for ``_edge``."""

    __slots__ = GraphEdge.__slots__
    source: str
    target: str
    action: str | None
    id: str | None
    extra: Mapping[str, Any]


_new = object.__new__


def _node(
    node_id: str,
    node_type: str,
    data: dict[str, Any],
    config: dict[str, Any] | None = None,
    extra: Mapping[str, Any] = _NO_EXTRA,
) -> GraphNode:
    """A ``GraphNode`` built about twice as fast as through its constructor (the builder
    makes several per node of a graph); the arguments are taken as they are."""
    node = _new(_NodeLayout)
    node.id = node_id
    node.type = node_type
    node.data = data
    node.config = config
    node.extra = extra
    node.__class__ = GraphNode  # type: ignore[assignment]
    return node  # type: ignore[return-value]


def _edge(
    source: str,
    target: str,
    action: str | None = None,
    edge_id: str | None = None,
    extra: Mapping[str, Any] = _NO_EXTRA,
) -> GraphEdge:
    """A ``GraphEdge`` built as ``_node`` builds nodes."""
    edge = _new(_EdgeLayout)
    edge.source = source
    edge.target = target
    edge.action = action
    edge.id = edge_id
    edge.extra = extra
    edge.__class__ = GraphEdge  # type: ignore[assignment]
    return edge  # type: ignore[return-value]


_NODE_SET_ID, _NODE_SET_TYPE, _NODE_SET_DATA, _NODE_SET_CONFIG, _NODE_SET_EXTRA = (
    GraphNode.__dict__[name].__set__ for name in ("id", "type", "data", "config", "extra")
)
_EDGE_SET_SOURCE, _EDGE_SET_TARGET, _EDGE_SET_ACTION, _EDGE_SET_ID, _EDGE_SET_EXTRA = (
    GraphEdge.__dict__[name].__set__ for name in ("source", "target", "action", "id", "extra")
)


def _nodes_and_edges(
    obj: Mapping[str, Any], *, edges_required: bool
) -> tuple[tuple[GraphNode, ...], tuple[GraphEdge, ...]]:
    if "nodes" not in obj:
        raise InvalidGraphError("nodes: missing; a graph needs a list of nodes", path="nodes")
    raw_nodes = _list(obj["nodes"], "nodes")
    if "edges" not in obj and edges_required:
        raise InvalidGraphError("edges: missing; a blueprint needs a list of edges", path="edges")
    raw_edges = _list(obj.get("edges", []), "edges")
    nodes: list[GraphNode] = []
    for i, raw in enumerate(raw_nodes):
        # Fast path for the common, well-formed shapes (id, type and maybe data, in that
        # order); anything else gets the full check.
        if type(raw) is dict:
            node_id, node_type = raw.get("id"), raw.get("type")
            if type(node_id) is str and node_id and type(node_type) is str and node_type:
                size = len(raw)
                if size == 2:
                    if next(iter(raw)) == "id":
                        nodes.append(_node(node_id, node_type, {}, None, _NO_DATA))
                        continue
                elif size == 3:
                    data = raw.get("data")
                    if type(data) is dict and tuple(raw) == _PLAIN_NODE_KEYS:
                        nodes.append(_node(node_id, node_type, dict(data)))
                        continue
        nodes.append(GraphNode.from_dict(raw, f"nodes[{i}]"))
    edges: list[GraphEdge] = []
    for i, raw in enumerate(raw_edges):
        if type(raw) is dict and len(raw) == 2:
            source, target = raw.get("source"), raw.get("target")
            if type(source) is str and source and type(target) is str and target and next(iter(raw)) == "source":
                edges.append(_edge(source, target))
                continue
        edges.append(GraphEdge.from_dict(raw, f"edges[{i}]"))
    return tuple(nodes), tuple(edges)


def _dumps(value: Any, indent: int | None) -> str:
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(value, ensure_ascii=False, indent=indent, separators=separators)


def _load_json(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidGraphError(f"not valid JSON: {error}", path="$") from error


@dataclass(frozen=True, slots=True)
class WorkflowGraph:
    """A declarative workflow: ``nodes`` and ``edges`` (Flowcraft's JSON graph format).

    Examples:
        ```python
        graph = WorkflowGraph.from_dict({
            "nodes": [{"id": "load", "type": "load"}, {"id": "save", "type": "save"}],
            "edges": [{"source": "load", "target": "save"}],
        })
        ```
    """

    nodes: tuple[GraphNode, ...] = ()
    edges: tuple[GraphEdge, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=lambda: _NO_EXTRA, hash=False)
    """Top-level fields other than ``nodes`` and ``edges`` (an editor's ``viewport``...),
    written back by ``to_dict``; not part of the blueprint (as in Flowcraft TS)."""

    @classmethod
    def from_dict(cls, raw: Any) -> WorkflowGraph:
        """Parse the JSON form; ``edges`` may be omitted.

        Raises:
            InvalidGraphError: the input is not shaped like a graph (``path`` says where).
        """
        obj = _mapping(raw, "graph")
        nodes, edges = _nodes_and_edges(obj, edges_required=False)
        if len(obj) > 2 or any(key not in ("nodes", "edges") for key in obj):
            return cls(nodes, edges, {key: value for key, value in obj.items() if key not in ("nodes", "edges")})
        return cls(nodes, edges)

    @classmethod
    def coerce(cls, graph: WorkflowGraph | Mapping[str, Any]) -> WorkflowGraph:
        """``graph`` itself, or parsed from its dict form."""
        return graph if isinstance(graph, WorkflowGraph) else cls.from_dict(graph)

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkflowGraph:
        """Parse a JSON document."""
        return cls.from_dict(_load_json(text))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``extra`` after ``nodes`` and ``edges``)."""
        out = {"nodes": [n.to_dict() for n in self.nodes], "edges": [e.to_dict() for e in self.edges]}
        return _with_extra(out, self.extra) if self.extra else out

    def to_json(self, *, indent: int | None = None) -> str:
        """A JSON document (non-ASCII ids kept as they are); without ``indent``, the same
        text as JavaScript's ``JSON.stringify`` (no spaces)."""
        return _dumps(self.to_dict(), indent)


@dataclass(frozen=True, slots=True)
class WorkflowBlueprint:
    """A compiled, flattened graph that any executor can run.

    Sub-workflows are inlined, parallel containers and conditional joins inserted.
    ``predecessor_count_map`` gives every node's number of distinct direct predecessors;
    ``original_predecessor_id_map`` maps a node to the user-defined nodes that produce
    its input (absent when there are none).
    """

    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    start_node_id: str
    predecessor_count_map: dict[str, int]
    original_predecessor_id_map: dict[str, list[str]]

    @classmethod
    def from_dict(cls, raw: Any) -> WorkflowBlueprint:
        """Parse the JSON form (shape only;
        [`BlueprintExecutor`][flowcraft.graph.BlueprintExecutor] checks references).

        Raises:
            InvalidGraphError: the input is not shaped like a blueprint.
        """
        obj = _mapping(raw, "blueprint")
        nodes, edges = _nodes_and_edges(obj, edges_required=True)
        start = _string(obj.get("startNodeId"), "startNodeId")
        counts: dict[str, int] = {}
        for key, value in _mapping(obj.get("predecessorCountMap"), "predecessorCountMap").items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise _fail(f"predecessorCountMap.{key}", "an integer >= 0", value)
            counts[key] = value
        producers: dict[str, list[str]] = {}
        raw_producers = obj.get("originalPredecessorIdMap", {})
        for key, value in _mapping(raw_producers, "originalPredecessorIdMap").items():
            ids = _list(value, f"originalPredecessorIdMap.{key}")
            for i, item in enumerate(ids):
                _string(item, f"originalPredecessorIdMap.{key}[{i}]")
            producers[key] = ids
        return cls(nodes, edges, start, counts, producers)

    @classmethod
    def coerce(cls, blueprint: WorkflowBlueprint | Mapping[str, Any]) -> WorkflowBlueprint:
        """``blueprint`` itself, or parsed from its dict form."""
        return blueprint if isinstance(blueprint, WorkflowBlueprint) else cls.from_dict(blueprint)

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkflowBlueprint:
        """Parse a JSON document."""
        return cls.from_dict(_load_json(text))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, in Flowcraft's camelCase."""
        return {
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
            "startNodeId": self.start_node_id,
            "predecessorCountMap": dict(self.predecessor_count_map),
            "originalPredecessorIdMap": {k: list(v) for k, v in self.original_predecessor_id_map.items()},
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """A JSON document (non-ASCII ids kept as they are); without ``indent``, the same
        text as JavaScript's ``JSON.stringify`` (no spaces)."""
        return _dumps(self.to_dict(), indent)
