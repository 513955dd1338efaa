"""Small building blocks shared by the core tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from flowcraft import Node, NodeArgs
from flowcraft.testing import RecordingLogger

__all__ = ["Fn", "RecordingLogger", "Step", "run"]


class Step(Node):
    """Appends its id to the list in ``ctx["trail"]`` (in ``exec``), optionally after a delay,
    and returns ``action`` from ``post``."""

    def __init__(self, id: str, action: Any = None, delay: float = 0.0, **options: Any) -> None:
        super().__init__(**options)
        self.with_id(id)
        self.action = action
        self.delay = delay

    async def exec(self, args: NodeArgs) -> Any:
        if self.delay:
            await asyncio.sleep(self.delay)
        trail = await args.ctx.get("trail")
        if trail is None:
            trail = []
            await args.ctx.set("trail", trail)
        trail.append(self.id)
        return self.id

    async def post(self, args: NodeArgs) -> Any:
        return self.action


class Fn(Node):
    """A node whose exec is ``fn(args)`` (sync or async) and whose post returns ``action``."""

    def __init__(
        self, fn: Callable[[NodeArgs], Any], action: Any = None, id: str | None = None, **options: Any
    ) -> None:
        super().__init__(**options)
        self.fn = fn
        self.action = action
        if id is not None:
            self.with_id(id)

    async def exec(self, args: NodeArgs) -> Any:
        result = self.fn(args)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    async def post(self, args: NodeArgs) -> Any:
        return self.action


def run(coro: Any) -> Any:
    return asyncio.run(coro)
