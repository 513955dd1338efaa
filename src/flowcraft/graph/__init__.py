"""Declarative graphs: JSON models, the builder, blueprints and their tooling."""

from .blueprint import BlueprintExecutor
from .builder import BlueprintBuildResult, BuildResult, GraphBuilder, SubWorkflowResolver
from .models import GraphEdge, GraphNode, WorkflowBlueprint, WorkflowGraph
from .registry import create_node_registry

__all__ = [
    "BlueprintBuildResult",
    "BlueprintExecutor",
    "BuildResult",
    "GraphBuilder",
    "GraphEdge",
    "GraphNode",
    "SubWorkflowResolver",
    "WorkflowBlueprint",
    "WorkflowGraph",
    "create_node_registry",
]
