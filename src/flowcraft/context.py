"""The shared state of a run: the [`Context`][flowcraft.Context] protocol, [`TypedContext`][flowcraft.TypedContext],
typed [`ContextKey`][flowcraft.ContextKey] names, and lenses for declarative updates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar, overload, runtime_checkable

__all__ = [
    "Context",
    "ContextKey",
    "ContextLens",
    "ContextTransform",
    "TypedContext",
    "compose_context",
    "context_key",
    "key_name",
    "lens",
]

T = TypeVar("T")
D = TypeVar("D")


class ContextKey(str, Generic[T]):
    """A named, typed context key.

    It *is* its name (a ``str`` subclass), so two keys with one name address the same
    entry, a plain string works too, and keys survive serialization between processes.

    Examples:
        ```python
        USER = ContextKey[dict[str, str]]("user")
        await ctx.set(USER, {"name": "Ada"})
        user = await ctx.get(USER)        # typed as dict[str, str] | None
        ```
    """

    __slots__ = ()

    @property
    def name(self) -> str:
        """The key's name (the plain string it stands for)."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"ContextKey({str.__repr__(self)})"


def context_key(name: str, type: type[T] | None = None) -> ContextKey[T]:  # noqa: A002
    """Create a [`ContextKey`][flowcraft.ContextKey]; ``type`` only informs the type checker."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a context key needs a non-empty string name, got {name!r}")
    return ContextKey(name)


@runtime_checkable
class Context(Protocol):
    """The shared, mutable state of one run; async so it can live in a remote store.

    Implement it to back a run with another store. Example:

    ```python
    class RedisContext:
        async def get(self, key, default=None): ...
        async def set(self, key, value): ...; return self
        async def has(self, key): ...
        async def delete(self, key): ...
        def keys(self): ...
        def values(self): ...
        def entries(self): ...
        def to_dict(self): ...
    ```
    """

    @overload
    async def get(self, key: ContextKey[T]) -> T | None: ...
    @overload
    async def get(self, key: ContextKey[T], default: D) -> T | D: ...
    @overload
    async def get(self, key: str, default: Any = None) -> Any: ...
    async def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""

    async def set(self, key: str, value: Any) -> Context:
        """Store ``value`` under ``key``; returns the context for chaining."""

    async def has(self, key: str) -> bool:
        """Whether ``key`` is set."""

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it was present."""

    def keys(self) -> Iterator[str]:
        """Iterate over the key names."""

    def values(self) -> Iterator[Any]:
        """Iterate over the values."""

    def entries(self) -> Iterator[tuple[str, Any]]:
        """Iterate over ``(name, value)`` pairs."""

    def to_dict(self) -> dict[str, Any]:
        """A snapshot as a plain dict keyed by names."""


class TypedContext:
    """A [`Context`][flowcraft.Context] backed by a dict (the default for in-memory runs).

    ``initial`` is a mapping or an iterable of ``(key, value)`` pairs.
    """

    __slots__ = ("_data",)

    def __init__(self, initial: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None) -> None:
        self._data: dict[str, Any] = {}
        if initial is not None:
            items = initial.items() if isinstance(initial, Mapping) else initial
            for key, value in items:
                self._data[key_name(key)] = value

    @overload
    async def get(self, key: ContextKey[T]) -> T | None: ...
    @overload
    async def get(self, key: ContextKey[T], default: D) -> T | D: ...
    @overload
    async def get(self, key: str, default: Any = None) -> Any: ...
    async def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        return self._data.get(key, default)

    async def set(self, key: str, value: Any) -> TypedContext:
        """Store ``value`` under ``key``; returns the context for chaining."""
        self._data[key if type(key) is str else key_name(key)] = value
        return self

    async def has(self, key: str) -> bool:
        """Whether ``key`` is set."""
        return key in self._data

    async def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it was present."""
        return self._data.pop(key, _MISSING) is not _MISSING

    def keys(self) -> Iterator[str]:
        """Iterate over the key names."""
        return iter(list(self._data))

    def values(self) -> Iterator[Any]:
        """Iterate over the values."""
        return iter(list(self._data.values()))

    def entries(self) -> Iterator[tuple[str, Any]]:
        """Iterate over ``(name, value)`` pairs."""
        return iter(list(self._data.items()))

    def to_dict(self) -> dict[str, Any]:
        """A shallow snapshot as a plain dict."""
        return dict(self._data)

    def __repr__(self) -> str:
        return f"TypedContext({self._data!r})"


_MISSING = object()


def key_name(key: object) -> str:
    """The plain-string name of a context key (a ``str`` or [`ContextKey`][flowcraft.ContextKey])."""
    if isinstance(key, str):
        return str.__str__(key)
    raise TypeError(f"context keys must be str or ContextKey, got {type(key).__name__}: {key!r}")


ContextTransform = Callable[[Context], Awaitable[Context]]
"""An async function that changes a context and returns it (see [`lens`][flowcraft.lens])."""


class ContextLens(Generic[T]):
    """Reads and builds updates for one context key. Create with [`lens`][flowcraft.lens]."""

    __slots__ = ("key",)

    def __init__(self, key: ContextKey[T] | str) -> None:
        self.key = key

    async def get(self, ctx: Context) -> T | None:
        """The current value of the key in ``ctx``."""
        value: T | None = await ctx.get(self.key)
        return value

    def set(self, value: T) -> ContextTransform:
        """A transform that stores ``value`` under the key."""
        key = self.key

        async def set_value(ctx: Context) -> Context:
            return await ctx.set(key, value)

        return set_value

    def update(self, fn: Callable[[T | None], T]) -> ContextTransform:
        """A transform that stores ``fn(current value)`` under the key."""
        key = self.key

        async def update_value(ctx: Context) -> Context:
            return await ctx.set(key, fn(await ctx.get(key)))

        return update_value


def lens(key: ContextKey[T] | str) -> ContextLens[T]:
    """A [`ContextLens`][flowcraft.ContextLens] for ``key``."""
    return ContextLens(key)


def compose_context(*transforms: ContextTransform) -> ContextTransform:
    """One transform applying ``transforms`` in order."""

    async def composed(ctx: Context) -> Context:
        for transform in transforms:
            ctx = await transform(ctx)
        return ctx

    return composed
