"""What the commands print: JSON documents on stdout and the progress display on stderr.

Shared by ``run`` (in memory) and the distributed commands, so neither imports the other.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any, TextIO

from ..actions import action_label
from .progress import ProgressDisplay

__all__ = ["print_result", "progress_display", "to_json"]


def to_json(value: Any) -> str:
    """``value`` as indented JSON; values JSON cannot hold are shown by their ``repr``."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=repr)


def print_result(action: Any, context: dict[str, Any], error: BaseException | None = None, **extra: Any) -> None:
    """Print the outcome of a run as one JSON document on stdout."""
    out: dict[str, Any] = dict(extra)
    out["action"] = action_label(action)
    if error is not None:
        out["error"] = {"type": type(error).__name__, "message": str(error)}
        node = getattr(error, "node_name", None)
        if node:
            out["error"]["node"] = node
        phase = getattr(error, "phase", None)
        if phase:
            out["error"]["phase"] = phase
    out["context"] = context
    print(to_json(out))


def progress_display(mode: str, stream: TextIO, node_ids: Collection[str] | None) -> ProgressDisplay | None:
    """The display for ``--progress mode``: ``None`` for ``none``; ``auto`` is live on a terminal."""
    if mode == "none":
        return None
    live = stream.isatty() if mode == "auto" else mode == "live"
    return ProgressDisplay(stream, live=live, node_ids=node_ids)
