"""What the run page shows of a run's events: each node's state, and the timeline rows.

Pure functions of the decoded events (and the run's open waits and error), shared by
the page (first render) and the live stream (each update), so both agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..engine.client import RunStatus
from ..errors import WorkflowError
from ..events import (
    ContextChanged,
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
from ..waits import Wait

__all__ = ["NODE_STATES", "node_states", "timeline_rows"]

NODE_STATES = ("running", "done", "failed", "skipped", "retrying", "waiting", "sleeping", "resumed")
"""The states a node is coloured by on the run page."""


def _wait_node(wait_id: str) -> str:
    return wait_id.partition("#")[0]


def node_states(events: Iterable[RunEvent], waits: Sequence[Wait], status: RunStatus | None) -> dict[str, str]:
    """Each node's latest state, from the events; open waits and the failed node win."""
    states: dict[str, str] = {}
    for event in events:
        if isinstance(event, NodeStarted) and event.node_id:
            states[event.node_id] = "running"
        elif isinstance(event, NodeFinished) and event.node_id:
            states[event.node_id] = "done"
        elif isinstance(event, NodeFailed) and event.node_id:
            states[event.node_id] = "failed"
        elif isinstance(event, NodeSkipped) and event.node_id:
            states[event.node_id] = "skipped"
        elif isinstance(event, RetryAttempt) and event.node_id:
            states[event.node_id] = "retrying"
        elif isinstance(event, RunAwaiting):
            states[event.node_id] = "sleeping" if event.kind == "timer" else "waiting"
        elif isinstance(event, WaitResolved):
            states[_wait_node(event.wait_id)] = "resumed"
    if status is not None and status.finished:
        states = {node: ("done" if state in ("resumed",) else state) for node, state in states.items()}
        if status.state == "cancelled":
            states = {node: ("skipped" if state in ("running", "waiting", "sleeping", "retrying") else state)
                      for node, state in states.items()}  # fmt: skip
    for wait in waits:
        states[wait.node_id] = "sleeping" if wait.kind == "timer" else "waiting"
    if status is not None and status.error is not None and status.state == "failed":
        states[status.error.node_id] = "failed"
    return states


def _seconds(value: float) -> str:
    if value < 0.001:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def _error_text(error: BaseException) -> str:
    if isinstance(error, WorkflowError) and error.original_error is not None:
        return str(error.original_error)
    return str(error)


def _detail(event: RunEvent) -> str:
    if isinstance(event, RunStarted):
        return f"flow {event.flow}"
    if isinstance(event, NodeFinished):
        return f"→ {event.action!s} in {_seconds(event.duration)}"
    if isinstance(event, NodeFailed):
        return f"{event.phase or '?'}: {_error_text(event.error)} after {_seconds(event.duration)}"
    if isinstance(event, NodeSkipped):
        return event.reason
    if isinstance(event, RetryAttempt):
        return (
            f"attempt {event.attempt}/{event.max_attempts} after {_error_text(event.error)}; next in {event.wait:g} s"
        )
    if isinstance(event, ContextChanged):
        parts = [f"set {', '.join(event.keys_set)}"] if event.keys_set else []
        parts += [f"deleted {', '.join(event.keys_deleted)}"] if event.keys_deleted else []
        return "; ".join(parts)
    if isinstance(event, RunAwaiting):
        return f"wait {event.wait_id} ({event.kind})"
    if isinstance(event, WaitResolved):
        return f"wait {event.wait_id} → {event.action!s} (by {event.by})"
    if isinstance(event, RunFinished):
        return f"→ {event.action!s} in {_seconds(event.duration)}"
    if isinstance(event, RunFailed):
        return f"{_error_text(event.error)} after {_seconds(event.duration)}"
    if isinstance(event, RunCancelled):
        return f"{event.reason!s}"
    return ""


def timeline_rows(entries: Sequence[tuple[str, RunEvent]], started: float | None) -> list[dict[str, Any]]:
    """One row per event: ``id``, ``at`` (seconds since ``started``), ``kind``, ``node``,
    ``detail`` — plain text (the page sets it as text, never as HTML)."""
    rows = []
    for entry_id, event in entries:
        node = getattr(event, "node_id", None) or ""
        rows.append({
            "id": entry_id,
            "at": round(event.time - started, 4) if started is not None else 0.0,
            "kind": type(event).__name__,
            "node": str(node),
            "detail": _detail(event),
        })  # fmt: skip
    return rows
