"""Distributed-mode benchmark (standalone): node jobs/s through flowcraft.distributed
next to raw BullMQ in the same run, hop latency, and Redis commands per node job, incl. inside Lua.

    python benchmarks/distributed_bench.py [--width 1000] [--chain 1000] [--json OUT.json]
    python benchmarks/distributed_bench.py --render OUT.json   # the docs section, markdown

Starts a private redis-server on a free loopback port; needs the ``redis`` extra.
``--json`` also writes the figures (``benchmarks/charts.py`` draws them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
NODES = """
from flowcraft import Node
from flowcraft.graph import create_node_registry
class Noop(Node):
    def __init__(self, data=None, **deps):
        super().__init__()
REGISTRY = create_node_registry({"noop": Noop})
"""
RAW_WORKER = """
import asyncio, sys, bullmq
url, queue, chain = sys.argv[1], sys.argv[2], int(sys.argv[3])
async def main():
    q = bullmq.Queue(queue, {"connection": url})
    async def process(job, token):
        n = job.data.get("n")
        if chain and n is not None and n + 1 < chain:
            await q.add("hop", {"n": n + 1}, {"jobId": f"h{n + 1}"})
    w = bullmq.Worker(queue, process, {"connection": url, "concurrency": 10, "autorun": False})
    print("ready", flush=True)
    await w.run()
asyncio.run(main())
"""


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--dir", tempfile.mkdtemp()], stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        client = redis.Redis(port=port)
        for _ in range(100):
            with contextlib.suppress(redis.RedisError):
                client.ping()
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait()


def spawn(cmd: list[str], env: dict[str, str], marker: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if marker in line:
            return proc
    raise SystemExit(f"{cmd} exited early")


def stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def raw_bullmq(url: str, workers: int, jobs: int, chain: bool) -> float:
    import bullmq

    queue = f"raw{time.monotonic_ns()}"
    procs = [spawn([sys.executable, "-c", RAW_WORKER, url, queue, str(jobs if chain else 0)], dict(os.environ), "ready")
             for _ in range(workers)]  # fmt: skip
    q = bullmq.Queue(queue, {"connection": url})
    try:
        started = time.perf_counter()
        if chain:
            await q.add("hop", {"n": 0}, {"jobId": "h0"})
        else:
            for i in range(0, jobs, 500):
                await q.addBulk([{"name": "t", "data": {}, "opts": {}} for _ in range(min(500, jobs - i))])
        key = f"bull:{queue}:completed"
        while await q.client.zcard(key) < jobs:  # noqa: ASYNC110 - polling another process's progress
            await asyncio.sleep(0.002)
        return time.perf_counter() - started
    finally:
        await q.close()
        stop(procs)


async def flowcraft_run(url: str, workers: int, graph: dict, env: dict[str, str]) -> tuple[float, int]:
    from flowcraft.distributed import DistributedExecutor
    from flowcraft.graph import GraphBuilder

    sys.path.insert(0, env["PYTHONPATH"].split(os.pathsep)[0])
    from bench_nodes import REGISTRY  # type: ignore[import-not-found]

    queue = f"fc{time.monotonic_ns()}"
    procs = [spawn([sys.executable, "-m", "flowcraft", "worker", "--registry", "bench_nodes:REGISTRY",
                    "--redis", url, "--queue", queue, "--concurrency", "10"], env, "worker ready")
             for _ in range(workers)]  # fmt: skip
    blueprint = GraphBuilder(REGISTRY).build_blueprint(graph).blueprint
    stats = redis.Redis.from_url(url)
    try:
        async with DistributedExecutor(url, queue=queue, poll_interval=0.05) as executor:
            before = int(stats.info("stats")["total_commands_processed"])
            started = time.perf_counter()
            handle = await executor.start(blueprint)
            await handle.result(timeout=600)
            elapsed = time.perf_counter() - started
            commands = int(stats.info("stats")["total_commands_processed"]) - before
        return elapsed, commands
    finally:
        stats.close()
        stop(procs)


def fan_out(width: int) -> dict:
    return {"nodes": [{"id": "a", "type": "noop"}, *({"id": f"b{i}", "type": "noop"} for i in range(width)),
                      {"id": "z", "type": "noop"}],
            "edges": [*({"source": "a", "target": f"b{i}"} for i in range(width)),
                      *({"source": f"b{i}", "target": "z"} for i in range(width))]}  # fmt: skip


def chain(length: int) -> dict:
    return {"nodes": [{"id": f"n{i}", "type": "noop"} for i in range(length)],
            "edges": [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(length - 1)]}  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--chain", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--render", type=Path, help="print the docs section for this results file, then exit")
    args = parser.parse_args()
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return
    doc: dict = {"meta": {"date": time.strftime("%Y-%m-%d", time.gmtime()), "width": args.width, "chain": args.chain},
                 "fanout": []}  # fmt: skip
    tmp = Path(tempfile.mkdtemp())
    (tmp / "bench_nodes.py").write_text(NODES)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    with private_redis() as url:
        print(f"{'workload':44} {'time s':>8} {'jobs/s':>9} {'vs raw':>7}")
        for workers in (1, 2):
            raw = await raw_bullmq(url, workers, args.width, chain=False)
            raw_rate = args.width / raw
            print(f"{'raw BullMQ, ' + str(args.width) + ' trivial jobs, ' + str(workers) + ' worker(s)':44} "
                  f"{raw:8.3f} {raw_rate:9.0f} {1.0:7.2f}")  # fmt: skip
            elapsed, commands = await flowcraft_run(url, workers, fan_out(args.width), env)
            jobs = args.width + 3  # a, its parallel container, the branches, the join
            label = f"flowcraft fan-out {args.width}, {workers} worker(s)"
            print(f"{label:44} {elapsed:8.3f} {jobs / elapsed:9.0f} {jobs / elapsed / raw_rate:7.2f}"
                  f"   ({commands / jobs:.1f} Redis commands per node job, incl. inside Lua)")  # fmt: skip
            doc["fanout"].append({"workers": workers, "raw_s": round(raw, 3), "raw_jobs_per_s": round(raw_rate),
                                  "flowcraft_s": round(elapsed, 3), "flowcraft_jobs_per_s": round(jobs / elapsed),
                                  "commands_per_job": round(commands / jobs, 1)})  # fmt: skip
        raw_chain = await raw_bullmq(url, 1, args.chain, chain=True)
        elapsed, commands = await flowcraft_run(url, 1, chain(args.chain), env)
        raw_hop, hop = raw_chain / args.chain * 1000, elapsed / args.chain * 1000
        print(f"{'raw BullMQ chain hop (job adds the next)':44} {raw_chain:8.3f} {args.chain / raw_chain:9.0f}"
              f"   {raw_hop:.2f} ms/hop")  # fmt: skip
        print(f"{'flowcraft chain ' + str(args.chain) + ', 1 worker':44} {elapsed:8.3f} {args.chain / elapsed:9.0f}"
              f"   {hop:.2f} ms/hop = {hop / raw_hop:.2f}x raw; "
              f"{commands / args.chain:.1f} commands/job incl. Lua")  # fmt: skip
        doc["chain"] = {"raw_s": round(raw_chain, 3), "raw_ms_per_hop": round(raw_hop, 2),
                        "flowcraft_s": round(elapsed, 3), "flowcraft_ms_per_hop": round(hop, 2),
                        "commands_per_job": round(commands / args.chain, 1)}  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


def render(doc: dict) -> str:
    """The "Distributed" section of docs/benchmarks.md: the chart, then one table."""
    meta, chain = doc["meta"], doc["chain"]
    lines = [
        "## Distributed: node jobs through BullMQ + Redis",
        "",
        f"Measured by `benchmarks/distributed_bench.py` ({meta['date']}) against raw BullMQ in the same run",
        "(trivial jobs, same number of workers); figures in `benchmarks/results/distributed.json`.",
        "",
        "![Node jobs per second against raw BullMQ, by workers](assets/benchmarks/distributed.svg)",
        "",
        "| workload | time | jobs/s | vs raw | Redis commands per job |",
        "|---|---|---|---|---|",
    ]
    for row in doc["fanout"]:
        workers = f"{row['workers']} worker{'s' if row['workers'] > 1 else ''}"
        lines.append(f"| raw BullMQ, {meta['width']:,} trivial jobs, {workers} | {row['raw_s']:.3f} s "
                     f"| {row['raw_jobs_per_s']:,} | 1.00 | — |")  # fmt: skip
        ratio = row["flowcraft_jobs_per_s"] / row["raw_jobs_per_s"]
        lines.append(f"| Flowcraft fan-out {meta['width']:,}, {workers} | {row['flowcraft_s']:.3f} s "
                     f"| {row['flowcraft_jobs_per_s']:,} | {ratio:.2f} | {row['commands_per_job']} |")  # fmt: skip
    hop = chain["flowcraft_ms_per_hop"] / chain["raw_ms_per_hop"]
    lines.append(f"| raw BullMQ chain, each job adds the next | {chain['raw_s']:.3f} s "
                 f"| {chain['raw_ms_per_hop']} ms/hop | 1.00 | — |")  # fmt: skip
    lines.append(f"| Flowcraft chain {meta['chain']:,}, 1 worker | {chain['flowcraft_s']:.3f} s "
                 f"| {chain['flowcraft_ms_per_hop']} ms/hop | {hop:.2f}x the hop "
                 f"| {chain['commands_per_job']} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    asyncio.run(main())
