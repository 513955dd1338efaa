"""Flowcraft: asyncio-native, typed workflows — run the same graph in memory, as a dry
run, or across worker processes."""

import importlib
from typing import TYPE_CHECKING, Any

from .abort import AbortController, AbortSignal, sleep
from .actions import DEFAULT_ACTION, FILTER_FAILED
from .budget import Budget
from .context import (
    Context,
    ContextKey,
    ContextLens,
    ContextTransform,
    TypedContext,
    compose_context,
    context_key,
    lens,
)
from .errors import (
    AbortError,
    BudgetExceededError,
    DanglingEdgeError,
    DuplicateNodeIdError,
    DurabilityNotSupportedError,
    EmptyFlowError,
    EventLoopRunningError,
    FatalWorkflowError,
    FlowcraftError,
    GraphError,
    InvalidGraphError,
    MissingSubWorkflowError,
    NodeTimeoutError,
    NoStartNodeError,
    RunTimeoutError,
    UnknownNodeTypeError,
    WorkflowError,
)
from .executors import (
    BatchOutcome,
    DryRunExecutor,
    Executor,
    FlowRunner,
    InMemoryExecutor,
    RunOptions,
    WalkScope,
)
from .flow import Flow
from .functional import (
    compose,
    context_node,
    filter_collection,
    map_collection,
    map_node,
    pipeline,
    reduce_collection,
    transform_node,
)
from .loggers import ConsoleLogger, Logger, NullLogger, StdlibLogger
from .middleware import Middleware, NextFn, apply_middleware
from .node import AbstractNode, ExecNode, Node, NodeArgs, PostNode, PreNode
from .patterns import BatchFlow, ParallelBatchFlow, ParallelFlow, SequenceFlow
from .retry import RetryPolicy
from .waits import (
    InvalidResumeValue,
    RunSuspended,
    SleepNode,
    UnknownWaitError,
    Wait,
    WaitAlreadyResolved,
    WaitNode,
)

if TYPE_CHECKING:
    from .engine.client import RunOutcome
    from .engine.errors import (
        RunBlockedError,
        RunConflictError,
        RunNotFoundError,
        StoreError,
    )
    from .events import (
        BudgetExceeded,
        ContextChanged,
        EventListener,
        EventStream,
        FallbackUsed,
        NodeEvent,
        NodeFailed,
        NodeFinished,
        NodeSkipped,
        NodeStarted,
        RetryAttempt,
        RunCancelled,
        RunEvent,
        RunFailed,
        RunFinished,
        RunStarted,
    )
    from .graph import (
        BlueprintBuildResult,
        BlueprintExecutor,
        BuildResult,
        GraphAnalysis,
        GraphBuilder,
        GraphEdge,
        GraphIssue,
        GraphNode,
        SubWorkflowResolver,
        WorkflowBlueprint,
        WorkflowGraph,
        analyze_graph,
        check_for_cycles,
        create_node_registry,
        create_node_rule,
        generate_mermaid,
        sanitize_graph,
    )

__version__ = "0.1.0"

# Run events and the declarative-graph package load on first use, keeping
# `import flowcraft` cheap (see the import-time benchmark).
_LAZY: dict[str, str] = {
    "BudgetExceeded": "events",
    "ContextChanged": "events",
    "EventListener": "events",
    "EventStream": "events",
    "FallbackUsed": "events",
    "NodeEvent": "events",
    "NodeFailed": "events",
    "NodeFinished": "events",
    "NodeSkipped": "events",
    "NodeStarted": "events",
    "RetryAttempt": "events",
    "RunCancelled": "events",
    "RunEvent": "events",
    "RunFailed": "events",
    "RunFinished": "events",
    "RunStarted": "events",
    "BlueprintBuildResult": "graph",
    "BlueprintExecutor": "graph",
    "BuildResult": "graph",
    "GraphAnalysis": "graph",
    "GraphBuilder": "graph",
    "GraphEdge": "graph",
    "GraphIssue": "graph",
    "GraphNode": "graph",
    "SubWorkflowResolver": "graph",
    "WorkflowBlueprint": "graph",
    "WorkflowGraph": "graph",
    "analyze_graph": "graph",
    "check_for_cycles": "graph",
    "create_node_registry": "graph",
    "create_node_rule": "graph",
    "generate_mermaid": "graph",
    "sanitize_graph": "graph",
    "RunBlockedError": "engine.errors",
    "RunConflictError": "engine.errors",
    "RunNotFoundError": "engine.errors",
    "StoreError": "engine.errors",
    "RunOutcome": "engine.client",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flowcraft' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"flowcraft.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DEFAULT_ACTION",
    "FILTER_FAILED",
    "__version__",
    "AbortController",
    "AbortError",
    "AbortSignal",
    "AbstractNode",
    "BatchFlow",
    "BatchOutcome",
    "BlueprintBuildResult",
    "BlueprintExecutor",
    "Budget",
    "BudgetExceeded",
    "BudgetExceededError",
    "BuildResult",
    "ConsoleLogger",
    "Context",
    "ContextChanged",
    "ContextKey",
    "ContextLens",
    "ContextTransform",
    "DanglingEdgeError",
    "DryRunExecutor",
    "DuplicateNodeIdError",
    "DurabilityNotSupportedError",
    "EmptyFlowError",
    "EventListener",
    "EventLoopRunningError",
    "EventStream",
    "ExecNode",
    "Executor",
    "FallbackUsed",
    "FatalWorkflowError",
    "Flow",
    "FlowRunner",
    "FlowcraftError",
    "GraphAnalysis",
    "GraphBuilder",
    "GraphEdge",
    "GraphError",
    "GraphIssue",
    "GraphNode",
    "InMemoryExecutor",
    "InvalidGraphError",
    "InvalidResumeValue",
    "Logger",
    "Middleware",
    "MissingSubWorkflowError",
    "NextFn",
    "NoStartNodeError",
    "Node",
    "NodeArgs",
    "NodeEvent",
    "NodeFailed",
    "NodeFinished",
    "NodeSkipped",
    "NodeStarted",
    "NodeTimeoutError",
    "NullLogger",
    "ParallelBatchFlow",
    "ParallelFlow",
    "PostNode",
    "PreNode",
    "RetryAttempt",
    "RetryPolicy",
    "RunBlockedError",
    "RunCancelled",
    "RunConflictError",
    "RunEvent",
    "RunFailed",
    "RunFinished",
    "RunNotFoundError",
    "RunOptions",
    "RunOutcome",
    "RunStarted",
    "RunSuspended",
    "RunTimeoutError",
    "SequenceFlow",
    "SleepNode",
    "StdlibLogger",
    "StoreError",
    "SubWorkflowResolver",
    "TypedContext",
    "UnknownNodeTypeError",
    "UnknownWaitError",
    "Wait",
    "WaitAlreadyResolved",
    "WaitNode",
    "WalkScope",
    "WorkflowBlueprint",
    "WorkflowError",
    "WorkflowGraph",
    "analyze_graph",
    "apply_middleware",
    "check_for_cycles",
    "compose",
    "compose_context",
    "context_key",
    "context_node",
    "create_node_registry",
    "create_node_rule",
    "filter_collection",
    "generate_mermaid",
    "lens",
    "map_collection",
    "map_node",
    "pipeline",
    "reduce_collection",
    "sanitize_graph",
    "sleep",
    "transform_node",
]
