"""OpenTelemetry tracing for Flowcraft runs: one span per run, one per node.

Install the extra first: ``pip install 'flowcraft-py[otel]'``.

[`OpenTelemetryListener`][flowcraft.integrations.opentelemetry.OpenTelemetryListener] is a run event listener. Pass
it to ``flow.run(ctx, on_event=listener)``:

- the **run span** (``flowcraft.run <flow>``) starts at ``RunStarted`` and ends at
  ``RunFinished`` / ``RunFailed`` / ``RunCancelled``;
- a **node span** (``flowcraft.node <id or class>``) starts at ``NodeStarted`` and ends
  at ``NodeFinished`` / ``NodeFailed``. While a node runs its span is the *current*
  span, so spans your own code (or an instrumented HTTP client) opens inside ``exec``
  become its children.

Nesting follows the code that runs: a node inside a nested flow or a parallel block is a
child of that flow's or block's span, which is a child of the run span. Retries,
fallbacks, context changes and skipped nodes are recorded as span events and attributes.

Attributes: ``flowcraft.run.id``, ``flowcraft.flow``, ``flowcraft.node.id``,
``flowcraft.node.type`` (the node's class name), ``flowcraft.node.action``,
``flowcraft.node.retries`` (how many times ``exec`` was attempted again),
``flowcraft.node.fallback``, ``flowcraft.node.phase`` and ``flowcraft.error`` on failure
(the span status is ``ERROR`` and the exception is recorded).

Examples:
    ```python
    from flowcraft.integrations.opentelemetry import OpenTelemetryListener

    tracing = OpenTelemetryListener()          # uses the global tracer provider
    await flow.run(ctx, on_event=tracing)
    ```

The listener must receive events synchronously (pass it as ``on_event`` directly, or
call it from a synchronous fan-out listener) so that it runs in the task that runs each
node; one listener can serve many concurrent runs.
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass, field
from typing import Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import Span, Status, StatusCode, Tracer
except ImportError as error:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "flowcraft.integrations.opentelemetry needs OpenTelemetry: pip install 'flowcraft-py[otel]'"
    ) from error

from ..actions import action_label
from ..events import (
    ContextChanged,
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

__all__ = ["OpenTelemetryListener"]

_INSTRUMENTATION = "flowcraft"


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def _action_text(action: Any) -> str:
    return str(action_label(action))


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


@dataclass(slots=True)
class _Open:
    span: Span
    token: contextvars.Token[Any] | None
    retries: int = 0


@dataclass(slots=True)
class _Run:
    span: Span
    token: contextvars.Token[Any] | None
    nodes: dict[tuple[int, str | None, str], list[_Open]] = field(default_factory=dict)


class OpenTelemetryListener:
    """A run-event listener that records runs and nodes as OpenTelemetry spans.

    Args:
        tracer: the tracer to use; by default ``trace.get_tracer("flowcraft")`` from
            the global tracer provider.
        record_context_changes: add a ``context.changed`` span event listing the keys
            a node set or deleted (on by default; key names only, never values).
    """

    def __init__(self, tracer: Tracer | None = None, *, record_context_changes: bool = True) -> None:
        self.tracer: Tracer = tracer if tracer is not None else trace.get_tracer(_INSTRUMENTATION)
        self.record_context_changes = record_context_changes
        self._runs: dict[str, _Run] = {}

    def __call__(self, event: RunEvent) -> None:
        """Handle one run event."""
        if isinstance(event, NodeEvent):
            self._node_event(event)
        elif isinstance(event, RunStarted):
            span = self.tracer.start_span(
                f"flowcraft.run {event.flow}",
                start_time=_ns(event.time),
                attributes={"flowcraft.run.id": event.run_id, "flowcraft.flow": event.flow},
            )
            token = otel_context.attach(trace.set_span_in_context(span))
            self._runs[event.run_id] = _Run(span, token)
        elif isinstance(event, (RunFinished, RunFailed, RunCancelled)):
            self._end_run(event)

    # ---- runs ---------------------------------------------------------------------------

    def _end_run(self, event: RunFinished | RunFailed | RunCancelled) -> None:
        run = self._runs.pop(event.run_id, None)
        if run is None:
            return
        end = _ns(event.time)
        # Nodes interrupted by an abort or a task cancellation get no event of their own.
        for stack in run.nodes.values():
            for node in stack:
                node.span.set_status(Status(StatusCode.ERROR, "run ended before the node finished"))
                node.span.end(end_time=end)
        span = run.span
        if isinstance(event, RunFinished):
            span.set_attribute("flowcraft.run.action", _action_text(event.action))
        elif isinstance(event, RunFailed):
            span.set_attribute("flowcraft.error", _error_text(event.error))
            span.record_exception(event.error)
            span.set_status(Status(StatusCode.ERROR, _error_text(event.error)))
        else:
            span.set_attribute("flowcraft.run.cancelled", True)
            span.set_attribute("flowcraft.run.cancel_reason", str(event.reason))
            span.set_status(Status(StatusCode.ERROR, f"cancelled: {event.reason}"))
        span.end(end_time=end)
        _detach(run.token)

    # ---- nodes --------------------------------------------------------------------------

    def _node_event(self, event: NodeEvent) -> None:
        run = self._runs.get(event.run_id)
        if run is None:
            return
        key = (_task_id(), event.node_id, event.node_name)
        if isinstance(event, NodeStarted):
            attributes: dict[str, Any] = {
                "flowcraft.run.id": event.run_id,
                "flowcraft.node.type": event.node_name,
            }
            if event.node_id is not None:
                attributes["flowcraft.node.id"] = event.node_id
            span = self.tracer.start_span(
                f"flowcraft.node {event.node_id if event.node_id is not None else event.node_name}",
                start_time=_ns(event.time),
                attributes=attributes,
            )
            token = otel_context.attach(trace.set_span_in_context(span))
            run.nodes.setdefault(key, []).append(_Open(span, token))
        elif isinstance(event, NodeSkipped):
            run.span.add_event(
                "node.skipped",
                {"flowcraft.node.id": event.node_id or "", "flowcraft.node.type": event.node_name,
                 "flowcraft.reason": event.reason},
                timestamp=_ns(event.time),
            )  # fmt: skip
        else:
            stack = run.nodes.get(key)
            if not stack:
                return
            node = stack[-1]
            if isinstance(event, (NodeFinished, NodeFailed)):
                stack.pop()
                if not stack:
                    del run.nodes[key]
                self._end_node(node, event)
            elif isinstance(event, RetryAttempt):
                node.retries += 1
                node.span.add_event(
                    "retry",
                    {"flowcraft.attempt": event.attempt, "flowcraft.max_attempts": event.max_attempts,
                     "flowcraft.error": _error_text(event.error), "flowcraft.wait": event.wait},
                    timestamp=_ns(event.time),
                )  # fmt: skip
            elif isinstance(event, FallbackUsed):
                node.span.set_attribute("flowcraft.node.fallback", True)
                node.span.add_event(
                    "fallback", {"flowcraft.error": _error_text(event.error)}, timestamp=_ns(event.time)
                )
            elif isinstance(event, ContextChanged) and self.record_context_changes:
                node.span.add_event(
                    "context.changed",
                    {"flowcraft.keys_set": list(event.keys_set), "flowcraft.keys_deleted": list(event.keys_deleted)},
                    timestamp=_ns(event.time),
                )

    def _end_node(self, node: _Open, event: NodeFinished | NodeFailed) -> None:
        span = node.span
        # ``retries``: how many times exec was attempted again after a failure.
        span.set_attribute("flowcraft.node.retries", node.retries)
        if isinstance(event, NodeFinished):
            span.set_attribute("flowcraft.node.action", _action_text(event.action))
        else:
            span.set_attribute("flowcraft.error", _error_text(event.error))
            if event.phase is not None:
                span.set_attribute("flowcraft.node.phase", event.phase)
            span.record_exception(event.error)
            span.set_status(Status(StatusCode.ERROR, _error_text(event.error)))
        span.end(end_time=_ns(event.time))
        _detach(node.token)


def _task_id() -> int:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return 0
    return id(task) if task is not None else 0


def _detach(token: contextvars.Token[Any] | None) -> None:
    if token is not None:
        otel_context.detach(token)
