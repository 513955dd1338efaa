"""The context a node sees on a worker: the run's context hash, decoded lazily, with
every ``set`` and ``delete`` recorded so that only the changed keys are written back."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..context import key_name as _name
from .codec import decode, encode

__all__ = ["RecordingContext"]

_MISSING: Any = object()
_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


class RecordingContext:
    """A [`Context`][flowcraft.Context] over encoded values that records its changes.

    Values are decoded on first read (``decoded``: values of ``raw`` known already, as
    ``immutable_values()`` of the node before's context gives them). `delta` returns the
    encoded values of the keys set and the names of the keys deleted since creation.
    """

    __slots__ = ("_decoded", "_deleted", "_raw", "_set", "on_write")

    def __init__(self, raw: Mapping[str, str], decoded: Mapping[str, Any] | None = None) -> None:
        self.on_write: Callable[[str], None] | None = None
        """Called with the key before each ``set``/``delete`` (test fault injection)."""
        self._raw: dict[str, str] = dict(raw)
        self._decoded: dict[str, Any] = dict(decoded) if decoded else {}
        self._set: dict[str, Any] = {}
        self._deleted: set[str] = set()

    async def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        name = key if type(key) is str else _name(key)
        value = self._decoded.get(name, _MISSING)
        if value is not _MISSING:
            return value
        text = self._raw.get(name)
        if text is None:
            return default
        value = self._decoded[name] = decode(text, key=name)
        return value

    async def set(self, key: str, value: Any) -> RecordingContext:
        """Store ``value`` under ``key``; returns the context."""
        name = key if type(key) is str else _name(key)
        if self.on_write is not None:
            self.on_write(name)
        self._decoded[name] = value
        self._raw.setdefault(name, "")
        self._set[name] = value
        self._deleted.discard(name)
        return self

    async def has(self, key: str) -> bool:
        """Whether ``key`` is set."""
        return _name(key) in self._raw

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it was present."""
        name = _name(key)
        if self.on_write is not None:
            self.on_write(name)
        present = self._raw.pop(name, None) is not None
        self._decoded.pop(name, None)
        self._set.pop(name, None)
        if present:
            self._deleted.add(name)
        return present

    def keys(self) -> Iterator[str]:
        """Iterate over the key names."""
        return iter(list(self._raw))

    def values(self) -> Iterator[Any]:
        """Iterate over the (decoded) values."""
        return iter([value for _, value in self.entries()])

    def entries(self) -> Iterator[tuple[str, Any]]:
        """Iterate over ``(name, value)`` pairs."""
        return iter([(name, self._value(name)) for name in list(self._raw)])

    def to_dict(self) -> dict[str, Any]:
        """A snapshot as a plain dict."""
        return {name: self._value(name) for name in self._raw}

    def _value(self, name: str) -> Any:
        value = self._decoded.get(name, _MISSING)
        if value is _MISSING:
            value = self._decoded[name] = decode(self._raw[name], key=name)
        return value

    def delta(self) -> tuple[dict[str, str], list[str]]:
        """``(encoded values of the keys set, names of the keys deleted)``.

        Raises:
            CodecError: a value set cannot be encoded (names the key and type).
        """
        sets = {name: encode(value, key=name) for name, value in self._set.items()}
        return sets, sorted(self._deleted)

    def immutable_values(self) -> dict[str, Any]:
        """The values read or set so far whose type is immutable (exactly ``str``, ``int``,
        ``float``, ``bool`` or ``None``): a context over the same values after this
        node's commit can start from them instead of decoding them again (a mutable
        value is always decoded afresh, so no node sees another node's unsaved change)."""
        return {name: value for name, value in self._decoded.items() if type(value) in _IMMUTABLE}

    def __repr__(self) -> str:
        return f"RecordingContext(keys={list(self._raw)!r})"
