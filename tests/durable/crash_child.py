"""A process of the durable crash suite: opens a DurableExecutor on a store file,
starts (or finds again) one run of ``durable_nodes:make_twenty``, waits for it, and
prints ``{"action": ..., "context": ...}`` as JSON. ``FLOWCRAFT_TEST_CRASH_AT`` makes
it SIGKILL itself midway (see flowcraft.engine.worker)."""

from __future__ import annotations

import asyncio
import json
import sys

from flowcraft.durable import DurableExecutor


async def main(db: str, run_id: str) -> None:
    async with DurableExecutor(db, lease_ttl=3.0) as executor:
        handle = await executor.start("durable_nodes:make_twenty", run_id=run_id)
        action = await handle.result(timeout=60)
        print(json.dumps({"action": action, "context": await handle.context()}, sort_keys=True))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
