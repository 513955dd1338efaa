"""Distributed-mode benchmark (standalone): node jobs/s through flowcraft.distributed
next to raw BullMQ in the same run, hop latency, and per node job: Redis round trips
(ours and the queue's, counted in the worker processes) and Redis commands (counted by
the server, incl. the commands inside Lua scripts).

    python benchmarks/distributed_bench.py [--width 1000] [--chain 1000] [--workers 1,2,4]
        [--repeat 3] [--port 6416] [--json OUT.json] [--profile DIR] [--warm]
    python benchmarks/distributed_bench.py --render OUT.json   # the docs section, markdown

Starts a private redis-server on loopback (``--port``, else a free port); needs the
``redis`` extra. Every case runs ``--repeat`` times, raw BullMQ and Flowcraft alternating
in each round; the figures are medians, with the range of the rounds. ``--json`` also
writes them (``benchmarks/charts.py`` draws them). ``--profile DIR`` writes a cProfile of
each Flowcraft worker process (``python -m pstats DIR/<file>``). ``--warm`` runs each
fan-out case's workload once, unmeasured, on the same worker processes first (a worker
hydrates a graph at its first job of it: 1,002 nodes take it tens of ms, which the cold
default counts in the run, once per worker process).

Round trips are counted in each worker process by wrapping redis-py's
``send_packed_command`` (one call per command sent alone, one per pipeline): "ours" are
the calls on the run store's connections, "queue" those of BullMQ's own connections
(fetching, finishing, lock renewal, idle polls). Both are counted between the start and
the end of the measured run (a signal to each worker marks them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
NODES = """
import asyncio, os
from flowcraft import Node
from flowcraft.graph import create_node_registry
WAIT = int(os.environ.get("BENCH_WAIT_MS", "0")) / 1000
class Noop(Node):
    def __init__(self, data=None, **deps):
        super().__init__()
class Wait(Noop):
    async def exec(self, args):
        await asyncio.sleep(WAIT)
REGISTRY = create_node_registry({"noop": Noop, "wait": Wait})
"""
RAW_WORKER = """
import asyncio, os, sys, bullmq
url, queue, chain = sys.argv[1], sys.argv[2], int(sys.argv[3])
wait = int(os.environ.get("BENCH_WAIT_MS", "0")) / 1000
async def main():
    q = bullmq.Queue(queue, {"connection": url})
    async def process(job, token):
        if wait:
            await asyncio.sleep(wait)
        n = job.data.get("n")
        if chain and n is not None and n + 1 < chain:
            await q.add("hop", {"n": n + 1}, {"jobId": f"h{n + 1}"})
    w = bullmq.Worker(queue, process, {"connection": url, "concurrency": 10, "autorun": False})
    print("ready", flush=True)
    await w.run()
asyncio.run(main())
"""
# Runs a worker (raw BullMQ or `flowcraft worker`) with its Redis round trips counted.
# SIGUSR1 writes the counts so far to $BENCH_COUNTS/<pid>.<n>.json (n = 1, 2, ...); with
# $BENCH_PROFILE, the first signal starts cProfile and the second writes its stats.
COUNTED = """
import json, os, signal, sys, time
from redis.asyncio.connection import AbstractConnection
counts = {"ours": 0, "queue": 0}
_send = AbstractConnection.send_packed_command
async def send_packed_command(self, command, check_health=True):
    counts["ours" if getattr(self, "_bench_ours", False) else "queue"] += 1
    return await _send(self, command, check_health)
AbstractConnection.send_packed_command = send_packed_command
mode = sys.argv.pop(1)
if mode == "flowcraft":
    from flowcraft.distributed.connection import BoundedPool  # the run store's pool
    _get = BoundedPool.get_connection
    async def get_connection(self, *args, **kwargs):
        connection = await _get(self, *args, **kwargs)
        connection._bench_ours = True
        return connection
    BoundedPool.get_connection = get_connection
marks, profile = [0], None
def mark(*_):
    global profile
    marks[0] += 1
    where = os.environ.get("BENCH_PROFILE")
    if where and marks[0] == 1:
        import cProfile
        profile = cProfile.Profile(time.process_time)  # CPU, not waits on the shared cores
        profile.enable()
    elif profile is not None:
        profile.disable()
        profile.dump_stats(os.path.join(where, f"worker-{os.getpid()}.prof"))
        profile = None
    path = os.path.join(os.environ["BENCH_COUNTS"], f"{os.getpid()}.{marks[0]}.json")
    with open(path + ".tmp", "w") as out:
        json.dump({**counts, "cpu": time.process_time()}, out)
    os.replace(path + ".tmp", path)
signal.signal(signal.SIGUSR1, mark)
if mode == "flowcraft":
    from flowcraft.cli import main
    sys.exit(main())
exec(compile(os.environ["BENCH_RAW_WORKER"], "raw_worker", "exec"))
"""


@contextlib.contextmanager
def private_redis(port: int = 0) -> Iterator[str]:
    if not port:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", tempfile.mkdtemp()],
                              stdout=subprocess.DEVNULL)  # fmt: skip
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


class Counted:
    """Worker processes whose round trips are counted between two marks."""

    def __init__(self, env: dict[str, str]) -> None:
        self.dir = tempfile.mkdtemp()
        self.env = {**env, "BENCH_COUNTS": self.dir, "BENCH_RAW_WORKER": RAW_WORKER}
        self.procs: list[subprocess.Popen[str]] = []

    def spawn(self, args: list[str], marker: str, count: int) -> None:
        self.procs = [spawn([sys.executable, "-c", COUNTED, *args], self.env, marker) for _ in range(count)]

    async def mark(self, n: int) -> dict[str, float]:
        for proc in self.procs:
            proc.send_signal(signal.SIGUSR1)
        total = {"ours": 0, "queue": 0, "cpu": 0.0}
        for proc in self.procs:
            path = Path(self.dir) / f"{proc.pid}.{n}.json"
            for _ in range(1000):
                if path.exists():
                    break
                await asyncio.sleep(0.01)
            for key, value in json.loads(path.read_text()).items():
                total[key] += value
        return total

    def stop(self) -> None:
        stop(self.procs)


def commands(stats: redis.Redis) -> int:
    return int(stats.info("stats")["total_commands_processed"])


def server_cpu(stats: redis.Redis) -> float:
    """redis-server's CPU time so far (seconds): it shares the cores with the workers."""
    cpu = stats.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


async def raw_bullmq(
    url: str, workers: int, jobs: int, chain: bool, env: dict[str, str], warm: bool = False, wait_ms: int = 0
) -> dict[str, float]:
    import bullmq

    queue = f"raw{time.monotonic_ns()}"
    counted = Counted({**env, "BENCH_WAIT_MS": str(wait_ms)})
    counted.spawn(["raw", url, queue, str(jobs if chain else 0)], "ready", workers)
    q = bullmq.Queue(queue, {"connection": url})
    stats = redis.Redis.from_url(url)
    key = f"bull:{queue}:completed"
    try:
        await q.client.ping()
        done = 0
        if warm:  # the same jobs once, unmeasured
            await q.addBulk([{"name": "t", "data": {}, "opts": {}} for _ in range(jobs)])
            while await q.client.zcard(key) < jobs:  # noqa: ASYNC110 - polling another process's progress
                await asyncio.sleep(0.002)
            done = jobs
        before, marked, server = commands(stats), await counted.mark(1), server_cpu(stats)
        started = time.perf_counter()
        if chain:
            await q.add("hop", {"n": 0}, {"jobId": "h0"})
        else:
            for i in range(0, jobs, 500):
                await q.addBulk([{"name": "t", "data": {}, "opts": {}} for _ in range(min(500, jobs - i))])
        while await q.client.zcard(key) < done + jobs:  # noqa: ASYNC110 - polling another process's progress
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - started
        after = await counted.mark(2)
        total, server = commands(stats) - before, server_cpu(stats) - server
        trips = (after["ours"] + after["queue"] - marked["ours"] - marked["queue"]) / jobs
        cpu = (after["cpu"] - marked["cpu"]) * 1000 / jobs
        return {"s": elapsed, "jobs_per_s": jobs / elapsed, "round_trips": trips, "commands": total / jobs,
                "cpu_ms": cpu, "server_cpu_ms": server * 1000 / jobs}  # fmt: skip
    finally:
        stats.close()
        await q.close()
        counted.stop()


async def flowcraft_run(
    url: str,
    workers: int,
    graph: dict,
    jobs: int,
    env: dict[str, str],
    profile: Path | None,
    src: Path | None = None,
    warm: bool = False,
    wait_ms: int = 0,
) -> dict[str, float]:
    from flowcraft.distributed import DistributedExecutor
    from flowcraft.graph import GraphBuilder

    sys.path.insert(0, env["PYTHONPATH"].split(os.pathsep)[0])
    from bench_nodes import REGISTRY  # type: ignore[import-not-found]

    queue = f"fc{time.monotonic_ns()}"
    if src is not None:  # the workers run this checkout's flowcraft (--baseline)
        parts = env["PYTHONPATH"].split(os.pathsep)
        env = {**env, "PYTHONPATH": os.pathsep.join([parts[0], str(src), *parts[1:]])}
    counted = Counted({**env, "BENCH_WAIT_MS": str(wait_ms), **({"BENCH_PROFILE": str(profile)} if profile else {})})
    counted.spawn(["flowcraft", "worker", "--registry", "bench_nodes:REGISTRY", "--redis", url, "--queue", queue,
                   "--concurrency", "10"], "worker ready", workers)  # fmt: skip
    blueprint = GraphBuilder(REGISTRY).build_blueprint(graph).blueprint
    stats = redis.Redis.from_url(url)
    try:
        async with DistributedExecutor(url, queue=queue, poll_interval=0.05) as executor:
            if warm:  # the same graph once, unmeasured: the workers hydrate it then
                await (await executor.start(blueprint)).result(timeout=600)
            before, marked, server = commands(stats), await counted.mark(1), server_cpu(stats)
            started = time.perf_counter()
            handle = await executor.start(blueprint)
            await handle.result(timeout=600)
            elapsed = time.perf_counter() - started
            after = await counted.mark(2)
            total, server = commands(stats) - before, server_cpu(stats) - server
        ours, queued = (after["ours"] - marked["ours"]) / jobs, (after["queue"] - marked["queue"]) / jobs
        cpu = (after["cpu"] - marked["cpu"]) * 1000 / jobs
        return {"s": elapsed, "jobs_per_s": jobs / elapsed, "round_trips": ours + queued, "ours": ours,
                "queue": queued, "commands": total / jobs, "cpu_ms": cpu,
                "server_cpu_ms": server * 1000 / jobs}  # fmt: skip
    finally:
        stats.close()
        counted.stop()


def fan_out(width: int, branch: str = "noop") -> dict:
    return {"nodes": [{"id": "a", "type": "noop"}, *({"id": f"b{i}", "type": branch} for i in range(width)),
                      {"id": "z", "type": "noop"}],
            "edges": [*({"source": "a", "target": f"b{i}"} for i in range(width)),
                      *({"source": f"b{i}", "target": "z"} for i in range(width))]}  # fmt: skip


def chain(length: int) -> dict:
    return {"nodes": [{"id": f"n{i}", "type": "noop"} for i in range(length)],
            "edges": [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(length - 1)]}  # fmt: skip


def summary(rounds: list[dict[str, float]], raws: list[dict[str, float]]) -> dict:
    """Medians of the rounds, the ratio to raw BullMQ per round (median and range)."""
    out: dict = {key: round(statistics.median(r[key] for r in rounds), 3) for key in rounds[0]}
    out["raw"] = {key: round(statistics.median(r[key] for r in raws), 3) for key in raws[0]}
    ratios = [r["jobs_per_s"] / raw["jobs_per_s"] for r, raw in zip(rounds, raws, strict=True)]
    out["ratio"] = round(statistics.median(ratios), 3)
    out["ratio_range"] = [round(min(ratios), 3), round(max(ratios), 3)]
    return out


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--chain", type=int, default=1000)
    parser.add_argument("--workers", default="1,2,4", help="worker processes per fan-out case, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per case (raw and Flowcraft alternate)")
    parser.add_argument("--port", type=int, default=0, help="port of the private redis-server (default: a free one)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--profile", type=Path, help="write a cProfile of each Flowcraft worker into this folder")
    parser.add_argument("--render", type=Path, help="print the docs section for this results file, then exit")
    parser.add_argument("--baseline", type=Path, help="also run the workers on this src/ folder (an older checkout) "
                        "in every round, for a before/after comparison in the same run")  # fmt: skip
    parser.add_argument("--baseline-label", help="how the results name the baseline (e.g. its commit)")
    parser.add_argument("--io-ms", default="20,50", help="the I/O-bound fan-outs: each branch job waits this "
                        "long (asyncio.sleep, as an API call would), raw BullMQ's jobs too; comma-separated; "
                        "0 skips them")  # fmt: skip
    parser.add_argument("--warm", action="store_true", help="fan-out cases: every worker process runs the same "
                        "workload once before the measured run (a graph hydrated, connections open)")  # fmt: skip
    args = parser.parse_args()
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    counts = [int(n) for n in args.workers.split(",")]
    doc: dict = {"meta": {"date": time.strftime("%Y-%m-%d", time.gmtime()), "width": args.width, "chain": args.chain,
                          "warm": args.warm,
                          "repeat": args.repeat, "nproc": os.cpu_count(), "load_before": load_average()},
                 "fanout": []}  # fmt: skip
    if args.baseline:
        doc["meta"]["baseline"] = args.baseline_label or str(args.baseline)
    tmp = Path(tempfile.mkdtemp())
    (tmp / "bench_nodes.py").write_text(NODES)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    fanout_jobs = args.width + 3  # a, its parallel container, the branches, the join
    with private_redis(args.port) as url:
        print(f"{'workload':46} {'time s':>7} {'jobs/s':>7} {'vs raw':>6} {'RT/job':>7} {'ours':>5} {'cmd/job':>7} "
              f"{'cpu ms/job':>10} {'server ms':>10}")  # fmt: skip

        def show(label: str, r: dict[str, float], ratio: float | None) -> None:
            vs = f"{ratio:6.2f}" if ratio is not None else f"{'':6}"
            ours = f"{r['ours']:5.2f}" if "ours" in r else f"{'':5}"
            print(f"{label:46} {r['s']:7.3f} {r['jobs_per_s']:7.0f} {vs} {r['round_trips']:7.2f} {ours} "
                  f"{r['commands']:7.1f} {r.get('cpu_ms', 0.0):10.2f} {r.get('server_cpu_ms', 0.0):10.2f}",
                  flush=True)  # fmt: skip

        for workers in counts:
            raws, rounds, befores = [], [], []
            for _ in range(args.repeat):
                raw = await raw_bullmq(url, workers, args.width, False, env, args.warm)
                show(f"raw BullMQ, {args.width} jobs, {workers} worker(s)", raw, None)
                if args.baseline:
                    graph = fan_out(args.width)
                    before = await flowcraft_run(
                        url, workers, graph, fanout_jobs, env, None, args.baseline, args.warm
                    )  # fmt: skip
                    show(f"  before: fan-out {args.width}, {workers} worker(s)", before,
                         before["jobs_per_s"] / raw["jobs_per_s"])  # fmt: skip
                    befores.append(before)
                ours = await flowcraft_run(
                    url, workers, fan_out(args.width), fanout_jobs, env, args.profile, warm=args.warm
                )  # fmt: skip
                show(f"flowcraft fan-out {args.width}, {workers} worker(s)", ours,
                     ours["jobs_per_s"] / raw["jobs_per_s"])  # fmt: skip
                raws.append(raw)
                rounds.append(ours)
            doc["fanout"].append({"workers": workers, **summary(rounds, raws)})
            if befores:
                doc["fanout"][-1]["baseline"] = summary(befores, raws)
        waits = [int(ms) for ms in args.io_ms.split(",") if int(ms) > 0]
        doc["io"] = [{"io_ms": ms, "rows": await io_bound(url, counts, ms, args, env)} for ms in waits]
        raws, rounds, befores = [], [], []
        for _ in range(args.repeat):
            raw = await raw_bullmq(url, 1, args.chain, True, env)
            show("raw BullMQ chain (each job adds the next)", raw, None)
            if args.baseline:
                before = await flowcraft_run(url, 1, chain(args.chain), args.chain, env, None, args.baseline)
                show(f"  before: chain {args.chain}, 1 worker", before, before["jobs_per_s"] / raw["jobs_per_s"])
                befores.append(before)
            ours = await flowcraft_run(url, 1, chain(args.chain), args.chain, env, args.profile)
            show(f"flowcraft chain {args.chain}, 1 worker", ours, ours["jobs_per_s"] / raw["jobs_per_s"])
            raws.append(raw)
            rounds.append(ours)
        doc["chain"] = summary(rounds, raws)
        hops = [r["s"] / raw["s"] for r, raw in zip(rounds, raws, strict=True)]
        doc["chain"]["hop_ratio"] = round(statistics.median(hops), 3)
        doc["chain"]["hop_ratio_range"] = [round(min(hops), 3), round(max(hops), 3)]
        if befores:
            doc["chain"]["baseline"] = summary(befores, raws)
            hops = [r["s"] / raw["s"] for r, raw in zip(befores, raws, strict=True)]
            doc["chain"]["baseline"]["hop_ratio"] = round(statistics.median(hops), 3)
            doc["chain"]["baseline"]["hop_ratio_range"] = [round(min(hops), 3), round(max(hops), 3)]
    doc["meta"]["load_after"] = load_average()
    print()
    print(render(doc))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


async def io_bound(
    url: str, counts: list[int], io_ms: int, args: argparse.Namespace, env: dict[str, str]
) -> list[dict]:
    """The fan-out again with branch jobs that wait ``io_ms`` each: how throughput grows
    with worker processes when the jobs wait on I/O rather than compete for the CPU."""
    rows = []
    for workers in counts:
        raws, rounds, befores = [], [], []
        for _ in range(args.repeat):
            raw = await raw_bullmq(url, workers, args.width, False, env, wait_ms=io_ms)
            print(f"raw BullMQ, {args.width} jobs waiting {io_ms} ms, {workers} worker(s): "
                  f"{raw['jobs_per_s']:.0f} jobs/s, {raw['cpu_ms']:.2f} ms CPU/job, server {raw['server_cpu_ms']:.3f}",
                  flush=True)  # fmt: skip
            runs = [("before", args.baseline)] if args.baseline else []
            for label, src in [*runs, ("flowcraft", None)]:
                ours = await flowcraft_run(
                    url, workers, fan_out(args.width, "wait"), args.width + 3, env, None, src, wait_ms=io_ms
                )  # fmt: skip
                print(
                    f"{label} fan-out {args.width} waiting {io_ms} ms, {workers} worker(s): "
                    f"{ours['jobs_per_s']:.0f} jobs/s ({ours['jobs_per_s'] / raw['jobs_per_s']:.2f} of raw), "
                    f"{ours['cpu_ms']:.2f} ms CPU/job, server {ours['server_cpu_ms']:.3f}, "
                    f"{ours['commands']:.1f} commands/job",
                    flush=True,
                )
                (befores if src is not None else rounds).append(ours)
            raws.append(raw)
        rows.append({"workers": workers, **summary(rounds, raws)})
        if befores:
            rows[-1]["baseline"] = summary(befores, raws)
    return rows


def render_io(doc: dict) -> list[str]:
    """The I/O-bound fan-outs: throughput by workers, and its growth from one worker."""
    cases = doc.get("io") or []
    if not cases or not cases[0]["rows"]:
        return []
    first_workers = cases[0]["rows"][0]["workers"]
    lines = [
        "",
        "The same fan-out with branch jobs that each wait (`asyncio.sleep`, as a call to another service",
        "would), raw BullMQ's jobs too: the jobs mostly wait rather than compete for the cores, so throughput",
        "can grow with worker processes. Growth is each one's throughput over its own with",
        f"{first_workers} worker. The shorter the wait, the sooner the two cores of this machine, not the",
        "workers, set the pace: then the CPU per job above shows.",
    ]
    for case in cases:
        lines += _io_table(case)
    return lines


def _io_table(case: dict) -> list[str]:
    rows = case["rows"]
    first = rows[0]
    lines = [
        "",
        f"| jobs waiting {case['io_ms']} ms: workers | raw BullMQ | growth | Flowcraft | growth | Flowcraft ÷ raw |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        raw, low_high = row["raw"], row["ratio_range"]
        raw_growth = raw["jobs_per_s"] / first["raw"]["jobs_per_s"]
        lines.append(
            f"| {row['workers']} | {raw['jobs_per_s']:,.0f} jobs/s | {raw_growth:.2f}x "
            f"| {row['jobs_per_s']:,.0f} jobs/s | {row['jobs_per_s'] / first['jobs_per_s']:.2f}x "
            f"| {row['ratio']:.2f} ({low_high[0]:.2f} to {low_high[1]:.2f}) |"
        )
    return lines


def io_growth_rows(doc: dict) -> list[str]:
    """The targets rows: Flowcraft's growth with workers against raw BullMQ's (within 10%)."""
    lines = []
    for case in doc.get("io") or []:
        rows = case["rows"]
        if len(rows) < 2:
            continue
        first, last = rows[0], rows[-1]
        ours = last["jobs_per_s"] / first["jobs_per_s"]
        raw = last["raw"]["jobs_per_s"] / first["raw"]["jobs_per_s"]
        met = "yes" if ours >= 0.9 * raw else "**no**"
        lines.append(
            f"| throughput grows with workers as raw BullMQ's does, within 10% ({first['workers']} → "
            f"{last['workers']} workers, jobs waiting {case['io_ms']} ms) "
            f"| Flowcraft {ours:.2f}x, raw BullMQ {raw:.2f}x | {met} |"
        )
    return lines


def render(doc: dict) -> str:
    """The "Distributed" section of docs/benchmarks.md: the chart, then one table."""
    meta, chain = doc["meta"], doc["chain"]
    load = f"load average {meta['load_before'][0]} before, {meta['load_after'][0]} after"
    lines = [
        "## Distributed: node jobs through BullMQ + Redis",
        "",
        f"Measured by `benchmarks/distributed_bench.py` ({meta['date']}) against raw BullMQ in the same run",
        f"(trivial jobs, same number of worker processes, concurrency 10 each): {meta['repeat']} rounds per case,",
        "raw BullMQ and Flowcraft alternating; figures are medians, the ratio's range over the rounds in",
        f"brackets. Machine: {meta['nproc']} CPUs shared with other work ({load}), so more than 2 worker",
        "processes compete for the cores and absolute figures are noisy: the same-run ratios are the result.",
        'Round trips are counted in the worker processes ("ours": those on the run store\'s connections:',
        "reading a job's state, committing it, and on one Redis completing it and taking the next with the",
        "next one's state and often the commit, with the successors' enqueue; the rest on BullMQ's own",
        "connections: a slot's own fetches, lock renewal, and in a chain the idle slots of the worker, which",
        "BullMQ wakes at every added job); commands by the server, including those inside Lua scripts. Figures in",
        "`benchmarks/results/distributed.json`.",
        "",
        "![Node jobs per second against raw BullMQ, by workers](assets/benchmarks/distributed.svg)",
        "",
        "| workload | raw BullMQ | Flowcraft | Flowcraft ÷ raw | round trips per job, Flowcraft (ours) · raw "
        "| Redis commands per job, Flowcraft · raw |",
        "|---|---|---|---|---|---|",
    ]
    for row in doc["fanout"]:
        workers = f"{row['workers']} worker{'s' if row['workers'] > 1 else ''}"
        raw = row["raw"]
        low, high = row["ratio_range"]
        lines.append(
            f"| fan-out of {meta['width']:,} node jobs, {workers} | {raw['jobs_per_s']:,.0f} jobs/s "
            f"| {row['jobs_per_s']:,.0f} jobs/s | {row['ratio']:.2f} ({low:.2f} to {high:.2f}) "
            f"| {row['round_trips']:.2f} ({row['ours']:.2f}) · {raw['round_trips']:.2f} "
            f"| {row['commands']:.1f} · {raw['commands']:.1f} |"
        )
    raw = chain["raw"]
    low, high = chain["hop_ratio_range"]
    lines.append(
        f"| chain of {meta['chain']:,} (each job adds the next), 1 worker "
        f"| {raw['s'] / meta['chain'] * 1000:.2f} ms/hop | {chain['s'] / meta['chain'] * 1000:.2f} ms/hop "
        f"| {chain['hop_ratio']:.2f}x the hop ({low:.2f} to {high:.2f}) "
        f"| {chain['round_trips']:.2f} ({chain['ours']:.2f}) · {raw['round_trips']:.2f} "
        f"| {chain['commands']:.1f} · {raw['commands']:.1f} |"
    )
    if "baseline" in chain:
        lines += [
            "",
            f"The same run with the workers of an earlier checkout ({meta.get('baseline', 'before')}), in every round "
            "between raw BullMQ and the current code:",
            "",
            "| workload | Flowcraft ÷ raw, before | now | round trips per job (ours), before | now "
            "| Redis commands per job, before | now |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in doc["fanout"]:
            before = row["baseline"]
            workers = f"{row['workers']} worker{'s' if row['workers'] > 1 else ''}"
            lines.append(
                f"| fan-out of {meta['width']:,}, {workers} | {before['ratio']:.2f} | {row['ratio']:.2f} "
                f"| {before['round_trips']:.2f} ({before['ours']:.2f}) | {row['round_trips']:.2f} ({row['ours']:.2f}) "
                f"| {before['commands']:.1f} | {row['commands']:.1f} |"
            )
        before = chain["baseline"]
        lines.append(
            f"| chain of {meta['chain']:,}, 1 worker (x the raw hop) | {before['hop_ratio']:.2f}x "
            f"| {chain['hop_ratio']:.2f}x | {before['round_trips']:.2f} ({before['ours']:.2f}) "
            f"| {chain['round_trips']:.2f} ({chain['ours']:.2f}) | {before['commands']:.1f} | {chain['commands']:.1f} |"
        )
    if "cpu_ms" in chain:
        lines += [
            "",
            "The workers' CPU per job (their process time during the run, all worker processes together;",
            "milliseconds): where a job's cost goes, and why more worker processes than cores fall behind.",
            "",
            "| workload | raw BullMQ | Flowcraft | Flowcraft, before |",
            "|---|---|---|---|",
        ]
        cases = [(f"fan-out of {meta['width']:,}, {r['workers']} worker{'s' if r['workers'] > 1 else ''}", r)
                 for r in doc["fanout"]]  # fmt: skip
        for label, row in [*cases, (f"chain of {meta['chain']:,}, 1 worker", chain)]:
            before = f"{row['baseline']['cpu_ms']:.2f}" if "baseline" in row else "-"
            lines.append(f"| {label} | {row['raw']['cpu_ms']:.2f} | {row['cpu_ms']:.2f} | {before} |")
    lines += render_io(doc)
    lines += render_targets(doc)
    return "\n".join(lines)


def render_targets(doc: dict) -> list[str]:
    """Issue 14's targets against this run: medians, with the rounds' range."""
    chain = doc["chain"]
    lines = [
        "",
        "Against issue 14's targets, in this run (medians, the rounds' range in brackets; on a shared",
        "machine a median near a target can fall on either side of it in another run):",
        "",
        "| target | this run | met? |",
        "|---|---|---|",
    ]

    def verdict(ok: bool, worst_ok: bool) -> str:
        if not ok:
            return "**no**"
        return "yes" if worst_ok else "yes (median; not every round)"

    for row in doc["fanout"]:
        workers = f"{row['workers']} worker{'s' if row['workers'] > 1 else ''}"
        low, high = row["ratio_range"]
        met = verdict(row["ratio"] >= 0.7, low >= 0.7)
        lines.append(f"| fan-out ≥ 0.7x raw BullMQ, {workers} | {row['ratio']:.2f} ({low:.2f} to {high:.2f}) | {met} |")
    low, high = chain["hop_ratio_range"]
    met = verdict(chain["hop_ratio"] <= 1.5, high <= 1.5)
    lines += io_growth_rows(doc)
    lines.append(f"| chain hop ≤ 1.5x a raw job hop | {chain['hop_ratio']:.2f}x ({low:.2f} to {high:.2f}) | {met} |")
    ours = max(row["ours"] for row in doc["fanout"])
    lines.append(
        f"| ≤ 3 round trips of ours per node job | {ours:.2f} fan-out, {chain['ours']:.2f} chain "
        f"| {'yes' if max(ours, chain['ours']) <= 3 else '**no**'} |"
    )
    lines += [
        "",
        "What changed in each round, and the figures of earlier runs, are in",
        "[Performance notes](performance-notes.md).",
    ]
    return lines


if __name__ == "__main__":
    asyncio.run(main())
