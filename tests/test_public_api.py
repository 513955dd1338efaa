"""Pins the public API: the exact ``flowcraft.__all__``, and a docstring on every name."""

from __future__ import annotations

import inspect

import flowcraft

EXPECTED = {
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
    "FlowRunner",
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
    # run policies
    "Budget",
    "BudgetExceededError",
    "RetryPolicy",
    # durable runs, waits and timers
    "DurabilityNotSupportedError",
    "InvalidResumeValue",
    "RunSuspended",
    "SleepNode",
    "UnknownWaitError",
    "Wait",
    "WaitAlreadyResolved",
    "WaitNode",
    "RunBlockedError",
    "RunConflictError",
    "RunNotFoundError",
    "RunOutcome",
    "StoreError",
    # run events
    "BudgetExceeded",
    "RunAwaiting",
    "WaitResolved",
    "ContextChanged",
    "EventListener",
    "EventStream",
    "FallbackUsed",
    "NodeEvent",
    "NodeFailed",
    "NodeFinished",
    "NodeSkipped",
    "NodeStarted",
    "RetryAttempt",
    "RunCancelled",
    "RunEvent",
    "RunFailed",
    "RunFinished",
    "RunStarted",
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
}

# Names added by the declarative-graph package (flowcraft.graph), re-exported at top level.
GRAPH_NAMES: set[str] = {
    "BlueprintBuildResult",
    "BlueprintExecutor",
    "BuildResult",
    "GraphAnalysis",
    "GraphBuilder",
    "GraphEdge",
    "GraphIssue",
    "GraphNode",
    "SubWorkflowResolver",
    "WorkflowBlueprint",
    "WorkflowGraph",
    "analyze_graph",
    "check_for_cycles",
    "create_node_registry",
    "create_node_rule",
    "generate_mermaid",
    "sanitize_graph",
}


def test_all_is_exactly_the_public_contract() -> None:
    assert set(flowcraft.__all__) == EXPECTED | GRAPH_NAMES
    assert len(flowcraft.__all__) == len(set(flowcraft.__all__)), "duplicates in __all__"


def test_all_is_sorted_and_every_name_exists() -> None:
    names = [n for n in flowcraft.__all__ if n not in {"DEFAULT_ACTION", "FILTER_FAILED", "__version__"}]
    for name in flowcraft.__all__:
        assert hasattr(flowcraft, name), name
    assert names == sorted(names, key=lambda n: (n[0].islower(), n))


def test_every_public_class_and_function_has_a_docstring() -> None:
    for name in flowcraft.__all__:
        obj = getattr(flowcraft, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert (obj.__doc__ or "").strip(), f"{name} has no docstring"
            for attr, member in vars(obj).items() if inspect.isclass(obj) else ():
                if attr.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                    continue
                doc = member.__doc__ if not isinstance(member, property) else member.fget.__doc__  # type: ignore[union-attr]
                assert (doc or "").strip(), f"{name}.{attr} has no docstring"


ENGINE_NAMES = {
    "Arrival", "Commit", "Completion", "Failure", "GraphMismatchError", "Job", "JobExecutor", "JobPlan", "JobQueue",
    "JobState", "JobWorker", "MemoryJobQueue", "MemoryRunStore", "NewRun", "NotABlueprintFlowError", "RunError",
    "RunHandle", "RunNotFoundError", "RunStatus", "RunStore", "Subscription", "blueprint_of", "check_queue",
    "check_store", "factory_name", "flow_from_factory", "graph_of", "job_id", "stable_node_ids", "structural_hash",
    "Charge", "Usage", "StoreBudget", "RunOutcome",
}  # fmt: skip


def test_engine_all_is_the_public_contract_and_documented() -> None:
    import flowcraft.engine
    import flowcraft.testing

    assert set(flowcraft.engine.__all__) == ENGINE_NAMES
    assert flowcraft.engine.__all__ == sorted(flowcraft.engine.__all__, key=lambda n: (n[0].islower(), n))
    for name in flowcraft.engine.__all__:
        obj = getattr(flowcraft.engine, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert (obj.__doc__ or "").strip(), f"flowcraft.engine.{name} has no docstring"
            for attr, member in vars(obj).items() if inspect.isclass(obj) else ():
                if attr.startswith("_") or not inspect.isfunction(member):
                    continue
                assert (member.__doc__ or "").strip(), f"flowcraft.engine.{name}.{attr} has no docstring"
    assert flowcraft.testing.MemoryRunStore is flowcraft.engine.MemoryRunStore
    assert flowcraft.testing.MemoryJobQueue is flowcraft.engine.MemoryJobQueue
