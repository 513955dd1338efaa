"""Node registries: the only way a graph's ``type`` strings become node classes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from ..node import AbstractNode
from .internal_nodes import INTERNAL_NODE_TYPES

__all__ = ["NodeFactory", "NodeRegistry", "create_node_registry"]

NodeFactory: TypeAlias = Callable[..., AbstractNode]
"""A node class or factory, called as ``factory(data={...}, **dependencies)``."""

NodeRegistry: TypeAlias = Mapping[str, NodeFactory]
"""Maps a graph node ``type`` to its [`NodeFactory`][flowcraft.graph.NodeFactory]."""


def create_node_registry(
    mapping: Mapping[str, NodeFactory] | None = None, /, **more: NodeFactory
) -> dict[str, NodeFactory]:
    """A registry of ``mapping`` (and keyword entries) plus the internal node types.

    Entries given here win over the internal ones, so a structural node can be replaced.

    Examples:
        ```python
        registry = create_node_registry({"fetch": FetchNode, "summarize": SummarizeNode})
        ```
    """
    registry: dict[str, NodeFactory] = dict(INTERNAL_NODE_TYPES)
    for source in (mapping or {}, more):
        for key, factory in source.items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"node registry keys must be non-empty strings, got {key!r}")
            if not callable(factory):
                raise TypeError(f"node registry entry {key!r} must be a node class or factory, got {factory!r}")
            registry[key] = factory
    return registry


def ensure_registry(registry: Mapping[str, Any]) -> dict[str, NodeFactory]:
    """``registry`` with the internal types added (a plain mapping is accepted)."""
    if all(key in registry for key in INTERNAL_NODE_TYPES):
        return dict(registry)
    return create_node_registry(registry)
