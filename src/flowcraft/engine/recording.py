"""The context a node sees on a worker: the run's context hash, decoded lazily, with
every ``set`` and ``delete`` recorded so that only the changed keys are written back.

Atomic changes (``update``, and ``set`` through a key with a merge policy) are also
recorded as operations: the commit carries, for each key changed only that way, the
encoded value the node started from, and the store refuses the commit when the key
has changed since; [`rebase`][flowcraft.engine.recording.RecordingContext.rebase] then
replays the operations on the newer value (optimistic concurrency).

Values the store left out (large ones) are fetched when first read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from ..context import key_name as _name
from ..context import merge_of
from .codec import decode, encode

__all__ = ["RecordingContext"]

_MISSING: Any = object()
IMMUTABLE_TYPES = frozenset({str, int, float, bool, type(None)})
"""Value types a decoded context value can be shared as (no node can change it in place)."""


class RecordingContext:
    """A [`Context`][flowcraft.Context] over encoded values that records its changes.

    Values are decoded on first read (``decoded``: values of ``raw`` known already, as
    ``immutable_values()`` of the node before's context gives them). `delta` returns the
    encoded values of the keys set and the names of the keys deleted since creation.

    ``remote`` names keys whose values are not in ``raw``: the first read of one fetches
    it with ``fetch`` (listing the whole context with ``values``, ``entries`` or
    ``to_dict`` fetches all of them at once with ``fetch_now``, which blocks).
    """

    __slots__ = (
        "_base", "_decoded", "_deleted", "_fetch", "_fetch_now", "_ops", "_raw", "_remote", "_set", "on_write"
    )  # fmt: skip

    def __init__(
        self,
        raw: Mapping[str, str],
        remote: Collection[str] = (),
        fetch: Callable[[Sequence[str]], Awaitable[Mapping[str, str | None]]] | None = None,
        fetch_now: Callable[[Sequence[str]], Mapping[str, str | None]] | None = None,
        decoded: Mapping[str, Any] | None = None,
    ) -> None:
        self.on_write: Callable[[str], None] | None = None
        """Called with the key before each ``set``/``delete`` (test fault injection)."""
        self._raw: dict[str, str] = dict(raw)
        self._decoded: dict[str, Any] = dict(decoded) if decoded else {}
        self._set: dict[str, Any] = {}
        self._deleted: set[str] = set()
        self._ops: dict[str, list[Callable[[Any], Any]]] | None = None
        """Key -> the atomic changes made to it, for keys whose value depends on the store's."""
        self._base: dict[str, str] = {}
        """Key -> the encoded value those changes started from (``""``: not set)."""
        self._remote: set[str] = set(remote)
        self._fetch = fetch
        self._fetch_now = fetch_now
        for name in self._remote:
            self._raw.setdefault(name, "")

    async def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        name = key if type(key) is str else _name(key)
        value = self._decoded.get(name, _MISSING)
        if value is not _MISSING:
            return value
        if name in self._remote:
            await self._fetch_one(name)
        text = self._raw.get(name)
        if text is None:
            return default
        value = self._decoded[name] = decode(text, key=name)
        return value

    async def _fetch_one(self, name: str) -> None:
        if self._fetch is None:
            raise RuntimeError(f"context key {name!r} was left in the store and this context cannot fetch it")
        self._fill(await self._fetch([name]))

    def _fill(self, found: Mapping[str, str | None]) -> None:
        """Take fetched values (``None``: the key is gone from the store)."""
        for name, text in found.items():
            if name not in self._remote:
                continue
            self._remote.discard(name)
            if text is None:
                self._raw.pop(name, None)
            else:
                self._raw[name] = text

    async def set(self, key: str, value: Any) -> RecordingContext:
        """Store ``value`` under ``key`` (merged when the key has a merge policy); returns the context."""
        if type(key) is str:
            name = key
        else:
            name = _name(key)
            policy = merge_of(key)
            if policy is not None:
                if name in self._remote:  # the merge starts from the stored value
                    await self._fetch_one(name)
                self._atomic(name, lambda old: policy.apply(name, None if old is _MISSING else old, value))
                return self
        if self.on_write is not None:
            self.on_write(name)
        if self._ops is not None:
            self._ops.pop(name, None)
        self._decoded[name] = value
        self._raw.setdefault(name, "")
        self._set[name] = value
        self._deleted.discard(name)
        self._remote.discard(name)
        return self

    async def has(self, key: str) -> bool:
        """Whether ``key`` is set."""
        return _name(key) in self._raw

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it was present."""
        name = _name(key)
        if self.on_write is not None:
            self.on_write(name)
        if self._ops is not None:
            self._ops.pop(name, None)
        present = self._raw.pop(name, None) is not None
        self._remote.discard(name)
        self._decoded.pop(name, None)
        self._set.pop(name, None)
        if present:
            self._deleted.add(name)
        return present

    async def update(self, key: str, fn: Callable[[Any], Any], default: Any = None) -> Any:
        """Store ``fn(current value or default)`` under ``key`` and return it; committed
        atomically (see [`Context.update`][flowcraft.Context.update])."""
        name = key if type(key) is str else _name(key)
        if name in self._remote:  # the update starts from the stored value
            await self._fetch_one(name)
        return self._atomic(name, lambda old: fn(default if old is _MISSING else old))

    def _atomic(self, name: str, op: Callable[[Any], Any]) -> Any:
        """Apply ``op`` (current value or ``_MISSING`` -> new value) and record it."""
        if self.on_write is not None:
            self.on_write(name)
        current = self._value(name) if name in self._raw else _MISSING
        value = op(current)
        if name not in self._set and name not in self._deleted:  # depends on the store's value
            if self._ops is None:
                self._ops = {}
            self._ops[name] = [op]
            self._base[name] = self._raw.get(name, "")
        elif self._ops is not None and name in self._ops:
            self._ops[name].append(op)
        self._decoded[name] = value
        self._raw.setdefault(name, "")
        self._set[name] = value
        self._deleted.discard(name)
        return value

    def expects(self) -> dict[str, str]:
        """For each key changed only atomically: the encoded value the changes started
        from (``""``: the key was not set). The commit applies only if these still hold."""
        if not self._ops:
            return {}
        return {name: self._base[name] for name in self._ops}

    def rebase(self, current: Mapping[str, str]) -> dict[str, str]:
        """Replay the atomic changes of the keys in ``current`` (key -> the store's encoded
        value now, ``""``: not set) on those values; their new encoded values.

        Raises:
            CodecError: a value cannot be decoded or encoded (names the key).
            Exception: whatever an update's ``fn`` or a merge policy raises.
        """
        ops = self._ops or {}
        changed: dict[str, str] = {}
        for name, text in current.items():
            if name not in ops:
                continue
            value = decode(text, key=name) if text else _MISSING
            for op in ops[name]:
                value = op(value)
            self._base[name] = text
            self._decoded[name] = self._set[name] = value
            changed[name] = encode(value, key=name)
        return changed

    def keys(self) -> Iterator[str]:
        """Iterate over the key names."""
        return iter(list(self._raw))

    def values(self) -> Iterator[Any]:
        """Iterate over the (decoded) values."""
        return iter([value for _, value in self.entries()])

    def entries(self) -> Iterator[tuple[str, Any]]:
        """Iterate over ``(name, value)`` pairs."""
        self._fetch_all()
        return iter([(name, self._value(name)) for name in list(self._raw)])

    def to_dict(self) -> dict[str, Any]:
        """A snapshot as a plain dict."""
        self._fetch_all()
        return {name: self._value(name) for name in list(self._raw)}

    def _fetch_all(self) -> None:
        if self._remote:
            if self._fetch_now is None:
                left = sorted(self._remote)
                raise RuntimeError(f"context keys {left!r} were left in the store and this context cannot fetch them")
            self._fill(self._fetch_now(sorted(self._remote)))

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
        return {name: value for name, value in self._decoded.items() if type(value) in IMMUTABLE_TYPES}

    def __repr__(self) -> str:
        return f"RecordingContext(keys={list(self._raw)!r})"
