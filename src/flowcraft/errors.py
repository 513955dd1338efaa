"""The exception tree of Flowcraft.

Every exception the library raises on purpose derives from [`FlowcraftError`][flowcraft.FlowcraftError]:

```text
FlowcraftError
├── AbortError                      a run was cancelled through its AbortSignal
├── WorkflowError                   a node failed in prep / exec / post
│   └── FatalWorkflowError          stop the whole run now: no retry, no fallback
│       └── BudgetExceededError     the run used up a limit of its Budget
├── NodeTimeoutError (TimeoutError) one exec attempt exceeded Node.timeout
├── RunTimeoutError (TimeoutError)  waiting for a run's result timed out
├── EmptyFlowError (ValueError)     a Flow with no start node and no logic of its own
├── EventLoopRunningError (RuntimeError)  run_sync() called inside a running loop
├── DurabilityNotSupportedError (TypeError)  a wait outside a durable run, or a store without leases
└── GraphError (ValueError)         a declarative graph or blueprint is invalid
    ├── InvalidGraphError           malformed input (carries a path)
    ├── UnknownNodeTypeError        a node type missing from the registry
    ├── DanglingEdgeError           an edge names a node that does not exist
    ├── DuplicateNodeIdError        two nodes share one id
    ├── MissingSubWorkflowError     a sub-workflow cannot be resolved
    └── NoStartNodeError            no node without predecessors
```
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AbortError",
    "BudgetExceededError",
    "DanglingEdgeError",
    "DuplicateNodeIdError",
    "DurabilityNotSupportedError",
    "EmptyFlowError",
    "EventLoopRunningError",
    "FatalWorkflowError",
    "FlowcraftError",
    "GraphError",
    "InvalidGraphError",
    "MissingSubWorkflowError",
    "NoStartNodeError",
    "NodeTimeoutError",
    "RunTimeoutError",
    "UnknownNodeTypeError",
    "WorkflowError",
]


class FlowcraftError(Exception):
    """Root of every error raised by Flowcraft."""


class AbortError(FlowcraftError):
    """The run was aborted (cancelled) through its [`AbortSignal`][flowcraft.AbortSignal].

    ``reason`` is whatever was passed to ``AbortController.abort(reason)``.
    """

    def __init__(self, message: str = "The workflow was aborted.", *, reason: Any = None) -> None:
        super().__init__(message)
        self.reason = reason


class WorkflowError(FlowcraftError):
    """A node failed; names the node and the lifecycle phase.

    The underlying exception is kept in ``original_error`` and as ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        node_name: str | None = None,
        phase: str | None = None,
        original_error: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.node_name = node_name
        self.phase = phase
        self.original_error = original_error
        if original_error is not None and self.__cause__ is None:
            self.__cause__ = original_error


class FatalWorkflowError(WorkflowError):
    """Raise from any node to end the run at once: no further attempts, no fallback."""


class BudgetExceededError(FatalWorkflowError):
    """The run used up a limit of its [`Budget`][flowcraft.Budget]: it stops, and its
    in-flight nodes are aborted.

    Attributes:
        kind: ``"node_runs"``, ``"seconds"`` or a kind the nodes meter (``"tokens"``...).
        limit: the limit of that kind.
        used: the usage that crossed it (for ``"node_runs"``, ``used == limit``: the node
            that would have been one too many was refused).
        node_id: the node refused, or the node whose charge crossed the limit (``None``
            when the deadline passed between nodes).
        usage: the run's usage of every kind when it stopped.
    """

    def __init__(
        self,
        kind: str,
        limit: float,
        used: float,
        node_id: str | None = None,
        *,
        usage: dict[str, float] | None = None,
    ) -> None:
        where = f" at node {node_id!r}" if node_id is not None else ""
        super().__init__(f"Run budget exceeded{where}: {kind} used {used:g} of {limit:g}", node_id, "budget")
        self.kind = kind
        self.limit = limit
        self.used = used
        self.node_id = node_id
        self.usage: dict[str, float] = dict(usage) if usage is not None else {kind: used}

    def __reduce__(self) -> Any:
        return (_rebuild_budget_error, (self.kind, self.limit, self.used, self.node_id, self.usage))


def _rebuild_budget_error(
    kind: str, limit: float, used: float, node_id: str | None, usage: dict[str, float]
) -> BudgetExceededError:
    return BudgetExceededError(kind, limit, used, node_id, usage=usage)


class NodeTimeoutError(FlowcraftError, TimeoutError):
    """One ``exec`` attempt ran longer than the node's ``timeout`` (seconds).

    The retry loop treats it as a failed attempt.
    """

    def __init__(self, message: str, *, node_name: str, timeout: float) -> None:
        super().__init__(message)
        self.node_name = node_name
        self.timeout = timeout


class RunTimeoutError(FlowcraftError, TimeoutError):
    """Waiting for a run's result took longer than the given timeout."""


class EmptyFlowError(FlowcraftError, ValueError):
    """A [`Flow`][flowcraft.Flow] has no start node and no ``exec`` logic of its own."""


class EventLoopRunningError(FlowcraftError, RuntimeError):
    """``run_sync`` was called from inside a running event loop; ``await run()`` instead."""


class GraphError(FlowcraftError, ValueError):
    """A declarative graph or blueprint is invalid.

    Attributes name what is wrong where that applies: ``node_id``, ``edge``, ``path``.
    """

    def __init__(
        self,
        message: str,
        *,
        node_id: str | None = None,
        edge: Any = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.node_id = node_id
        self.edge = edge
        self.path = path


class InvalidGraphError(GraphError):
    """Malformed graph or blueprint input; ``path`` points at the field, e.g. ``nodes[3].id``."""


class UnknownNodeTypeError(GraphError):
    """A node's ``type`` is not in the node registry."""


class DanglingEdgeError(GraphError):
    """An edge's ``source`` or ``target`` names a node that does not exist."""


class DuplicateNodeIdError(GraphError):
    """Two nodes of one graph share an id."""


class MissingSubWorkflowError(GraphError):
    """A sub-workflow node cannot be resolved (no resolver, unknown id, or a cycle)."""


class NoStartNodeError(GraphError):
    """Every node has a predecessor, so there is nowhere to start."""


class DurabilityNotSupportedError(FlowcraftError, TypeError):
    """Something that needs a durable run met another: a [`WaitNode`][flowcraft.WaitNode]
    run in memory (or inside an in-process block of a durable run), or a store given to a
    durable executor that cannot hold durable runs (no leases)."""
