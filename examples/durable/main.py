"""A durable run you can kill midway: run it again and it finishes where it stopped.

Run it: ``python examples/durable/main.py [--store FILE] [--run-id ID] [--delay S]``.
Stop it with Ctrl-C (or ``kill -9``) during a step, then run the same command again: the
steps already committed are not run again; the step in flight runs again from the
start (its payment, keyed by the idempotency key, is made once).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flowcraft.durable import DurableExecutor, RunNotFoundError  # noqa: E402

FACTORY = "examples.durable.steps:make_pipeline"


async def main(store: str, run_id: str, delay: float, ledger: str) -> None:
    async with DurableExecutor(store) as executor:
        try:
            before = (await (await executor.handle(run_id)).status()).state
        except RunNotFoundError:
            before = None
        params = {"delay": delay, "ledger": ledger}
        handle = await executor.start(FACTORY, {"order": "A-1001"}, run_id=run_id, params=params)
        if before is None:
            print(f"run {run_id} started in {store} (stop it midway, then run this again)", flush=True)
        elif run_id in executor.taken_over:
            print(f"run {run_id} was interrupted: going on from its last commit", flush=True)
        elif before in ("pending", "running"):
            print(f"run {run_id} is running in another process: waiting for it (if that process was just killed, "
                  "this one takes the run over when its lease expires)", flush=True)  # fmt: skip
        else:
            print(f"run {run_id} found in {store}: it already ended ({before})", flush=True)
        await handle.result()
        context = await handle.context()
        print(f"run {run_id} completed: {', '.join(context['done'])}")
        print(f"payment: {context['charge']}")
        print(f"(to start over: --run-id another-id, or delete {store})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default="durable-example.db", help="the run store file (default %(default)s)")
    parser.add_argument("--run-id", default="order-A-1001", help="the run's id (default %(default)s)")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds each step takes (default %(default)s)")
    options = parser.parse_args()
    try:
        ledger = Path(options.store).resolve().with_suffix(".ledger.json")  # the payment provider's records
        asyncio.run(main(options.store, options.run_id, options.delay, str(ledger)))
    except KeyboardInterrupt:
        print(f"\ninterrupted: run the same command again to finish run {options.run_id}")
        sys.exit(130)
