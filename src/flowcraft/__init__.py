"""Flowcraft: asyncio-native, typed workflows — run the same graph in memory, as a dry
run, or across worker processes."""

import importlib
from typing import TYPE_CHECKING, Any

from .abort import AbortController, AbortSignal, sleep
from .actions import DEFAULT_ACTION, FILTER_FAILED
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
    Executor,
    FlowRunner,
    InMemoryExecutor,
    RunOptions,
    WalkScope,
)
from .flow import Flow
from .loggers import ConsoleLogger, Logger, NullLogger, StdlibLogger
from .middleware import Middleware, NextFn, apply_middleware
from .node import AbstractNode, ExecNode, Node, NodeArgs, PostNode, PreNode

if TYPE_CHECKING:
    from .budget import Budget
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
        RunAwaiting,
        RunCancelled,
        RunEvent,
        RunFailed,
        RunFinished,
        RunStarted,
        WaitResolved,
    )
    from .executors.dry_run import DryRunExecutor
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

__version__ = "0.1.0"

# Run events, budgets, retry policies, waits, the flow patterns (parallel, batch and
# sequence flows: ~0.25 ms), the functional helpers, the dry run and the declarative-graph
# package load on first use, keeping `import flowcraft` cheap (tests/test_import_cost.py;
# see the import-time row of docs/benchmarks.md).
_LAZY: dict[str, str] = {
    "DryRunExecutor": "executors.dry_run",
    "compose": "functional",
    "context_node": "functional",
    "filter_collection": "functional",
    "map_collection": "functional",
    "map_node": "functional",
    "pipeline": "functional",
    "reduce_collection": "functional",
    "transform_node": "functional",
    "Budget": "budget",
    "RetryPolicy": "retry",
    "BatchFlow": "patterns",
    "ParallelBatchFlow": "patterns",
    "ParallelFlow": "patterns",
    "SequenceFlow": "patterns",
    "InvalidResumeValue": "waits",
    "RunSuspended": "waits",
    "SleepNode": "waits",
    "UnknownWaitError": "waits",
    "Wait": "waits",
    "WaitAlreadyResolved": "waits",
    "WaitNode": "waits",
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
    "RunAwaiting": "events",
    "RunCancelled": "events",
    "WaitResolved": "events",
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


# Submodules `import flowcraft` loaded until they became lazy: `flowcraft.merge.append`
# after a bare `import flowcraft` keeps working.
_LAZY_SUBMODULES = ("merge", "patterns")


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        if name in _LAZY_SUBMODULES:
            return importlib.import_module(f"flowcraft.{name}")
        raise AttributeError(f"module 'flowcraft' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"flowcraft.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DEFAULT_ACTION",
    "FILTER_FAILED",
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
    "RunAwaiting",
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
    "WaitResolved",
    "WalkScope",
    "WorkflowBlueprint",
    "WorkflowError",
    "WorkflowGraph",
    "__version__",
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
