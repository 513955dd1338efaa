"""Functional helpers: nodes from plain functions, and collection flows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from .awaitables import maybe_await
from .context import Context, ContextTransform, compose_context
from .flow import Flow
from .node import AbstractNode, Node, NodeArgs
from .patterns import SequenceFlow

__all__ = [
    "compose",
    "context_node",
    "filter_collection",
    "map_collection",
    "map_node",
    "pipeline",
    "reduce_collection",
    "transform_node",
]

T = TypeVar("T")
U = TypeVar("U")
V = TypeVar("V")


def _require_callable(fn: object, what: str) -> None:
    if not callable(fn):
        raise TypeError(f"{what} expects a callable, got {type(fn).__name__}: {fn!r}")


class _FunctionNode(Node[Any, Any, Any]):
    def __init__(self, fn: Callable[..., Any], with_ctx: bool) -> None:
        super().__init__()
        self.fn = fn
        self.with_ctx = with_ctx

    async def exec(self, args: NodeArgs[Any, Any]) -> Any:
        if self.with_ctx:
            return await maybe_await(self.fn(args.ctx, args.params))
        return await maybe_await(self.fn(args.params))


def map_node(fn: Callable[[dict[str, Any]], Any]) -> Node[Any, Any, Any]:
    """A node whose ``exec`` returns ``fn(params)`` (sync or async)."""
    _require_callable(fn, "map_node()")
    return _FunctionNode(fn, with_ctx=False)


def context_node(fn: Callable[[Context, dict[str, Any]], Any]) -> Node[Any, Any, Any]:
    """A node whose ``exec`` returns ``fn(ctx, params)`` (sync or async)."""
    _require_callable(fn, "context_node()")
    return _FunctionNode(fn, with_ctx=True)


class _TransformNode(Node[Any, Any, Any]):
    def __init__(self, transform: ContextTransform) -> None:
        super().__init__()
        self.transform = transform

    async def prep(self, args: NodeArgs[Any, Any]) -> None:
        await self.transform(args.ctx)


def transform_node(*transforms: ContextTransform) -> Node[Any, Any, Any]:
    """A node that applies context ``transforms`` (from [`lens`][flowcraft.lens]) in order."""
    for transform in transforms:
        _require_callable(transform, "transform_node()")
    return _TransformNode(compose_context(*transforms))


def pipeline(*nodes: AbstractNode) -> SequenceFlow:
    """A [`SequenceFlow`][flowcraft.SequenceFlow] of ``nodes`` (none: a flow that runs nothing and returns
    ``DEFAULT_ACTION``)."""
    return SequenceFlow(*nodes)


def compose(f: Callable[[U], V | Awaitable[V]], g: Callable[[T], U | Awaitable[U]]) -> Callable[[T], Awaitable[V]]:
    """``async x -> f(g(x))``; either function may be sync or async."""
    _require_callable(f, "compose()")
    _require_callable(g, "compose()")

    async def composed(value: T) -> V:
        result: V = await maybe_await(f(await maybe_await(g(value))))
        return result

    return composed


class _CollectionFlow(Flow):
    def __init__(self, items: Iterable[Any], fn: Callable[..., Any], what: str) -> None:
        super().__init__()
        _require_callable(fn, what)
        self.items = list(items)
        self.fn = fn


class _MapCollection(_CollectionFlow):
    async def exec(self, args: NodeArgs[Any, Any]) -> list[Any]:
        return list(await asyncio.gather(*(maybe_await(self.fn(item)) for item in self.items)))


class _FilterCollection(_CollectionFlow):
    async def exec(self, args: NodeArgs[Any, Any]) -> list[Any]:
        verdicts = await asyncio.gather(*(maybe_await(self.fn(item)) for item in self.items))
        return [item for item, keep in zip(self.items, verdicts, strict=True) if keep]


class _ReduceCollection(_CollectionFlow):
    def __init__(self, items: Iterable[Any], fn: Callable[..., Any], initial: Any) -> None:
        super().__init__(items, fn, "reduce_collection()")
        self.initial = initial

    async def exec(self, args: NodeArgs[Any, Any]) -> Any:
        accumulator = self.initial
        for item in self.items:
            args.signal.throw_if_aborted()
            accumulator = await maybe_await(self.fn(accumulator, item))
        return accumulator


def map_collection(items: Iterable[T], fn: Callable[[T], U | Awaitable[U]]) -> Flow:
    """A flow whose result (the value of ``run``) is ``[fn(item) for item in items]``, run concurrently."""
    return _MapCollection(items, fn, "map_collection()")


def filter_collection(items: Iterable[T], predicate: Callable[[T], bool | Awaitable[bool]]) -> Flow:
    """A flow whose result is the items for which ``predicate`` holds (order kept)."""
    return _FilterCollection(items, predicate, "filter_collection()")


def reduce_collection(items: Iterable[T], reducer: Callable[[U, T], U | Awaitable[U]], initial: U) -> Flow:
    """A flow whose result folds ``items`` with ``reducer`` from ``initial``, in order (abortable)."""
    return _ReduceCollection(items, reducer, initial)
