"""Parallel branches that add to one context key, in memory and durably on SQLite.

Run it: ``python examples/tally/main.py``. Four reviewers add their scores to ``score``
at the same time. The careless version (get, think, set) loses scores; the atomic one
(``ctx.update`` and keys with merge policies) gets 14 in every executor.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.tally.reviewers import make_careless_flow, make_flow  # noqa: E402
from flowcraft import TypedContext  # noqa: E402
from flowcraft.durable import DurableExecutor  # noqa: E402
from flowcraft.graph import check_concurrency  # noqa: E402


async def main() -> None:
    for issue in check_concurrency(make_careless_flow())[:1]:
        print(f"validate: [{issue.type}] {issue.message.split(' (')[0]}")
    ctx = TypedContext()
    await make_flow().run(ctx)
    print(f"in memory:          score {ctx.to_dict()['score']}")
    with tempfile.TemporaryDirectory() as folder:
        async with DurableExecutor(str(Path(folder) / "tally.db")) as executor:
            careless = await executor.start("examples.tally.reviewers:make_careless_flow")
            await careless.result()
            print(f"durable, careless:  score {(await careless.context())['score']} (scores lost)")
            atomic = await executor.start("examples.tally.reviewers:make_flow")
            await atomic.result()
            context = await atomic.context()
    print(f"durable, atomic:    score {context['score']}")
    print(f"notes: {len(context['notes'])}, tags: {sorted(context['tags'])}")


if __name__ == "__main__":
    asyncio.run(main())
