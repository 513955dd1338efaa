"""Issue 14, defect 8, on SQLite: four parallel branches each add ``"e"`` to ``trail``
with ``ctx.update`` or through keys with merge policies; the durable executor keeps
every update, as in memory (``tests/distributed/test_atomic_updates.py`` has Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import dist_nodes as d
import pytest

from flowcraft.durable import DurableExecutor


def run(db_path: str, mode: str) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        async with DurableExecutor(db_path, registry=d.REGISTRY) as executor:
            handle = await executor.start(d.build(d.appends(mode)), {"trail": "s"})
            await handle.result(timeout=30)
            return await handle.context()

    return asyncio.run(main())


@pytest.mark.timeout(60)
def test_plain_get_and_set_loses_updates_update_and_merge_keep_them(db_path: str) -> None:
    assert run(db_path, "plain")["trail"].count("e") < 4  # the defect: each branch read "s"
    assert run(db_path, "update")["trail"] == "seeee"
    merged = run(db_path, "merge")
    assert (merged["trail"], merged["count"], sorted(merged["seen"])) == ("seeee", 4, ["b0", "b1", "b2", "b3"])
