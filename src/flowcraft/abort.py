"""Cooperative cancellation: [`AbortController`][flowcraft.AbortController],
[`AbortSignal`][flowcraft.AbortSignal] and [`sleep`][flowcraft.sleep].

A run checks its signal before each phase, between retry attempts, between nodes and
between batch items. Node code that waits for a long time should use [`sleep`][flowcraft.sleep] or
``await signal.wait()`` so an abort interrupts it at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .errors import AbortError

__all__ = ["AbortController", "AbortSignal", "sleep"]

AbortListener = Callable[[Any], object]


class AbortSignal:
    """Tells whether a run was aborted, and why; observed by nodes and executors.

    Create one through [`AbortController`][flowcraft.AbortController]; it is aborted once and stays aborted.
    ``AbortController.abort()`` may be called from any thread: waiting coroutines
    (``wait()``, [`sleep`][flowcraft.sleep]) are woken first, on their own event loop; then
    the listeners run, in the thread that aborts (a listener that touches a loop must use
    ``loop.call_soon_threadsafe``). A listener that raises is logged (logger
    ``"flowcraft"``) and the others still run.
    """

    __slots__ = ("_listeners", "_reason", "_waiters", "aborted")

    aborted: bool
    """``True`` once the controller's ``abort()`` has been called (read it; only the
    controller sets it). A plain attribute, not a property: executors read it between
    every two phases of every node."""

    def __init__(self) -> None:
        self.aborted = False
        self._reason: Any = None
        self._listeners: list[AbortListener] = []
        self._waiters: list[asyncio.Future[Any]] = []

    @property
    def reason(self) -> Any:
        """The value given to ``abort(reason)``; an [`AbortError`][flowcraft.AbortError] when none was given."""
        return self._reason

    def add_listener(self, listener: AbortListener) -> None:
        """Call ``listener(reason)`` when the signal aborts (at once if it already has)."""
        if self.aborted:
            listener(self._reason)
        else:
            self._listeners.append(listener)

    def remove_listener(self, listener: AbortListener) -> None:
        """Stop calling ``listener``; a listener that was never added is ignored."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def wait(self) -> Any:
        """Wait until the signal aborts; returns the reason."""
        if self.aborted:
            return self._reason
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            return await future
        finally:
            if future in self._waiters:
                self._waiters.remove(future)

    def throw_if_aborted(self) -> None:
        """Raise [`AbortError`][flowcraft.AbortError] if the signal has aborted."""
        if self.aborted:
            raise self.error()

    def error(self) -> AbortError:
        """A fresh [`AbortError`][flowcraft.AbortError] describing this abort (carrying ``reason``)."""
        reason = self._reason
        message = str(reason) if isinstance(reason, AbortError) else f"The workflow was aborted: {reason!r}"
        return AbortError(message, reason=reason)

    def _abort(self, reason: Any) -> None:
        if self.aborted:
            return
        self.aborted = True
        self._reason = AbortError("The workflow was aborted.") if reason is None else reason
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            _resolve_soon(waiter, self._reason)
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            try:
                listener(self._reason)
            except Exception:  # one broken listener must not stop the others (or the abort)
                # local import: logging loads on first use, keeping `import flowcraft` cheap
                import logging

                logging.getLogger("flowcraft").exception("abort listener %r raised; the abort goes on", listener)


class AbortController:
    """Owns an [`AbortSignal`][flowcraft.AbortSignal] and aborts it.

    Examples:
        ```python
        controller = AbortController()
        task = asyncio.create_task(flow.run(ctx, controller=controller))
        controller.abort("user pressed stop")
        ```
    """

    __slots__ = ("signal",)

    def __init__(self) -> None:
        self.signal = AbortSignal()

    def abort(self, reason: Any = None) -> None:
        """Abort the signal; later calls do nothing."""
        self.signal._abort(reason)


def _resolve_soon(future: asyncio.Future[Any], value: Any) -> None:
    """Set ``future``'s result, from its own loop's thread or (thread-safely) from another."""
    loop = future.get_loop()
    if asyncio._get_running_loop() is loop:
        if not future.done():
            future.set_result(value)
    elif not loop.is_closed():
        loop.call_soon_threadsafe(_set_if_pending, future, value)


def _set_if_pending(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


NEVER_ABORTED = AbortSignal()
"""A shared signal that is never aborted, used when a run was given none."""


async def sleep(seconds: float, signal: AbortSignal | None = None) -> None:
    """Sleep ``seconds``, raising [`AbortError`][flowcraft.AbortError] as soon as ``signal`` aborts."""
    if signal is None or signal is NEVER_ABORTED:
        await asyncio.sleep(seconds)
        return
    signal.throw_if_aborted()
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def wake(_reason: Any = None) -> None:
        _resolve_soon(future, None)

    handle = loop.call_later(seconds, wake)
    signal.add_listener(wake)
    try:
        await future
    finally:
        handle.cancel()
        signal.remove_listener(wake)
    signal.throw_if_aborted()
