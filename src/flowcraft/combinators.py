"""The nodes behind ``Node.map/filter/tap/to_context/with_lens``.

Each wraps a source node: it keeps the source's params, id, retry options and
``exec_fallback``, and never stores per-run state on itself, so one derived node may run
in several branches at once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from .actions import DEFAULT_ACTION, FILTER_FAILED
from .awaitables import maybe_await
from .context import ContextLens
from .node import Node, NodeArgs

__all__ = ["DerivedNode", "FilteredNode", "LensNode", "MappedNode", "TappedNode", "ToContextNode"]


class DerivedNode(Node[Any, Any, Any]):
    """A node that delegates its lifecycle to ``source`` and changes one part of it."""

    def __init__(self, source: Node[Any, Any, Any]) -> None:
        if not isinstance(source, Node):
            raise TypeError(f"{type(self).__name__} needs a Node to wrap, got {type(source).__name__}")
        super().__init__(source.max_retries, source.wait, source.timeout)
        if source.retry is not None:
            self.retry = source.retry
        self.source = source
        self.id = source.id
        self.params = dict(source.params)
        self.graph_data = source.graph_data

    @property
    def name(self) -> str:
        """The wrapped node's name."""
        return self.source.name

    async def prep(self, args: NodeArgs[Any, Any]) -> Any:
        return await maybe_await(self.source.prep(args))

    async def exec(self, args: NodeArgs[Any, Any]) -> Any:
        return await maybe_await(self.source.exec(args))

    async def post(self, args: NodeArgs[Any, Any]) -> Any:
        return await maybe_await(self.source.post(args))

    async def exec_fallback(self, args: NodeArgs[Any, Any]) -> Any:
        return await maybe_await(self.source.exec_fallback(args))


class MappedNode(DerivedNode):
    """``source.map(fn)``: ``exec`` returns ``fn(source result)``; ``post`` returns the default action."""

    def __init__(self, source: Node[Any, Any, Any], fn: Callable[[Any], Any]) -> None:
        super().__init__(source)
        self.fn = fn

    async def exec(self, args: NodeArgs[Any, Any]) -> Any:
        return await maybe_await(self.fn(await maybe_await(self.source.exec(args))))

    async def exec_fallback(self, args: NodeArgs[Any, Any]) -> Any:
        return await maybe_await(self.fn(await maybe_await(self.source.exec_fallback(args))))

    async def post(self, args: NodeArgs[Any, Any]) -> Any:
        return DEFAULT_ACTION


# The verdict of the filter that ran last in this task, for the NodeArgs of that call.
# Out of band, so the value a filter passes on (to ``to_context``, ``map``, ``tap``,
# middleware) is the value itself; per task (a context variable) and per call (the
# args), so concurrent runs of one node never mix verdicts.
_VERDICT: ContextVar[tuple[NodeArgs[Any, Any], bool] | None] = ContextVar("flowcraft_filter_verdict", default=None)


class FilteredNode(DerivedNode):
    """``source.filter(predicate)``: ``DEFAULT_ACTION`` if the result passes, else ``FILTER_FAILED``.

    ``exec`` returns the source's result unchanged; the verdict of each call is kept out
    of band (per task and per call), so concurrent runs don't mix them and the nodes
    wrapping a filter see the value. Chained filters must all hold.
    """

    def __init__(self, source: Node[Any, Any, Any], predicate: Callable[[Any], Any]) -> None:
        super().__init__(source)
        self.predicate = predicate

    async def _judge(self, args: NodeArgs[Any, Any], result: Any) -> Any:
        value = await maybe_await(result)
        inner = _VERDICT.get()  # set by a filter this one wraps, during this same call
        passed = (inner is None or inner[0] is not args or inner[1]) and bool(await maybe_await(self.predicate(value)))
        if not passed:
            args.logger.debug(f"[filter] predicate rejected the result of {self.name}")
        _VERDICT.set((args, passed))
        return value

    async def exec(self, args: NodeArgs[Any, Any]) -> Any:
        _VERDICT.set(None)
        return await self._judge(args, self.source.exec(args))

    async def exec_fallback(self, args: NodeArgs[Any, Any]) -> Any:
        _VERDICT.set(None)
        return await self._judge(args, self.source.exec_fallback(args))

    async def post(self, args: NodeArgs[Any, Any]) -> Any:
        verdict = _VERDICT.get()
        if verdict is None or verdict[0] is not args:  # exec did not run (a dry run)
            return DEFAULT_ACTION
        _VERDICT.set(None)
        return DEFAULT_ACTION if verdict[1] else FILTER_FAILED


class TappedNode(DerivedNode):
    """``source.tap(fn)``: calls ``fn(result)`` for its side effect; the result passes through."""

    def __init__(self, source: Node[Any, Any, Any], fn: Callable[[Any], Any]) -> None:
        super().__init__(source)
        self.fn = fn

    async def exec(self, args: NodeArgs[Any, Any]) -> Any:
        result = await maybe_await(self.source.exec(args))
        await maybe_await(self.fn(result))
        return result


class ToContextNode(DerivedNode):
    """``source.to_context(key)``: stores the ``exec`` result under ``key``; default action."""

    def __init__(self, source: Node[Any, Any, Any], key: str) -> None:
        super().__init__(source)
        self.key = key

    async def post(self, args: NodeArgs[Any, Any]) -> Any:
        await args.ctx.set(self.key, args.exec_res)
        return DEFAULT_ACTION


class LensNode(DerivedNode):
    """``source.with_lens(lens, value)``: sets the lens before the source's ``prep``."""

    def __init__(self, source: Node[Any, Any, Any], lens: ContextLens[Any], value: Any) -> None:
        super().__init__(source)
        self.lens = lens
        self.value = value

    async def prep(self, args: NodeArgs[Any, Any]) -> Any:
        await self.lens.set(self.value)(args.ctx)
        return await maybe_await(self.source.prep(args))
