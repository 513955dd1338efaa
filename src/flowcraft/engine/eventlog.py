"""Run events as text, for the per-run Redis event stream of distributed runs.

`encode_event` turns a [`RunEvent`][flowcraft.RunEvent] into codec JSON
(`codec`): ``{"t": <event class name>, <field>: <value>, ...}``. Errors cannot
cross processes as objects, so they travel as their type name, message, and the node and
phase of a [`WorkflowError`][flowcraft.WorkflowError]; `decode_event` rebuilds them as a
[`WorkflowError`][flowcraft.WorkflowError] (when a node and phase were known) around a
[`RemoteNodeError`][flowcraft.distributed.RemoteNodeError] naming the original type, or as the bare
[`RemoteNodeError`][flowcraft.distributed.RemoteNodeError]. Nothing is unpickled or evaluated.

Stream entries hold one field: ``e`` (an encoded event) or ``end`` (the run's final
state, written atomically with it; readers stop there).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import events as ev
from ..errors import WorkflowError
from .codec import decode, encode
from .errors import CodecError, RemoteNodeError

__all__ = ["END_FIELD", "EVENT_FIELD", "decode_event", "encode_event", "error_fields", "rebuild_error"]

EVENT_FIELD = "e"
"""Stream entry field holding one encoded event."""

END_FIELD = "end"
"""Stream entry field marking the end of the run (its value is the final state)."""

_TYPES: dict[str, type[ev.RunEvent]] = {
    cls.__name__: cls
    for cls in (
        ev.RunStarted, ev.RunFinished, ev.RunFailed, ev.RunCancelled, ev.NodeStarted, ev.NodeFinished,
        ev.NodeFailed, ev.NodeSkipped, ev.RetryAttempt, ev.FallbackUsed, ev.ContextChanged, ev.BudgetExceeded,
        ev.RunAwaiting, ev.WaitResolved,
    )
}  # fmt: skip

_ERROR_TAG = "__error__"


def _type_and_message(error: BaseException) -> tuple[str, str]:
    """The type name and own message of ``error``; a
    [`RemoteNodeError`][flowcraft.engine.eventlog.RemoteNodeError] stands in
    for the remote error (another error's ``type_name``, e.g. a ``CodecError``'s, names
    something else)."""
    if isinstance(error, RemoteNodeError):
        return error.type_name, error.remote_message
    return type(error).__name__, str(error)


def error_fields(error: BaseException) -> dict[str, Any]:
    """What crosses processes of an exception: type name, message, and node/phase if known.

    For a [`WorkflowError`][flowcraft.WorkflowError], ``message`` is its own (naming the node) and
    ``type``/``detail`` are the type and message of the error it wraps.
    """
    if isinstance(error, WorkflowError):
        out: dict[str, Any] = {_ERROR_TAG: True, "message": str(error)}
        original = error.original_error if error.original_error is not None else error
        out["node"] = error.node_name
        out["phase"] = error.phase
        out["type"], detail = _type_and_message(original)
        if original is not error:
            out["detail"] = detail
        return out
    type_name, message = _type_and_message(error)
    return {_ERROR_TAG: True, "message": message, "type": type_name}


def rebuild_error(data: dict[str, Any]) -> BaseException:
    """The client-side stand-in of an error encoded by `error_fields`."""
    type_name = str(data.get("type") or "Exception")
    message = str(data.get("message") or "")
    if "node" in data or "phase" in data:
        detail = data.get("detail")
        original = RemoteNodeError(f"{type_name}: {message if detail is None else detail}", type_name=type_name)
        node, phase = data.get("node"), data.get("phase")
        node_name = None if node is None else str(node)
        return WorkflowError(message, node_name, None if phase is None else str(phase), original)
    return RemoteNodeError(f"{type_name}: {message}", type_name=type_name)


def encode_event(event: ev.RunEvent) -> str:
    """``event`` as codec JSON text; a field the codec cannot hold is sent as its ``repr``."""
    data: dict[str, Any] = {"t": type(event).__name__}
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        data[field.name] = error_fields(value) if isinstance(value, BaseException) else value
    try:
        return encode(data, key="<event>")
    except CodecError:
        for name, value in list(data.items()):
            try:
                encode(value, key=name)
            except CodecError:
                data[name] = repr(value)
        return encode(data, key="<event>")


def decode_event(text: str | bytes) -> ev.RunEvent | None:
    """The event encoded in ``text``; ``None`` for an unknown event type or missing fields.

    Fields this version does not know are dropped, so newer writers can add fields.

    Raises:
        CodecError: ``text`` is not codec JSON.
    """
    data = decode(text, key="<event>")
    if not isinstance(data, dict):
        return None
    cls = _TYPES.get(str(data.pop("t", "")))
    if cls is None:
        return None
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name not in data:
            return None
        value = data[field.name]
        if isinstance(value, dict) and value.get(_ERROR_TAG) is True:
            value = rebuild_error(value)
        elif field.name in ("keys_set", "keys_deleted") and isinstance(value, list):
            value = tuple(value)
        fields[field.name] = value
    return cls(**fields)
