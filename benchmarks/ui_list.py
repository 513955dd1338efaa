"""Server time of the dashboard's runs list over a store of 10,000 runs.

Fills a fresh store file with N runs (pending, and every third cancelled), then asks the
dashboard's ASGI app for list pages in this process — no network, no browser: the time
from the request to the last byte of the page (query, counts per state, rendering).
Prints the median and the slowest of each kind of page, in milliseconds; the issue's
target is 100 ms a page.

Usage: ``python benchmarks/ui_list.py [--runs 10000] [--repeat 20] [--keep FILE]``
(needs the ui extra).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from typing import Any

from flowcraft.durable import SqliteRunStore
from flowcraft.engine import JobExecutor, MemoryJobQueue
from flowcraft.ui import Guard, SqliteBackend, create_app

GRAPH = {
    "startNodeId": "a",
    "nodes": [{"id": "a", "type": "step", "data": {}}, {"id": "b", "type": "step", "data": {}}],
    "edges": [{"source": "a", "target": "b"}],
    "predecessorCountMap": {"a": 0, "b": 1},
    "originalPredecessorIdMap": {"b": ["a"]},
}


async def fill(path: str, runs: int) -> None:
    """``runs`` runs in ``path``: started (pending; nothing runs them), every third cancelled."""
    store = SqliteRunStore(path)
    client = JobExecutor(store=store, queue=MemoryJobQueue())
    try:
        for n in range(runs):
            handle = await client.start(GRAPH, {"n": n}, run_id=f"order-{n:06d}")
            if n % 3 == 0:
                await store.cancel(handle.run_id, "benchmark")
    finally:
        await store.aclose()


async def page(app: Any, query: str) -> float:
    """Seconds the app takes to answer ``GET /?query`` (to the last byte)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/", "raw_path": b"/", "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8600),
    }  # fmt: skip
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    started = time.perf_counter()
    await app(scope, receive, send)
    elapsed = time.perf_counter() - started
    if status != [200]:
        raise RuntimeError(f"GET /?{query} answered {status}")
    return elapsed


async def measure(path: str, repeat: int, runs: int) -> dict[str, tuple[float, float]]:
    app = create_app(SqliteBackend(path), Guard("127.0.0.1"))
    last = max(1, -(-runs // 50))
    kinds = {
        "first page": "",
        "middle page": f"page={last // 2}",
        "last page": f"page={last}",
        "state filter": "state=cancelled",
        "id search": "q=order-0099",
        "filter + search, page 2": "state=pending&q=order-00&page=2",
    }
    out = {}
    for name, query in kinds.items():
        await page(app, query)  # warm
        times = [await page(app, query) for _ in range(repeat)]
        out[name] = (statistics.median(times) * 1000, max(times) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", metavar="FILE", help="fill (or reuse) this store file instead of a temporary one")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = options.keep or os.path.join(tmp, "runs.db")
        if not os.path.exists(path):
            started = time.perf_counter()
            asyncio.run(fill(path, options.runs))
            print(f"filled {path} with {options.runs} runs in {time.perf_counter() - started:.1f} s")
        results = asyncio.run(measure(path, options.repeat, options.runs))
    print(f"{'page':<26} {'median ms':>10} {'max ms':>8}")
    for name, (median, worst) in results.items():
        print(f"{name:<26} {median:>10.2f} {worst:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
