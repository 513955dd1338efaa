"""[`record_effects`][flowcraft.testing.record_effects]: run a flow and check that every
node touched only the context keys it declares (``reads`` / ``writes``), so the
declarations [`check_concurrency`][flowcraft.graph.check_concurrency] relies on stay true.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..context import Context, TypedContext
from ..executors.in_memory import InMemoryExecutor
from ..flow import Flow
from ..graph.concurrency import Effects, _node_effects
from ..node import AbstractNode, NodeArgs

__all__ = ["EffectsReport", "UndeclaredEffectError", "record_effects"]

ANY_KEY = "*"
"""What iterating the context (``keys()``, ``entries()``, ``to_dict()``) counts as reading."""


class UndeclaredEffectError(AssertionError):
    """A node touched a context key it does not declare (an ``AssertionError``, so
    test runners report it as a failed check)."""

    def __init__(self, report: EffectsReport) -> None:
        self.report = report
        lines = [
            f"node {node!r} {verb} {key!r} but does not declare it in {attr}"
            for node, attr, key in report.undeclared
            for verb in ("reads" if attr == "reads" else "writes",)
        ]
        super().__init__("; ".join(lines))


@dataclasses.dataclass(frozen=True, slots=True)
class EffectsReport:
    """What a run touched: node name → the keys it read and wrote, and the
    ``(node, "reads" | "writes", key)`` touches its declaration lacks."""

    action: Any
    context: dict[str, Any]
    touched: dict[str, Effects]
    undeclared: list[tuple[str, str, str]]


class _Touches(Context):
    """A context that forwards to ``inner`` and notes each key read or written."""

    def __init__(self, inner: Context, reads: set[str], writes: set[str]) -> None:
        self._inner, self._reads, self._writes = inner, reads, writes

    async def get(self, key: str, default: Any = None) -> Any:
        self._reads.add(str.__str__(key))
        return await self._inner.get(key, default)

    async def set(self, key: str, value: Any) -> Context:
        self._writes.add(str.__str__(key))
        await self._inner.set(key, value)
        return self

    async def has(self, key: str) -> bool:
        self._reads.add(str.__str__(key))
        return await self._inner.has(key)

    async def update(self, key: str, fn: Callable[[Any], Any], default: Any = None) -> Any:
        self._writes.add(str.__str__(key))  # an atomic update: a write (its read is part of it)
        return await self._inner.update(key, fn, default)

    async def delete(self, key: str) -> bool:
        self._writes.add(str.__str__(key))
        return await self._inner.delete(key)

    def keys(self) -> Iterator[str]:
        self._reads.add(ANY_KEY)
        return self._inner.keys()

    def values(self) -> Iterator[Any]:
        self._reads.add(ANY_KEY)
        return self._inner.values()

    def entries(self) -> Iterator[tuple[str, Any]]:
        self._reads.add(ANY_KEY)
        return self._inner.entries()

    def to_dict(self) -> dict[str, Any]:
        self._reads.add(ANY_KEY)
        return self._inner.to_dict()


class _EffectsExecutor(InMemoryExecutor):
    """The in-memory executor, with each user node's context wrapped in a `_Touches`."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, tuple[AbstractNode, set[str], set[str]]] = {}

    async def run_node(self, args: NodeArgs[Any, Any]) -> Any:
        node = args.node
        if node is None or node.holds_graph or node.is_structural or node.is_passthrough:
            return await super().run_node(args)
        name = type(node).__name__ if node.id is None else str(node.id)
        _, reads, writes = self.seen.setdefault(name, (node, set(), set()))
        outer = args.ctx
        args.ctx = _Touches(outer, reads, writes)
        try:
            return await super().run_node(args)
        finally:
            args.ctx = outer


async def record_effects(
    flow: Flow,
    ctx: Context | Mapping[str, Any] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    strict: bool = False,
    check: bool = True,
) -> EffectsReport:
    """Run ``flow`` in memory, noting every context key each node reads and writes.

    Reads are ``get`` and ``has``; writes are ``set`` and ``delete``; iterating the
    context reads ``"*"``. A node's declaration (``reads``/``writes`` class attributes,
    or ``data.reads``/``data.writes`` of the JSON node it was built from) must cover
    what it touched; a key it reads and also declares as written counts as declared.
    Nodes that declare nothing are skipped unless ``strict``.

    Raises:
        UndeclaredEffectError: with ``check`` (the default), when some node touched a key
            it does not declare; the error's ``report`` has the details.

    Examples:
        ```python
        async def test_declarations_are_true():
            report = await record_effects(make_flow(), {"order": {"id": 1}})
            assert report.context["total"] == 42
        ```
    """
    context: Context = ctx if isinstance(ctx, Context) else TypedContext(ctx or {})
    executor = _EffectsExecutor()
    action = await flow.run(context, params=dict(params) if params else None, executor=executor)
    touched: dict[str, Effects] = {}
    undeclared: list[tuple[str, str, str]] = []
    for name, (node, reads, writes) in executor.seen.items():
        touched[name] = Effects(frozenset(reads), frozenset(writes))
        declared = _node_effects(node)  # as the analysis reads it (class attributes, else JSON data)
        if declared is None:
            if not strict:
                continue
            declared = Effects()
        allowed_reads = declared.reads | declared.writes
        undeclared += [(name, "reads", k) for k in sorted(reads - allowed_reads)]
        undeclared += [(name, "writes", k) for k in sorted(writes - declared.writes)]
    report = EffectsReport(action, context.to_dict(), touched, undeclared)
    if check and undeclared:
        raise UndeclaredEffectError(report)
    return report
