"""What the distributed engine needs to know about a blueprint: its content hash, its
start job, and which successors a finished node hands on to (with their fan-in counts)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from ..graph.internal_nodes import CONDITIONAL_JOIN_TYPE
from ..graph.models import WorkflowBlueprint

__all__ = ["RunPlan", "blueprint_hash", "canonical_json"]


def canonical_json(blueprint: WorkflowBlueprint) -> str:
    """The blueprint's JSON with sorted keys: the same graph always gives the same text."""
    return json.dumps(blueprint.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def blueprint_hash(text: str) -> str:
    """The content address of a blueprint's canonical JSON (SHA-256, hex)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RunPlan:
    """Fan-in facts of a blueprint: where runs start and how many arrivals fire a node.

    A node fires after its predecessor count of distinct arrivals, a conditional join
    on the first one. (Which successor a node hands on to is read from the hydrated
    nodes, so it is exactly what the in-memory executor does.)
    """

    __slots__ = ("blueprint", "counts", "types")

    def __init__(self, blueprint: WorkflowBlueprint) -> None:
        self.blueprint = blueprint
        self.types: dict[str, str] = {node.id: node.type for node in blueprint.nodes}
        self.counts: Mapping[str, int] = blueprint.predecessor_count_map

    @property
    def start_node_id(self) -> str:
        """Where every run starts."""
        return self.blueprint.start_node_id

    def fire_count(self, node_id: str) -> int:
        """How many distinct predecessors must arrive before ``node_id`` runs."""
        if self.types.get(node_id) == CONDITIONAL_JOIN_TYPE:
            return 1
        return self.counts.get(node_id, 0)
