"""A process of the waits suite. ``start DB RUN FACTORY``: start a run, print its open
waits when it pauses (or parks on a timer), then stay alive until killed.
``resume DB RUN WAIT VALUE ACTION``: resume it and print the outcome. ``finish DB RUN``:
wait for the run (its timers fire here) and print the outcome."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from flowcraft import RunSuspended
from flowcraft.durable import DurableExecutor


async def main(mode: str, db: str, run_id: str, *rest: str) -> None:
    async with DurableExecutor(db, lease_ttl=2.0) as executor:
        if mode == "start":
            handle = await executor.start(rest[0], run_id=run_id)
            try:
                await handle.result(timeout=0.5)
            except RunSuspended as error:
                print(json.dumps({"waits": sorted(wait.id for wait in error.waits)}), flush=True)
            except TimeoutError:  # parked on a timer: result() waits through it
                print(json.dumps({"state": (await handle.status()).state, "at": time.time()}), flush=True)
            await asyncio.sleep(3600)
        elif mode == "resume":
            wait_id, value, action = rest
            chosen = None if action == "default" else action
            handle = await executor.resume(run_id, wait_id, json.loads(value), action=chosen)
            try:
                action = await handle.result(timeout=30)
            except RunSuspended as error:  # other waits are still open
                action = {"awaiting": sorted(wait.id for wait in error.waits)}
            print(json.dumps({"action": action, "context": await handle.context()}, default=str))
        else:
            handle = await executor.handle(run_id)
            action = await handle.result(timeout=30)
            print(json.dumps({"action": action, "context": await handle.context(), "at": time.time()}, default=str))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
