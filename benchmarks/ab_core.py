"""Same-run A/B of the in-memory core between two source trees (e.g. main and a branch).

    python benchmarks/ab_core.py OLD_SRC NEW_SRC [--rounds 7] [--only chain|w1|fanout|fanin]

Each round runs, in fresh interpreters and alternating order, a chain of N no-op nodes
(no phases), W1's chain (N nodes with an ``async def exec``, as ``scripts/bench`` runs it)
beside a plain ``await step()`` loop, a fan-out of K sleeping branches, and the same K
branches meeting at one join, with each tree's ``flowcraft``; prints the medians, ranges
and the NEW/OLD ratios. W1 is timed in the thread's CPU time (``time.thread_time``): on a
shared machine wall time mostly measures the other processes. No assertion: a tool for
closing notes and reviews.
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

class W1Noop(Node):
    async def exec(self, args):
        return None

async def step():
    return None

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

async def w1(n, repeat):
    flow = Flow()
    current = flow.start(W1Noop())
    for _ in range(n - 1):
        current = current.next(W1Noop())
    steps = [step] * n

    async def loop():
        for s in steps:
            await s()

    for _ in range(10):  # CPython 3.11 specialises from a function's 8th call
        await flow.run(TypedContext())
        await loop()
    best_flow = best_loop = float("inf")
    for _ in range(repeat):  # interleaved: a busy moment hits both
        started = time.thread_time()
        await flow.run(TypedContext())
        best_flow = min(best_flow, time.thread_time() - started)
        started = time.thread_time()
        await loop()
        best_loop = min(best_loop, time.thread_time() - started)
    return {"w1_chain_cpu_us_per_node": best_flow / n * 1e6, "w1_chain_vs_await_loop": best_flow / best_loop}

async def main():
    only = sys.argv[2]
    out = {}
    if only in ("all", "chain"):
        c = chain(10_000)
        for _ in range(10):
            await c.run(TypedContext())
        out["chain_us_per_node"] = await timed(c, 10) / 10_000 * 1e6
    if only in ("all", "w1"):
        out.update(await w1(10_000, 30))
    if only in ("all", "fanout"):
        fan = Flow(ParallelFlow([Sleep() for _ in range(10_000)]))
        await fan.run(TypedContext())
        out["fanout_10k_s"] = await timed(fan, 3)
    if only in ("all", "fanin"):
        branches = [Sleep() for _ in range(10_000)]
        join = Noop()
        for branch in branches:
            branch.next(join)
        fan_in = Flow(ParallelFlow(branches))
        await fan_in.run(TypedContext())
        out["fanin_join_10k_s"] = await timed(fan_in, 3)
    print(json.dumps(out))

asyncio.run(main())
"""


def measure(src: str, only: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CASE, src, only], capture_output=True, text=True, check=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", choices=("all", "chain", "w1", "fanout", "fanin"), default="all")
    opts = parser.parse_args()
    samples: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for i in range(opts.rounds):
        order = [("old", opts.old), ("new", opts.new)] if i % 2 == 0 else [("new", opts.new), ("old", opts.old)]
        for label, src in order:
            samples[label].append(measure(src, opts.only))
    for key in samples["old"][0]:
        olds, news = [s[key] for s in samples["old"]], [s[key] for s in samples["new"]]
        old, new = statistics.median(olds), statistics.median(news)
        print(
            f"{key:24s} old {old:.4f} [{min(olds):.4f}-{max(olds):.4f}]  "
            f"new {new:.4f} [{min(news):.4f}-{max(news):.4f}]  new/old {new / old:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
