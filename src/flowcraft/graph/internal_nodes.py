"""The structural node types the builder inserts into blueprints.

Their type names are Flowcraft's, so blueprints are interchangeable with Flowcraft TS:

- ``__internal_input_mapper__`` ([`InputMappingNode`][flowcraft.graph.InputMappingNode]) copies parent context keys
  into the keys a sub-workflow reads, before its start nodes.
- ``__internal_output_mapper__`` ([`OutputMappingNode`][flowcraft.graph.OutputMappingNode]) copies a sub-workflow's
  results back to parent keys after its terminal nodes, and returns the action the
  sub-workflow ended with (so ``sub -"approved"-> ok`` works).
- ``__internal_sub_workflow_container__``
  ([`SubWorkflowContainerNode`][flowcraft.graph.SubWorkflowContainerNode]) marks where
  a sub-workflow was inlined; passed through.
- ``__internal_conditional_join__`` ([`ConditionalJoinNode`][flowcraft.graph.ConditionalJoinNode]) joins the exclusive
  branches of a conditional node; fires on the first arrival and hands over to the
  convergence node with the default action, whatever action it was reached by.
- ``__internal_parallel_container__``
  ([`ParallelBranchContainer`][flowcraft.graph.ParallelBranchContainer]) runs several
  successors of one action as concurrent branches (with correct fan-in).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from ..actions import DEFAULT_ACTION
from ..errors import GraphError
from ..node import Node, NodeArgs
from ..patterns import ParallelFlow

__all__ = [
    "CONDITIONAL_JOIN_TYPE",
    "INPUT_MAPPER_TYPE",
    "INTERNAL_NODE_TYPES",
    "OUTPUT_MAPPER_TYPE",
    "PARALLEL_CONTAINER_TYPE",
    "SUB_WORKFLOW_CONTAINER_TYPE",
    "ConditionalJoinNode",
    "InputMappingNode",
    "OutputMappingNode",
    "ParallelBranchContainer",
    "SubWorkflowContainerNode",
]

INPUT_MAPPER_TYPE: Final = "__internal_input_mapper__"
OUTPUT_MAPPER_TYPE: Final = "__internal_output_mapper__"
SUB_WORKFLOW_CONTAINER_TYPE: Final = "__internal_sub_workflow_container__"
CONDITIONAL_JOIN_TYPE: Final = "__internal_conditional_join__"
PARALLEL_CONTAINER_TYPE: Final = "__internal_parallel_container__"

_BOOKKEEPING_KEYS = frozenset({"nodeId", "originalId", "isSubWorkflow"})


def _mappings(data: Mapping[str, Any] | None, kind: str) -> dict[str, str]:
    data = data or {}
    mappings: dict[str, str] = {}
    for key, value in data.items():
        if key in _BOOKKEEPING_KEYS:
            continue
        if not isinstance(value, str):
            raise GraphError(
                f"{kind} {data.get('nodeId', '?')!r}: mapping {key!r} must name a context key (a string), "
                f"got {type(value).__name__} {value!r}",
                node_id=data.get("nodeId"),
            )
        mappings[key] = value
    return mappings


class _Forwarding(Node[Any, Any, Any]):
    """A structural node whose action is the action it was reached with."""

    is_structural: ClassVar[bool] = True

    def post(self, args: NodeArgs[Any, Any]) -> Any:
        """The incoming action (``DEFAULT_ACTION`` at a start)."""
        return DEFAULT_ACTION if args.incoming_action is None else args.incoming_action


async def _copy_keys(
    node: Node[Any, Any, Any], args: NodeArgs[Any, Any], mappings: Mapping[str, str], label: str
) -> None:
    """``ctx[target] = ctx[source]`` for each ``target → source``; a missing source is logged and skipped."""
    ctx = args.ctx
    for target, source in mappings.items():
        if await ctx.has(source):
            await ctx.set(target, await ctx.get(source))
        else:
            args.logger.warn(
                f"[{label}] {node.id}: key {source!r} not found in the context; {target!r} not set", node=node.id
            )


class InputMappingNode(Node[Any, Any, Any]):
    """Copies ``inputs`` (``sub_key → parent_key``) before a sub-workflow starts.

    A parent key missing from the context is reported through the logger and skipped
    (as in Flowcraft TS).
    """

    is_structural: ClassVar[bool] = True

    def __init__(self, data: Mapping[str, Any] | None = None, **_dependencies: Any) -> None:
        super().__init__()
        self.mappings = _mappings(data, "Input mapper")

    async def prep(self, args: NodeArgs[Any, Any]) -> None:
        """Copy each parent key to its sub-workflow key."""
        await _copy_keys(self, args, self.mappings, "InputMapper")


class OutputMappingNode(_Forwarding):
    """Copies ``outputs`` (``parent_key → sub_key``) after a sub-workflow ends, and
    returns the action the sub-workflow ended with."""

    def __init__(self, data: Mapping[str, Any] | None = None, **_dependencies: Any) -> None:
        super().__init__()
        self.mappings = _mappings(data, "Output mapper")

    async def prep(self, args: NodeArgs[Any, Any]) -> None:
        """Copy each sub-workflow key to its parent key."""
        await _copy_keys(self, args, self.mappings, "OutputMapper")


class SubWorkflowContainerNode(Node[Any, Any, Any]):
    """Marks an inlined sub-workflow; does nothing (passed through)."""

    is_passthrough: ClassVar[bool] = True
    is_structural: ClassVar[bool] = True

    def __init__(self, data: Mapping[str, Any] | None = None, **_dependencies: Any) -> None:
        super().__init__()


class ConditionalJoinNode(Node[Any, Any, Any]):
    """Where the exclusive branches of a conditional node meet: fires on first arrival.

    Its action is always ``DEFAULT_ACTION`` (its one edge, to the convergence node, is a
    default edge), whichever action a branch reached it by (``check -"no"-> join``).
    """

    is_passthrough: ClassVar[bool] = True
    fires_on_first_arrival: ClassVar[bool] = True

    def __init__(self, data: Mapping[str, Any] | None = None, **_dependencies: Any) -> None:
        super().__init__()


class ParallelBranchContainer(ParallelFlow):
    """Runs the successors of one action group as concurrent branches.

    The blueprint executor puts the branches in ``nodes_to_run`` and leaves
    ``successors`` empty: the branches walk on by themselves (joins wait for all their
    predecessors). Its action is the action the last branch walk ended with, so a
    flow's result is its graph's last action.
    """

    is_passthrough: ClassVar[bool] = True
    is_structural: ClassVar[bool] = True

    def __init__(self, data: Mapping[str, Any] | None = None, **_dependencies: Any) -> None:
        super().__init__()

    def post(self, args: NodeArgs[Any, Any]) -> Any:
        """The final action of the last branch walk that ended (default when none did)."""
        results = args.exec_res
        return results[-1] if results else DEFAULT_ACTION


INTERNAL_NODE_TYPES: Final[Mapping[str, type[Node[Any, Any, Any]]]] = {
    INPUT_MAPPER_TYPE: InputMappingNode,
    OUTPUT_MAPPER_TYPE: OutputMappingNode,
    SUB_WORKFLOW_CONTAINER_TYPE: SubWorkflowContainerNode,
    CONDITIONAL_JOIN_TYPE: ConditionalJoinNode,
    PARALLEL_CONTAINER_TYPE: ParallelBranchContainer,
}
"""The internal type names and the classes
[`create_node_registry`][flowcraft.graph.create_node_registry] adds for them."""
