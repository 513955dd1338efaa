"""Merge policies: how a ``set`` of a context key combines with the value already there.

A [`ContextKey`][flowcraft.ContextKey] created with ``merge=`` makes every
``ctx.set(key, value)`` store ``policy(current, value)`` instead of ``value``, applied
atomically against the run's current value in every executor (in memory, on the job
engine's stores, on SQLite and on Redis). Parallel branches can then add to one key
without losing each other's writes:

```python
from flowcraft import ContextKey
from flowcraft.merge import append

TRAIL = ContextKey[str]("trail", merge=append)
# in each parallel branch: await ctx.set(TRAIL, "e")  -> "s" becomes "seeee"
```

The built-in policies (also accepted by name, ``merge="append"``):

- [`append`][flowcraft.merge.append]: concatenate two ``str``, two ``list`` (a
  ``tuple`` is appended to a list too) or two ``tuple``;
- [`add`][flowcraft.merge.add]: add numbers (``int``, ``float``, ``Decimal``);
- [`max`][flowcraft.merge.max]: keep the larger value;
- [`union`][flowcraft.merge.union]: collect distinct items. The stored form is a
  ``list`` (JSON-friendly): the items already there, then each new item not yet in it.
  The value set is a ``list``, ``tuple``, ``set`` or ``frozenset`` (a set's items are
  added in sorted order when they can be sorted); wrap a single item in a list.

Any other callable ``(old, new) -> merged`` is a *reducer*. ``old`` is ``None`` when the
key is not set (or holds ``None``); the built-ins then store ``new`` as it is (``union``:
its distinct items as a list). A reducer must be pure — on the job engine it may be
called again with a fresher ``old`` when another branch committed first.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["MergePolicy", "add", "append", "max", "merge_policy", "union"]


class MergePolicy:
    """A named merge function ``(old, new) -> merged`` (see the module docstring).

    Calling it merges; [`apply`][flowcraft.merge.MergePolicy.apply] does the same and
    names the key when the values do not fit the policy.
    """

    __slots__ = ("_fn", "name")

    def __init__(self, name: str, fn: Callable[[Any, Any], Any]) -> None:
        if not callable(fn):
            raise TypeError(f"a merge policy needs a callable (old, new) -> merged, got {type(fn).__name__}")
        self.name = name
        """The policy's name (``"append"``, ..., or the reducer's qualified name)."""
        self._fn = fn

    def __call__(self, old: Any, new: Any) -> Any:
        return self._fn(old, new)

    def apply(self, key: str, old: Any, new: Any) -> Any:
        """``self(old, new)``; a ``TypeError`` or ``ValueError`` is raised again naming ``key``.

        Raises:
            TypeError: the values do not fit the policy (names the key, the policy and the types).
        """
        try:
            return self._fn(old, new)
        except (TypeError, ValueError) as error:
            raise TypeError(f"context key {key!r} (merge={self.name}): {error}") from error

    def __repr__(self) -> str:
        return f"MergePolicy({self.name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        if _NAMED.get(self.name) is self:
            return (merge_policy, (self.name,))
        return (MergePolicy, (self.name, self._fn))


def _types(old: Any, new: Any) -> str:
    return f"{type(old).__name__} and {type(new).__name__}"


def _append(old: Any, new: Any) -> Any:
    if old is None:
        return new
    if isinstance(old, str) and isinstance(new, str):
        return old + new
    if isinstance(old, list) and isinstance(new, list | tuple):
        return [*old, *new]
    if isinstance(old, tuple) and isinstance(new, tuple):
        return old + new
    raise TypeError(f"append joins two str, two lists or two tuples, got {_types(old, new)}")


def _is_number(value: Any) -> bool:
    if isinstance(value, int | float):
        return not isinstance(value, bool)
    # A Decimal exists only once `decimal` is loaded: `import flowcraft` need not load it (~1 ms).
    decimal = sys.modules.get("decimal")
    return decimal is not None and isinstance(value, decimal.Decimal)


def _add(old: Any, new: Any) -> Any:
    if not _is_number(new):
        raise TypeError(f"add sums numbers (int, float, Decimal), got {type(new).__name__}")
    if old is None:
        return new
    if not _is_number(old):
        raise TypeError(f"add sums numbers (int, float, Decimal), the key holds a {type(old).__name__}")
    return old + new


def _max(old: Any, new: Any) -> Any:
    if old is None:
        return new
    return new if new > old else old


def _items(value: Any, what: str) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    raise TypeError(f"union collects a list, tuple, set or frozenset, {what} a {type(value).__name__}: wrap a "
                    "single item in a list")  # fmt: skip


def _union(old: Any, new: Any) -> Any:
    merged: list[Any] = [] if old is None else _items(old, "the key holds")
    for item in _items(new, "got"):
        if item not in merged:
            merged.append(item)
    return merged


append = MergePolicy("append", _append)
"""Concatenate: ``"s"`` then ``"e"`` gives ``"se"``; ``[1]`` then ``[2]`` gives ``[1, 2]``."""
add = MergePolicy("add", _add)
"""Add numbers: ``1`` then ``2`` gives ``3``."""
max = MergePolicy("max", _max)  # noqa: A001 - the policy's name
"""Keep the larger: ``3`` then ``2`` gives ``3``."""
union = MergePolicy("union", _union)
"""Collect distinct items in a list: ``["a"]`` then ``["b", "a"]`` gives ``["a", "b"]``."""

_NAMED: dict[str, MergePolicy] = {policy.name: policy for policy in (append, add, max, union)}


def merge_policy(spec: MergePolicy | str | Callable[[Any, Any], Any]) -> MergePolicy:
    """The [`MergePolicy`][flowcraft.merge.MergePolicy] for ``spec``: a policy, the name
    of a built-in (``"append"``, ``"add"``, ``"max"``, ``"union"``), or a reducer
    ``(old, new) -> merged``.

    Raises:
        ValueError: an unknown policy name (the message lists the known ones).
        TypeError: ``spec`` is neither a name nor callable.

    Examples:
        ```python
        from flowcraft.merge import merge_policy

        assert merge_policy("add")(1, 2) == 3
        assert merge_policy(lambda old, new: (old or 0) * new)(3, 4) == 12
        ```
    """
    if isinstance(spec, MergePolicy):
        return spec
    if isinstance(spec, str):
        found = _NAMED.get(spec)
        if found is None:
            raise ValueError(f"unknown merge policy {spec!r}: use one of {', '.join(sorted(_NAMED))}, or pass a "
                             "reducer (old, new) -> merged")  # fmt: skip
        return found
    if callable(spec):
        name = getattr(spec, "__qualname__", None) or builtins.repr(spec)
        return MergePolicy(str(name), spec)
    raise TypeError(f"merge= takes a policy name, a MergePolicy or a reducer (old, new) -> merged, got "
                    f"{type(spec).__name__}: {spec!r}")  # fmt: skip
