"""One of several processes sharing a store file: starts ``count`` runs of
``durable_nodes:make_small`` named ``<prefix>-<i>``, then keeps its executor open
(taking over runs of processes that died) until every run in the file has stopped and
``total`` runs exist (or none has been active for 2 s), or ``deadline`` seconds passed.
Prints how many runs it recovered."""

from __future__ import annotations

import asyncio
import sys
import time

from flowcraft.durable import DurableExecutor


async def main(db: str, prefix: str, count: int, total: int, deadline: float) -> None:
    until = time.monotonic() + deadline
    async with DurableExecutor(db, lease_ttl=1.5) as executor:
        handles = [await executor.start("durable_nodes:make_small", run_id=f"{prefix}-{i}") for i in range(count)]
        for handle in handles:
            await handle.result(timeout=deadline)
        quiet_since = time.monotonic()
        while time.monotonic() < until:
            await executor.recover()
            runs = await executor.runs(limit=10_000)
            if any(run.state in ("pending", "running") for run in runs):
                quiet_since = time.monotonic()
            elif len(runs) >= total or time.monotonic() - quiet_since > 2.0:
                break
            await asyncio.sleep(0.1)
    print(f"recovered {len(executor.taken_over)}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])))
