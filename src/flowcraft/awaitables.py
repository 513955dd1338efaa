"""One helper for code that accepts sync or async callables."""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["maybe_await"]


async def maybe_await(value: Any) -> Any:
    """``await value`` when it is awaitable, else return it: the result of a sync-or-async call."""
    return (await value) if inspect.isawaitable(value) else value
