"""Flowcraft: asyncio-native, typed workflows — run the same graph in memory, as a dry
run, or across worker processes."""

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
    DanglingEdgeError,
    DuplicateNodeIdError,
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
from .executors import BatchOutcome, DryRunExecutor, Executor, InMemoryExecutor, RunOptions, WalkScope
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

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_ACTION",
    "FILTER_FAILED",
    "AbortController",
    "AbortError",
    "AbortSignal",
    "AbstractNode",
    "BatchFlow",
    "BatchOutcome",
    "ConsoleLogger",
    "Context",
    "ContextKey",
    "ContextLens",
    "ContextTransform",
    "DanglingEdgeError",
    "DryRunExecutor",
    "DuplicateNodeIdError",
    "EmptyFlowError",
    "EventLoopRunningError",
    "ExecNode",
    "Executor",
    "FatalWorkflowError",
    "Flow",
    "FlowcraftError",
    "GraphError",
    "InMemoryExecutor",
    "InvalidGraphError",
    "Logger",
    "Middleware",
    "MissingSubWorkflowError",
    "NextFn",
    "NoStartNodeError",
    "Node",
    "NodeArgs",
    "NodeTimeoutError",
    "NullLogger",
    "ParallelBatchFlow",
    "ParallelFlow",
    "PostNode",
    "PreNode",
    "RunOptions",
    "RunTimeoutError",
    "SequenceFlow",
    "StdlibLogger",
    "TypedContext",
    "UnknownNodeTypeError",
    "WalkScope",
    "WorkflowError",
    "__version__",
    "apply_middleware",
    "compose",
    "compose_context",
    "context_key",
    "context_node",
    "filter_collection",
    "lens",
    "map_collection",
    "map_node",
    "pipeline",
    "reduce_collection",
    "sleep",
    "transform_node",
]
