"""Middleware: functions that wrap the execution of every node of a flow.

A middleware is ``async def mw(args, next) -> action``. It may change what the node sees
by passing a modified copy of ``args`` to ``next``, short-circuit by not calling ``next``
(its return value becomes the action), or raise to stop the run. The first middleware
added is the outermost.

Examples:
    ```python
    async def timing(args, next):
        started = time.perf_counter()
        try:
            return await next(args)
        finally:
            args.logger.info(f"{args.name} took {time.perf_counter() - started:.3f}s")

    flow.use(timing)
    ```
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .node import AbstractNode, NodeArgs

__all__ = ["Middleware", "NextFn", "apply_middleware", "as_async_middleware", "compose_middleware"]

NextFn = Callable[["NodeArgs[Any, Any]"], Awaitable[Any]]
"""What a middleware calls to run the rest of the chain (and finally the node)."""

Middleware = Callable[["NodeArgs[Any, Any]", NextFn], Any]
"""``(args, next) -> action`` — ``async def`` or plain ``def``."""


AsyncMiddleware = Callable[["NodeArgs[Any, Any]", NextFn], Awaitable[Any]]
"""A middleware as a chain holds it: ``async (args, next) -> action`` (see `as_async_middleware`)."""


def as_async_middleware(middleware: Middleware) -> AsyncMiddleware:
    """Check ``middleware`` and return it as an ``async`` function (sync ones are wrapped once)."""
    if not callable(middleware):
        raise TypeError(
            f"middleware must be a callable (args, next) -> action, got {type(middleware).__name__}: {middleware!r}"
        )
    if inspect.iscoroutinefunction(middleware) or inspect.iscoroutinefunction(type(middleware).__call__):
        return middleware

    async def adapted(args: NodeArgs[Any, Any], next: NextFn) -> Any:  # noqa: A002
        result = middleware(args, next)  # a sync middleware may return next's awaitable
        return (await result) if inspect.isawaitable(result) else result

    adapted.__wrapped__ = middleware  # type: ignore[attr-defined]
    return adapted


def _link(middleware: AsyncMiddleware, next_fn: NextFn) -> NextFn:
    # A closure made once per link: the cheapest caller measured (per call, against a
    # callable class 0.05 µs less, against partial(mw, call_next=...) 0.08 µs less).
    link = lambda args: middleware(args, next_fn)  # noqa: E731
    link._flowcraft_link = (middleware, next_fn)  # type: ignore[attr-defined]
    return link


def chain_head(chain: NextFn) -> tuple[AsyncMiddleware, NextFn] | None:
    """``(outermost middleware, what it is given as next)`` of a composed chain, ``None``
    when ``chain`` is not one: a caller may run ``mw(args, next_fn)`` itself, without the
    link's frame (a walk does, once per node: ~0.03 µs less each)."""
    head: tuple[AsyncMiddleware, NextFn] | None = getattr(chain, "_flowcraft_link", None)
    return head


def compose_middleware(middleware: Sequence[Middleware], innermost: NextFn) -> NextFn:
    """Wrap ``innermost`` in ``middleware``, the first element outermost. Compose once, call often."""
    handler = innermost
    for mw in reversed(middleware):
        handler = _link(as_async_middleware(mw), handler)
    return handler


def apply_middleware(middleware: Sequence[Middleware], node: AbstractNode) -> NextFn:
    """``async (args) -> action``: ``node``'s full lifecycle wrapped by ``middleware``."""
    return compose_middleware(middleware, node.run_lifecycle)
