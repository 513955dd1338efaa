"""Declarative graphs: JSON models, the builder, blueprints and their tooling."""

from .analysis import (
    AnalyzedNode,
    GraphAnalysis,
    GraphIssue,
    GraphValidator,
    Witness,
    analyze_graph,
    check_default_action_strings,
    check_for_cycles,
    create_node_rule,
    is_node_type,
    validate_flow,
    validate_graph,
)
from .blueprint import BlueprintExecutor, BlueprintFlow
from .builder import BlueprintBuildResult, BuildResult, GraphBuilder, SubWorkflowResolver, sanitize_id
from .concurrency import CONCURRENCY_ISSUE_TYPES, Effects, check_concurrency, declared_effects
from .internal_nodes import (
    ConditionalJoinNode,
    InputMappingNode,
    OutputMappingNode,
    ParallelBranchContainer,
    SubWorkflowContainerNode,
)
from .mermaid import generate_mermaid
from .models import GraphEdge, GraphNode, WorkflowBlueprint, WorkflowGraph
from .registry import NodeFactory, NodeRegistry, create_node_registry
from .sanitize import sanitize_graph

__all__ = [
    "CONCURRENCY_ISSUE_TYPES",
    "AnalyzedNode",
    "BlueprintBuildResult",
    "BlueprintExecutor",
    "BlueprintFlow",
    "BuildResult",
    "ConditionalJoinNode",
    "Effects",
    "GraphAnalysis",
    "GraphBuilder",
    "GraphEdge",
    "GraphIssue",
    "GraphNode",
    "GraphValidator",
    "InputMappingNode",
    "NodeFactory",
    "NodeRegistry",
    "OutputMappingNode",
    "ParallelBranchContainer",
    "SubWorkflowContainerNode",
    "SubWorkflowResolver",
    "WorkflowBlueprint",
    "Witness",
    "WorkflowGraph",
    "analyze_graph",
    "check_concurrency",
    "check_default_action_strings",
    "check_for_cycles",
    "create_node_registry",
    "create_node_rule",
    "declared_effects",
    "generate_mermaid",
    "is_node_type",
    "sanitize_graph",
    "sanitize_id",
    "validate_flow",
    "validate_graph",
]
