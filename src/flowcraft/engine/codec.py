"""The codec for values that cross processes: JSON with tagged Python types.

Plain JSON covers ``str``, ``int``, ``float``, ``bool``, ``None``, ``list`` and ``dict``
with string keys. Other supported types are written as ``{"__fc__": tag, "v": ...}``:
``datetime``, ``date``, ``time``, ``timedelta``, ``Decimal``, ``UUID``, ``bytes``,
``set``, ``frozenset``, ``tuple``, dicts with non-string keys, the floats JSON has no
literal for (``nan``, ``inf``, ``-inf``: the output stays valid JSON for any reader), and
the action sentinels (``DEFAULT_ACTION``, ``FILTER_FAILED``). Other ``str`` subclasses
(``ContextKey``) travel as their text. Anything else — an ``Enum`` member (a ``StrEnum``
too: store its ``.value``), any other class, structures nested deeper than Python's
recursion limit — raises [`CodecError`][flowcraft.distributed.CodecError] naming the key and
the type. Nothing is ever pickled or evaluated.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import json
import math
import uuid
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

from ..actions import ActionSentinel
from .errors import CodecError

__all__ = ["decode", "decode_action", "encode", "encode_action"]

TAG = "__fc__"
_SCALARS = (str, int, float, bool, type(None))


def _fail(key: str, value: Any, where: str) -> CodecError:
    type_name = f"{type(value).__module__}.{type(value).__qualname__}"
    inner = f" (at {where})" if where else ""
    if isinstance(value, enum.Enum):
        inner += f" (an Enum member: store its .value, {value.value!r}, and convert it back when you read it)"
    return CodecError(
        f"Context key {key!r} holds a {type_name}{inner}, which cannot be sent between processes. "
        "Store JSON-like data (str, int, float, bool, None, list, dict) or datetime, date, time, timedelta, "
        "Decimal, UUID, bytes, set, frozenset, tuple.",
        key=key,
        type_name=type_name,
    )


def _to_json(value: Any, key: str, where: str) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:
        return [_to_json(item, key, f"{where}[{i}]") for i, item in enumerate(value)]
    if kind is dict:
        if TAG not in value and all(type(k) is str for k in value):
            return {k: _to_json(v, key, f"{where}[{k!r}]") for k, v in value.items()}
        return {
            TAG: "map",
            "v": [[_to_json(k, key, f"{where}<key>"), _to_json(v, key, f"{where}[{k!r}]")] for k, v in value.items()],
        }
    if kind is tuple:
        return {TAG: "tuple", "v": [_to_json(item, key, f"{where}[{i}]") for i, item in enumerate(value)]}
    if kind is set or kind is frozenset:
        return {TAG: kind.__name__, "v": [_to_json(item, key, f"{where}<item>") for item in value]}
    if kind is dt.datetime:
        return {TAG: "datetime", "v": value.isoformat()}
    if kind is dt.date:
        return {TAG: "date", "v": value.isoformat()}
    if kind is dt.time:
        return {TAG: "time", "v": value.isoformat()}
    if kind is dt.timedelta:
        return {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if kind is Decimal:
        return {TAG: "decimal", "v": str(value)}
    if kind is uuid.UUID:
        return {TAG: "uuid", "v": str(value)}
    if kind is bytes or kind is bytearray:
        return {TAG: kind.__name__, "v": base64.b64encode(value).decode("ascii")}
    if kind is ActionSentinel:
        return {TAG: "action", "v": value.name}
    if isinstance(value, str) and not isinstance(value, enum.Enum):  # ContextKey travels as its text
        return str.__str__(value)
    raise _fail(key, value, where)


def _tag_floats(value: Any) -> Any:
    """``value`` (made by `_to_json`) with nan / inf / -inf tagged: the slow path, taken only
    when ``json.dumps(allow_nan=False)`` met one."""
    kind = type(value)
    if kind is float and not math.isfinite(value):
        return {TAG: "float", "v": repr(value)}
    if kind is list:
        return [_tag_floats(item) for item in value]
    if kind is dict:
        return {k: _tag_floats(v) for k, v in value.items()}
    return value


def _decode_tagged(obj: dict[str, Any]) -> Any:
    tag = obj.get(TAG)
    if tag is None or len(obj) != 2 or "v" not in obj:
        return obj
    v = obj["v"]
    if tag == "map":
        return {_hashable(k): item for k, item in v}
    if tag == "tuple":
        return tuple(v)
    if tag == "set":
        return {_hashable(item) for item in v}
    if tag == "frozenset":
        return frozenset(_hashable(item) for item in v)
    if tag == "datetime":
        return dt.datetime.fromisoformat(v)
    if tag == "date":
        return dt.date.fromisoformat(v)
    if tag == "time":
        return dt.time.fromisoformat(v)
    if tag == "timedelta":
        return dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2])
    if tag == "decimal":
        return Decimal(v)
    if tag == "uuid":
        return uuid.UUID(v)
    if tag == "bytes":
        return base64.b64decode(v)
    if tag == "bytearray":
        return bytearray(base64.b64decode(v))
    if tag == "action":
        return ActionSentinel(v)
    if tag == "float" and v in ("nan", "inf", "-inf"):
        return float(v)
    raise CodecError(f"Unknown codec tag {tag!r} in stored data", key="<stored value>", type_name=str(tag))


def _hashable(value: Any) -> Any:
    return tuple(value) if type(value) is list else value


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_DECODER = json.JSONDecoder(object_hook=_decode_tagged)
_encode_str = encode_basestring  # what json.dumps(str, ensure_ascii=False) writes


def encode(value: Any, *, key: str = "<value>") -> str:
    """Encode ``value`` as text (always valid JSON); raises
    [`CodecError`][flowcraft.distributed.CodecError] naming ``key`` and the type."""
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    try:
        if kind is int:
            return int.__repr__(value)  # as JSON writes it
        data = _to_json(value, key, "")
        try:
            return _ENCODER.encode(data)
        except ValueError:  # nan / inf somewhere: tag them (rare, so not checked on every float)
            return _ENCODER.encode(_tag_floats(data))
    except RecursionError:
        raise _fail(key, value, "a structure nested too deeply, or one that contains itself") from None
    except ValueError as error:
        raise CodecError(
            f"Context key {key!r} cannot be encoded: {error}", key=key, type_name=type(value).__name__
        ) from error


def decode(text: str | bytes, *, key: str = "<value>") -> Any:
    """Decode text made by [`encode`][flowcraft.distributed.encode] (never unpickles or evaluates anything)."""
    try:
        if type(text) is str:
            return _DECODER.decode(text)  # bare NaN / Infinity (older writers) are read
        return json.loads(text, object_hook=_decode_tagged)
    except RecursionError:
        raise CodecError(f"Stored value of {key!r} is nested too deeply to decode", key=key, type_name="str") from None
    except (ValueError, TypeError, KeyError, IndexError) as error:
        raise CodecError(
            f"Stored value of {key!r} is not valid flowcraft codec data: {error}", key=key, type_name="str"
        ) from error


_ACTIONS: dict[Any, str] = {}
_DECODED_ACTIONS: dict[str, Any] = {}
_ACTION_CACHE_SIZE = 1024


def encode_action(action: Any) -> str:
    """Encode a node's action (a string, a sentinel, or any codec-supported value); a
    ``StrEnum`` member travels as its value (edges match actions by their text)."""
    if isinstance(action, str) and type(action) is not str:
        action = str.__str__(action)
    if type(action) is str or type(action) is ActionSentinel:
        found = _ACTIONS.get(action)
        if found is None:
            found = encode(action, key="<action>")
            if len(_ACTIONS) < _ACTION_CACHE_SIZE:  # a graph has few actions: remember them
                _ACTIONS[action] = found
        return found
    return encode(action, key="<action>")


def decode_action(text: str | bytes | None) -> Any:
    """Decode an action made by `encode_action` (``None`` stays ``None``)."""
    if text is None:
        return None
    if type(text) is str:
        found = _DECODED_ACTIONS.get(text, _DECODED_ACTIONS)
        if found is not _DECODED_ACTIONS:
            return found
        value = decode(text, key="<action>")
        if (type(value) is str or type(value) is ActionSentinel) and len(_DECODED_ACTIONS) < _ACTION_CACHE_SIZE:
            _DECODED_ACTIONS[text] = value
        return value
    return decode(text, key="<action>")
