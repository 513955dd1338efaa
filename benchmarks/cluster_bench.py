"""Scaling benchmark (standalone): node jobs/s on one Redis and on a Redis Cluster with the
queue split into shards, and what each node job costs — Redis CPU per master, worker CPU,
Redis commands — the inputs of the capacity model in docs/scaling.md.

    python benchmarks/cluster_bench.py --single redis://127.0.0.1:6405/0 \\
        --cluster redis://127.0.0.1:7101/0 [--runs 20] [--width 100] [--workers 2] [--repeat 3]

Both servers must be running (``scripts/_redis.sh``: ``start_test_redis``,
``start_test_cluster``). Each round starts ``--workers`` worker processes, then
``--runs`` runs at once, each a fan-out of ``--width`` trivial nodes, and measures until
the last one ends. Rounds alternate single / cluster, ``--repeat`` times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

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
TICK = os.sysconf("SC_CLK_TCK")


def fan_out(width: int) -> dict[str, Any]:
    return {"nodes": [{"id": "a", "type": "noop"}, *({"id": f"b{i}", "type": "noop"} for i in range(width)),
                      {"id": "z", "type": "noop"}],
            "edges": [*({"source": "a", "target": f"b{i}"} for i in range(width)),
                      *({"source": f"b{i}", "target": "z"} for i in range(width))]}  # fmt: skip


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def masters(url: str, cluster: bool) -> list[redis.Redis]:
    if not cluster:
        return [redis.Redis.from_url(url)]
    probe = redis.RedisCluster.from_url(url)
    try:
        return [redis.Redis(host=node.host, port=node.port) for node in probe.get_primaries()]
    finally:
        probe.close()


def redis_stats(clients: list[redis.Redis]) -> list[tuple[float, int]]:
    out = []
    for client in clients:
        cpu, stats = client.info("cpu"), client.info("stats")
        out.append((float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), int(stats["total_commands_processed"])))
    return out


def start_workers(count: int, url: str, queue: str, prefix: str, topology: list[str], env: dict[str, str]) -> list[Any]:
    procs = []
    for _ in range(count):
        proc = subprocess.Popen(
            [sys.executable, "-m", "flowcraft", "worker", "--registry", "bench_nodes:REGISTRY", "--redis", url,
             "--queue", queue, "--prefix", prefix, "--concurrency", "10", "--log-level", "WARNING", *topology],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(proc)
    return procs


async def one_round(url: str, cluster: bool, shards: int, args: argparse.Namespace, env: dict[str, str]) -> dict:
    from bench_nodes import REGISTRY  # type: ignore[import-not-found]

    from flowcraft.distributed import DistributedExecutor
    from flowcraft.graph import GraphBuilder

    tag = uuid.uuid4().hex[:8]
    queue, prefix = f"bq{tag}", f"bp{tag}"
    topology = (["--cluster"] if cluster else []) + (["--queue-shards", str(shards)] if shards > 1 else [])
    procs = start_workers(args.workers, url, queue, prefix, topology, env)
    blueprint = GraphBuilder(REGISTRY).build_blueprint(fan_out(args.width)).blueprint
    clients = masters(url, cluster)
    try:
        async with DistributedExecutor(url, queue=queue, prefix=prefix, poll_interval=0.05, cluster=cluster,
                                       queue_shards=shards) as executor:  # fmt: skip
            warm = await executor.start(blueprint)  # workers up, graph cached, scripts loaded
            await warm.result(timeout=120)
            before, cpu0 = redis_stats(clients), [cpu_of(p.pid) for p in procs]
            started = time.perf_counter()
            handles = [await executor.start(blueprint) for _ in range(args.runs)]
            for handle in handles:
                await handle.result(timeout=600)
            elapsed = time.perf_counter() - started
            after, cpu1 = redis_stats(clients), [cpu_of(p.pid) for p in procs]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(20)
        for client in clients:
            client.close()
    jobs = args.runs * (args.width + 3)  # a, its parallel container, the branches, the join
    per_master = [
        {"cpu_us_per_job": round((a[0] - b[0]) / jobs * 1e6, 1), "commands_per_job": round((a[1] - b[1]) / jobs, 2)}
        for b, a in zip(before, after, strict=True)
    ]
    return {
        "topology": ("cluster" if cluster else "single") + f", {shards} queue shard(s)",
        "masters": len(clients),
        "jobs": jobs,
        "seconds": round(elapsed, 3),
        "jobs_per_s": round(jobs / elapsed),
        "worker_cpu_us_per_job": round(sum(c1 - c0 for c0, c1 in zip(cpu0, cpu1, strict=True)) / jobs * 1e6),
        "redis_cpu_us_per_job": round(sum(m["cpu_us_per_job"] for m in per_master), 1),
        "per_master": per_master,
        "load_average_1min": round(os.getloadavg()[0], 2),  # how busy the (shared) machine was
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--single", required=True, help="URL of a plain Redis")
    parser.add_argument("--cluster", required=True, help="URL of one node of a Redis Cluster")
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "bench_nodes.py").write_text(NODES)
    sys.path.insert(0, str(tmp))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    rows = []
    for _ in range(args.repeat):
        for url, cluster, shards in ((args.single, False, 1), (args.cluster, True, args.shards)):
            row = await one_round(url, cluster, shards, args, env)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "args": vars(args) | {"json": None},
                                         "rows": rows}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
