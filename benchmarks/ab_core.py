"""Same-run A/B of the in-memory core between two source trees (e.g. main and a branch).

    python benchmarks/ab_core.py OLD_SRC NEW_SRC [--rounds 7]

Each round runs, in fresh interpreters and alternating order, a chain of N no-op nodes
a fan-out of K sleeping branches, and the same K branches meeting at one join, with each
tree's ``flowcraft``; prints the medians
and the NEW/OLD ratios. No assertion: a tool for closing notes and reviews.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CASE = r"""
import asyncio, gc, json, sys, time
sys.path.insert(0, sys.argv[1])
from flowcraft import Flow, Node, ParallelFlow, TypedContext

class Noop(Node):
    pass

class Sleep(Node):
    async def exec(self, args):
        await asyncio.sleep(0.01)

def chain(n):
    nodes = [Noop() for _ in range(n)]
    for a, b in zip(nodes, nodes[1:]):
        a.next(b)
    return Flow(nodes[0])

async def timed(flow, repeat):
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        await flow.run(TypedContext())
        best = min(best, time.perf_counter() - started)
    return best

async def main():
    c = chain(10_000)
    for _ in range(10):
        await c.run(TypedContext())
    chain_s = await timed(c, 10)
    fan = Flow(ParallelFlow([Sleep() for _ in range(10_000)]))
    await fan.run(TypedContext())
    fan_s = await timed(fan, 3)
    branches = [Sleep() for _ in range(10_000)]
    join = Noop()
    for branch in branches:
        branch.next(join)
    fan_in = Flow(ParallelFlow(branches))
    await fan_in.run(TypedContext())
    join_s = await timed(fan_in, 3)
    print(json.dumps({"chain_us_per_node": chain_s / 10_000 * 1e6, "fanout_10k_s": fan_s, "fanin_join_10k_s": join_s}))

asyncio.run(main())
"""


def measure(src: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CASE, src], capture_output=True, text=True, check=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=7)
    opts = parser.parse_args()
    samples: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for i in range(opts.rounds):
        order = [("old", opts.old), ("new", opts.new)] if i % 2 == 0 else [("new", opts.new), ("old", opts.old)]
        for label, src in order:
            samples[label].append(measure(src))
    for key in samples["old"][0]:
        old = statistics.median(s[key] for s in samples["old"])
        new = statistics.median(s[key] for s in samples["new"])
        print(f"{key:20s} old {old:.4f}  new {new:.4f}  new/old {new / old:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
