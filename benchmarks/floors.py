"""Hand-written floors of issue 18: the least a workflow engine can do per node, branch
and item, written by hand, timed in the same run as plain asyncio and Flowcraft.

    python benchmarks/floors.py [--src PATH] [--rounds 5]

- chain: per node a 12-field args record, prep/exec/post (only ``exec`` overridden and
  awaited), an abort check and a successor lookup; against ``for step: await step()``.
- fan-out: per branch a task, fail-fast (a done-callback that cancels the rest) and the
  join's arrival count, then the join; against ``asyncio.gather`` (K = 10k branches
  sleeping 10 ms), with and without the garbage collector.
- batch: per item a task, the params merge and an outcome record; against ``gather``.
- per-item sub-flow: the batch floor whose item walks a one-node graph (an args record
  per level).
- build: ``GraphBuilder.build_blueprint`` of a layered DAG (V = 5k and 10k, width 50)
  from its dict, in milliseconds and t10k/t5k; plain asyncio's column is the plain-dict
  build of benchmarks/flowbench (nodes by id, successors, predecessor counts).
- memory: tracemalloc peak of the fan-out (graph and run, K = 10k) divided by K, each in
  a fresh process: ``gather``, the hand-written floor and Flowcraft.

Prints each floor's and Flowcraft's ratio to plain asyncio (minimum of the rounds, each
case warmed 10 runs first). No assertion: the issue's targets are set just above these.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flowbench.runtimes import handwritten

N = 10_000
K = 10_000
ITEMS = 10_000


# ---- the cases: name -> (plain asyncio, floor, flowcraft) ---------------------------------


async def noop() -> None:
    return None


async def sleep_branch() -> None:
    await asyncio.sleep(0.01)


def chain_cases(fc: Any) -> tuple[Callable[[], Awaitable[Any]], ...]:
    steps = [noop] * N

    async def plain() -> None:
        for step in steps:
            await step()

    return plain, handwritten.chain(N), fc.chain(N)


def fanout_cases(fc: Any | None) -> tuple[Callable[[], Awaitable[Any]], ...]:
    async def plain() -> None:
        await asyncio.gather(*(sleep_branch() for _ in range(K)))
        await noop()

    floor = handwritten.fanout(K)
    return plain, floor, (fc.fanout(K) if fc is not None else floor)


def batch_cases(fc: Any, subflow: bool) -> tuple[Callable[[], Awaitable[Any]], ...]:
    items = [{"i": i} for i in range(ITEMS)]

    async def item_noop(item: dict[str, Any]) -> None:
        return None

    async def plain() -> None:
        await asyncio.gather(*(item_noop(item) for item in items))

    return plain, handwritten.batch(items, handwritten.FloorNode(), subflow), fc.batch(items, subflow)


class FlowcraftCases:
    """The same workloads with Flowcraft's public API (as benchmarks/flowbench)."""

    def __init__(self) -> None:
        import flowcraft

        self.fc = flowcraft

        class Noop(flowcraft.Node):  # type: ignore[type-arg]
            async def exec(self, args: Any) -> None:
                return None

        class Sleep(flowcraft.Node):  # type: ignore[type-arg]
            async def exec(self, args: Any) -> None:
                await asyncio.sleep(0.01)

        class Items(flowcraft.ParallelBatchFlow):
            def __init__(self, node: Any, items: list[dict[str, Any]]) -> None:
                super().__init__(node)
                self.items = items

            def prep(self, args: Any) -> Any:
                return self.items

        self.Noop, self.Sleep, self.Items = Noop, Sleep, Items

    def chain(self, size: int) -> Callable[[], Awaitable[Any]]:
        flow = self.fc.Flow()
        current = flow.start(self.Noop())
        for _ in range(size - 1):
            current = current.next(self.Noop())
        return flow.run  # type: ignore[no-any-return]

    def fanout(self, size: int) -> Callable[[], Awaitable[Any]]:
        join = self.Noop()
        branches = [self.Sleep() for _ in range(size)]
        for branch in branches:
            branch.next(join)
        return self.fc.Flow(self.fc.ParallelFlow(branches)).run  # type: ignore[no-any-return]

    def batch(self, items: list[dict[str, Any]], subflow: bool) -> Callable[[], Awaitable[Any]]:
        node = self.fc.Flow(self.Noop()) if subflow else self.Noop()
        return self.fc.Flow(self.Items(node, items)).run  # type: ignore[no-any-return]


def build_times(src: str | None, rounds: int) -> tuple[dict[int, float], dict[int, float]]:
    """Best build times (s) of the layered DAG at V = 5k and 10k: the plain-dict floor's and
    Flowcraft's, interleaved."""
    from flowbench.runtimes.floor import build_plain
    from flowbench.workloads import dag_description

    import flowcraft
    from flowcraft.graph import GraphBuilder

    class Noop(flowcraft.Node):  # type: ignore[type-arg]
        pass

    builder = GraphBuilder({"noop": Noop})
    plain: dict[int, float] = {}
    flowcraft: dict[int, float] = {}
    for size in (5_000, 10_000):
        description = dag_description(size)
        for _ in range(rounds):
            for best, build in ((plain, build_plain), (flowcraft, builder.build_blueprint)):
                gc.collect()
                started = time.perf_counter()
                build(description)  # type: ignore[operator]
                elapsed = time.perf_counter() - started
                best[size] = min(best.get(size, float("inf")), elapsed)
    return plain, flowcraft


MEMORY_CASE = "--memory-case"


def memory_case(kind: str) -> int:
    """In this fresh process: tracemalloc peak of building and running the K=10k fan-out
    (``kind``: plain, floor or flowcraft), in bytes."""
    loop = asyncio.new_event_loop()
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    if kind == "plain":
        plain, _, _ = fanout_cases(None)
        run = plain
    elif kind == "floor":
        _, floor, _ = fanout_cases(None)
        run = floor
    else:
        run = FlowcraftCases().fanout(K)
    loop.run_until_complete(run())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    loop.close()
    return peak - baseline


def memory_per_branch(src: str | None, rounds: int) -> dict[str, float]:
    """Bytes per branch of each kind: the least of ``rounds`` fresh processes."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for kind in ("plain", "floor", "flowcraft"):
            argv = [sys.executable, __file__, MEMORY_CASE, kind] + (["--src", src] if src else [])
            out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            best[kind] = min(best.get(kind, float("inf")), json.loads(out) / K)
    return best


def best_of(fn: Callable[[], Awaitable[Any]], rounds: int, paused: bool = False) -> float:
    loop = asyncio.new_event_loop()
    try:
        for _ in range(10):  # warm: CPython 3.11 specialises from the 8th call
            loop.run_until_complete(fn())
        best = float("inf")
        for _ in range(rounds):
            gc.collect()
            if paused:
                gc.disable()
            started = time.perf_counter()
            loop.run_until_complete(fn())
            best = min(best, time.perf_counter() - started)
            gc.enable()
        return best
    finally:
        loop.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", help="a source tree to import flowcraft from (default: the installed one)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=("time", "build", "memory"), help="one group of rows (default: all)")
    parser.add_argument(MEMORY_CASE, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.src:
        sys.path.insert(0, opts.src)
    if opts.memory_case:
        print(memory_case(opts.memory_case))
        return 0
    if opts.only in (None, "time"):
        time_rows(opts.rounds)
    if opts.only in (None, "build"):
        plain, flowcraft = build_times(opts.src, opts.rounds)
        print(
            f"{'build, layered DAG V=5k (plain dicts | flowcraft)':42s} {plain[5_000] * 1e3:8.2f}ms "
            f"{flowcraft[5_000] * 1e3:8.2f}ms  t10k/t5k {flowcraft[10_000] / flowcraft[5_000]:.2f} "
            f"(plain {plain[10_000] / plain[5_000]:.2f})",
            flush=True,
        )
    if opts.only in (None, "memory"):
        per = memory_per_branch(opts.src, max(1, min(opts.rounds, 3)))
        print(
            f"{'peak memory, K=10k fan-out, per branch':42s} {per['plain']:8.0f} B {per['floor']:7.0f} B "
            f"{per['flowcraft']:8.0f} B",
            flush=True,
        )
    return 0


def time_rows(rounds: int) -> None:
    """The timed rows: each floor's and Flowcraft's ratio to plain asyncio."""
    fc = FlowcraftCases()
    # Each row's cases are built just before it is measured and released after it (then
    # gc.collect()), so no row is timed beside the heap of the others: a large live heap
    # makes each collector pass longer, for the floor as much as for Flowcraft, which
    # flatters the ratios (scripts/bench isolates its cases the same way).
    cases: list[tuple[str, Callable[[], tuple[Callable[[], Awaitable[Any]], ...]], bool]] = [
        ("chain, N=10k no-op nodes", lambda: chain_cases(fc), False),
        ("fan-out, K=10k branches sleeping 10 ms", lambda: fanout_cases(fc), False),
        ("fan-out, same, GC paused", lambda: fanout_cases(fc), True),
        ("batch, 10k no-op items", lambda: batch_cases(fc, subflow=False), False),
        ("per-item sub-flow, 10k items", lambda: batch_cases(fc, subflow=True), False),
    ]
    print(f"{'workload':42s} {'plain':>10s} {'floor':>8s} {'flowcraft':>10s}")
    for title, build, paused in cases:
        gc.collect()
        plain, floor, flowcraft = build()
        # interleaved rounds, so the noise of a shared machine falls on all three alike
        times = {"plain": float("inf"), "floor": float("inf"), "flowcraft": float("inf")}
        for _ in range(3):
            for name, fn in (("plain", plain), ("floor", floor), ("flowcraft", flowcraft)):
                times[name] = min(times[name], best_of(fn, rounds, paused))
        base = times["plain"]
        print(
            f"{title:42s} {base * 1e3:8.2f}ms {times['floor'] / base:7.2f}x {times['flowcraft'] / base:9.2f}x",
            flush=True,
        )
        del plain, floor, flowcraft


if __name__ == "__main__":
    sys.exit(main())
