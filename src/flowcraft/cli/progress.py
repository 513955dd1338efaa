"""Live progress of a run on the terminal, driven by run events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from typing import TextIO

from ..actions import action_label
from ..events import (
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
)

__all__ = ["ProgressDisplay"]

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def _describe_error(error: BaseException) -> str:
    """``"<type>: <message>"`` of the error a node raised (the real type, once)."""
    original = getattr(error, "original_error", None)
    shown = original if isinstance(original, BaseException) else error
    if getattr(shown, "names_its_type", False):  # a RemoteNodeError: "<remote type>: <message>"
        return str(shown)
    return f"{type(shown).__name__}: {shown}"


class ProgressDisplay:
    """A run-event listener that shows nodes done / running / failed and the elapsed time.

    With ``live=True`` (a terminal) one status line is redrawn in place; otherwise one
    plain line is written per node event, so logs and pipes stay readable.

    Args:
        stream: where to write (the CLI uses stderr so stdout stays JSON).
        live: redraw a status line instead of writing plain lines.
        node_ids: the nodes to show (structural nodes of a compiled graph are left out);
            ``None`` shows every node.
    """

    def __init__(self, stream: TextIO, *, live: bool, node_ids: Collection[str] | None = None) -> None:
        self.stream = stream
        self.live = live
        self.node_ids = set(node_ids) if node_ids is not None else None
        self.started = time.monotonic()
        self.done = 0
        self.failed = 0
        self.running: dict[str, int] = {}
        self._frame = 0
        self._width = 0

    @property
    def total(self) -> int | None:
        """How many nodes the graph has (not all of them need to run)."""
        return len(self.node_ids) if self.node_ids is not None else None

    def elapsed(self) -> float:
        """Seconds since the display was created."""
        return time.monotonic() - self.started

    def __call__(self, event: RunEvent) -> None:
        """Record one event and update the display."""
        if isinstance(event, NodeEvent):
            node_id = event.node_id if event.node_id is not None else event.node_name
            if self.node_ids is not None and node_id not in self.node_ids:
                return
            self._node(event, node_id)
        elif isinstance(event, (RunFinished, RunFailed, RunCancelled)):
            self.finish(event)

    def _node(self, event: NodeEvent, node_id: str) -> None:
        if isinstance(event, NodeStarted):
            self.running[node_id] = self.running.get(node_id, 0) + 1
            self._line(f"started  {node_id} ({event.node_name})")
        elif isinstance(event, (NodeFinished, NodeFailed)):
            count = self.running.get(node_id, 0) - 1
            if count > 0:
                self.running[node_id] = count
            else:
                self.running.pop(node_id, None)
            if isinstance(event, NodeFinished):
                self.done += 1
                self._line(f"finished {node_id} -> {action_label(event.action)} ({event.duration:.3f}s)")
            else:
                self.failed += 1
                phase = f" in {event.phase}" if event.phase else ""
                self._line(f"FAILED   {node_id}{phase}: {_describe_error(event.error)}")
        elif isinstance(event, RetryAttempt):
            self._line(
                f"retry    {node_id} attempt {event.attempt}/{event.max_attempts} failed: "
                f"{_describe_error(event.error)}"
            )
        elif isinstance(event, NodeSkipped):
            self._line(f"skipped  {node_id}: {event.reason}")

    def status_line(self) -> str:
        """The one-line summary: counts, elapsed time and the running nodes."""
        total = f" of {self.total}" if self.total is not None else ""
        running = ", ".join(sorted(self.running))
        line = f"{self.done} done{total} · {len(self.running)} running · {self.failed} failed · {self.elapsed():.1f}s"
        return line + (f"  [{running}]" if running else "")

    def _line(self, text: str) -> None:
        if self.live:
            self.redraw()
        else:
            self.stream.write(f"[{self.elapsed():7.2f}s] {text}\n")
            self.stream.flush()

    def redraw(self) -> None:
        """Redraw the live status line (no-op in plain mode)."""
        if not self.live:
            return
        self._frame = (self._frame + 1) % len(_SPINNER)
        text = f"{_SPINNER[self._frame]} {self.status_line()}"
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def finish(self, event: RunFinished | RunFailed | RunCancelled) -> None:
        """Write the closing line of the run."""
        if isinstance(event, RunFinished):
            outcome = f"finished -> {action_label(event.action)}"
        elif isinstance(event, RunFailed):
            outcome = "failed"
        else:
            outcome = f"cancelled ({event.reason})"
        nodes = "node" if self.done == 1 else "nodes"
        summary = f"run {outcome} in {event.duration:.2f}s: {self.done} {nodes} done, {self.failed} failed"
        if self.live:
            self.stream.write("\r" + summary + " " * max(0, self._width - len(summary)) + "\n")
            self._width = 0
        else:
            self.stream.write(f"[{self.elapsed():7.2f}s] {summary}\n")
        self.stream.flush()

    async def tick(self, stop: asyncio.Event, interval: float = 0.1) -> None:
        """Redraw the live line every ``interval`` seconds until ``stop`` is set (keeps the clock moving)."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                self.redraw()
