"""Small building blocks shared by the core tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from flowcraft import Node, NodeArgs


class RecordingLogger:
    """A Logger that keeps every record as ``(level, message, fields)``."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def _add(self, level: str, message: str, context: Any = None, **fields: Any) -> None:
        data = dict(context or {})
        data.update(fields)
        self.records.append((level, message, data))

    def debug(self, message: str, context: Any = None, /, **fields: Any) -> None:
        self._add("debug", message, context, **fields)

    def info(self, message: str, context: Any = None, /, **fields: Any) -> None:
        self._add("info", message, context, **fields)

    def warn(self, message: str, context: Any = None, /, **fields: Any) -> None:
        self._add("warn", message, context, **fields)

    def error(self, message: str, context: Any = None, /, **fields: Any) -> None:
        self._add("error", message, context, **fields)

    def messages(self, level: str) -> list[str]:
        return [message for lvl, message, _ in self.records if lvl == level]


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
