"""The steps of the durable example: a six-step order pipeline, built by a factory.

``make_pipeline`` is a module-level function of no arguments, so a durable run stores it
by name (``"examples.durable.steps:make_pipeline"``) and any process can rebuild the
flow to finish the run. Each step sleeps ``params["delay"]`` seconds, so there is time to
interrupt it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

from flowcraft import Flow, Node, NodeArgs

STEPS = ("fetch", "validate", "reserve", "charge", "ship", "notify")


def say(text: str) -> None:
    print(text, flush=True)


class Step(Node):
    """One step: announces itself, works for a while, records what it did in the context."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.label = name
        self.number = STEPS.index(name) + 1
        self.with_id(name)  # stable node ids: the run's commits name them

    async def exec(self, args: NodeArgs[Any, Any]) -> Any:
        say(f"  step {self.number}/{len(STEPS)} {self.label} ...")
        await asyncio.sleep(float(args.params.get("delay", 1.0)))
        return await self.work(args)

    async def work(self, args: NodeArgs[Any, Any]) -> Any:
        return f"{self.label} ok"

    async def post(self, args: NodeArgs[Any, Any]) -> None:
        await args.ctx.set(self.label, args.exec_res)
        await args.ctx.set("done", [*await args.ctx.get("done", []), self.label])
        say(f"  step {self.number}/{len(STEPS)} {self.label} done")


class Charge(Step):
    """The step with an external effect: a payment, made exactly once.

    The payment provider (a JSON file here) refuses a second payment with the same
    idempotency key, and ``args.memo`` keeps the provider's answer with the run: a
    re-run of this step after a crash neither pays twice nor asks twice.
    """

    async def work(self, args: NodeArgs[Any, Any]) -> Any:
        key = str(args.idempotency_key)  # "<run id>:charge:1", the same on every re-run
        return await args.memo("payment", lambda: pay(Path(args.params["ledger"]), key, 42.0))


def pay(ledger: Path, key: str, amount: float) -> str:
    """A payment provider that deduplicates on the idempotency key."""
    payments: dict[str, float] = json.loads(ledger.read_text()) if ledger.exists() else {}
    if key in payments:
        return f"already paid {payments[key]:.2f} EUR ({key})"
    payments[key] = amount
    ledger.write_text(json.dumps(payments, indent=2))
    return f"paid {amount:.2f} EUR ({key})"


def make_pipeline() -> Flow:
    """fetch → validate → reserve → charge → ship → notify."""
    nodes = [Charge(name) if name == "charge" else Step(name) for name in STEPS]
    for before, after in itertools.pairwise(nodes):
        before.next(after)
    return Flow(nodes[0])
