"""The shared state of a run: the [`Context`][flowcraft.Context] protocol, [`TypedContext`][flowcraft.TypedContext],
typed [`ContextKey`][flowcraft.ContextKey] names, and lenses for declarative updates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload, runtime_checkable

if TYPE_CHECKING:
    from .merge import MergePolicy

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
    "merge_of",
]

T = TypeVar("T")
D = TypeVar("D")


class ContextKey(str, Generic[T]):
    """A named, typed context key, optionally with a merge policy.

    It *is* its name (a ``str`` subclass), so two keys with one name address the same
    entry, a plain string works too, and keys survive serialization between processes.

    With ``merge=`` (a [`MergePolicy`][flowcraft.merge.MergePolicy], a built-in's name
    ``"append"``/``"add"``/``"max"``/``"union"``, or a reducer ``(old, new) -> merged``),
    ``ctx.set(key, value)`` through this key stores the policy's merge of the current
    value and ``value``, atomically in every executor: parallel branches that add to one
    key keep every write. The policy travels with the key object the node's code uses
    (a plain string of the same name overwrites); ``delete`` and
    [`Context.update`][flowcraft.Context.update] ignore it.

    Examples:
        ```python
        USER = ContextKey[dict[str, str]]("user")
        await ctx.set(USER, {"name": "Ada"})
        user = await ctx.get(USER)        # typed as dict[str, str] | None

        SEEN = ContextKey[list[str]]("seen", merge="union")
        await ctx.set(SEEN, ["a"])        # from parallel branches: no write lost
        ```
    """

    merge: MergePolicy | None = None
    """The key's merge policy (``None``: a ``set`` overwrites)."""

    def __new__(cls, name: str, merge: MergePolicy | str | Callable[[Any, Any], Any] | None = None) -> ContextKey[T]:
        key = super().__new__(cls, name)
        if merge is not None:
            # local import: merge policies load with the first key that has one (import time)
            from .merge import merge_policy

            key.merge = merge_policy(merge)
        return key

    @property
    def name(self) -> str:
        """The key's name (the plain string it stands for)."""
        return str.__str__(self)

    def __repr__(self) -> str:
        if self.merge is not None:
            return f"ContextKey({str.__repr__(self)}, merge={self.merge.name})"
        return f"ContextKey({str.__repr__(self)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (ContextKey, (str.__str__(self), self.merge))


def context_key(
    name: str,
    type: type[T] | None = None,  # noqa: A002
    *,
    merge: MergePolicy | str | Callable[[Any, Any], Any] | None = None,
) -> ContextKey[T]:
    """Create a [`ContextKey`][flowcraft.ContextKey]; ``type`` only informs the type checker,
    ``merge`` is the key's merge policy (see [`merge_policy`][flowcraft.merge.merge_policy])."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a context key needs a non-empty string name, got {name!r}")
    return ContextKey(name, merge)


def merge_of(key: object) -> MergePolicy | None:
    """The merge policy a key carries (``None`` for a plain string or a key without one)."""
    return None if type(key) is str else getattr(key, "merge", None)


@runtime_checkable
class Context(Protocol):
    """The shared, mutable state of one run; async so it can live in a remote store.

    Implement it to back a run with another store (apply a key's merge policy,
    [`ContextKey.merge`][flowcraft.ContextKey.merge], in ``set``). Example:

    ```python
    class RedisContext:
        async def get(self, key, default=None): ...
        async def set(self, key, value): ...; return self
        async def has(self, key): ...
        async def delete(self, key): ...
        async def update(self, key, fn, default=None): ...  # atomic
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

    @overload
    async def update(self, key: ContextKey[T], fn: Callable[[T | None], T]) -> T: ...
    @overload
    async def update(self, key: ContextKey[T], fn: Callable[[T | D], T], default: D) -> T: ...
    @overload
    async def update(self, key: str, fn: Callable[[Any], Any], default: Any = None) -> Any: ...
    async def update(self, key: str, fn: Callable[[Any], Any], default: Any = None) -> Any:
        """Atomically store ``fn(current value or default)`` under ``key``; returns it.

        Parallel branches that update one key each see the others' updates: every update
        is applied exactly once, in every executor. On the job engine (durable and
        distributed runs) a node changes a copy of the context that is committed when it
        ends; when another node changed the key in between, ``fn`` is called again with
        the newer value before the commit — so ``fn`` must be pure (no side effects, a
        result that depends only on its argument), and the value this call returns is the
        one computed from the value the node saw. A key's merge policy does not apply:
        ``fn`` returns the whole new value.

        A context that cannot do better may implement it as ``get``, ``fn``, ``set`` with
        nothing awaited in between (atomic within one event loop); this default does that.
        """
        name = key_name(key)
        value = fn(await self.get(name, default))
        await self.set(name, value)
        return value

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
        """Store ``value`` under ``key`` (merged into the current value when the key has a
        merge policy); returns the context for chaining."""
        if type(key) is str:
            self._data[key] = value
            return self
        name = key_name(key)
        policy = merge_of(key)
        self._data[name] = value if policy is None else policy.apply(name, self._data.get(name), value)
        return self

    @overload
    async def update(self, key: ContextKey[T], fn: Callable[[T | None], T]) -> T: ...
    @overload
    async def update(self, key: ContextKey[T], fn: Callable[[T | D], T], default: D) -> T: ...
    @overload
    async def update(self, key: str, fn: Callable[[Any], Any], default: Any = None) -> Any: ...
    async def update(self, key: str, fn: Callable[[Any], Any], default: Any = None) -> Any:
        """Atomically store ``fn(current value or default)`` under ``key``; returns it
        (see [`Context.update`][flowcraft.Context.update])."""
        name = key if type(key) is str else key_name(key)
        data = self._data
        value = data[name] = fn(data.get(name, default))
        return value

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
        """A transform that stores ``fn(current value)`` under the key, atomically
        (see [`Context.update`][flowcraft.Context.update])."""
        key = self.key

        async def update_value(ctx: Context) -> Context:
            await ctx.update(key, fn)
            return ctx

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
