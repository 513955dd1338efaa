"""Durable-runs benchmark (standalone): the cost of one durable step of Flowcraft next to one
SQLite commit, LangGraph with its SQLite checkpointer and DBOS on SQLite, all in one run on
the same disk; and the time from entering the executor to the first recovered node after
a ``kill -9``.

    python benchmarks/durable_bench.py [--n 200] [--rounds 5] [--json OUT.json] [--docs docs/benchmarks.md]
    python benchmarks/durable_bench.py --smoke            # N = 10, one round, peers only if installed
    python benchmarks/durable_bench.py --render OUT.json [--docs docs/benchmarks.md]  # the docs section again

``bash scripts/bench`` runs it in ``benchmarks/.venv-durable`` (LangGraph's checkpointer and
DBOS need other versions of shared dependencies than the peers of ``benchmarks/.venv``).
Every case runs in a fresh process of its own on a fresh file in one temporary folder;
the cases take turns, round after round, in rotating order, and every figure is the
median of all samples. ``--docs`` replaces the "Durable runs" section of that markdown
file (or appends it); ``benchmarks/charts.py`` draws the chart from the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FACTORY = "durable_flows:make_chain"
SECTION = "## Durable runs"
RECOVERY_NAP = 0.002  # seconds each node of the crashed chain naps, so that the crash falls midway

# id → (label, what one sample is the cost of, package whose version is shown, short name).
# SQLite's own default is synchronous=FULL: LangGraph's saver and DBOS run at FULL unless told.
CASES: dict[str, tuple[str, str, str | None, str]] = {
    "sqlite.normal": ("SQLite INSERT + COMMIT, WAL, synchronous=NORMAL", "commit", None, "NORMAL"),
    "sqlite.full": ("SQLite INSERT + COMMIT, WAL, synchronous=FULL", "commit", None, "FULL"),
    "flowcraft.memory": ("Flowcraft, in memory (flow.run)", "step", "flowcraft-py", "in memory"),
    "flowcraft.durable": ("Flowcraft DurableExecutor, WAL, NORMAL (its default)", "step", "flowcraft-py", "NORMAL"),
    "flowcraft.durable.full": ("Flowcraft DurableExecutor, WAL, FULL", "step", "flowcraft-py", "FULL"),
    "langgraph": ("LangGraph + AsyncSqliteSaver, WAL, FULL, durability=async (its defaults)", "step",
                  "langgraph", "its defaults (WAL, FULL, durability=async)"),
    "langgraph.sync": ("LangGraph + AsyncSqliteSaver, WAL, FULL, durability=sync", "step", "langgraph",
                       "WAL, FULL, durability=sync"),
    "langgraph.normal": ("LangGraph + AsyncSqliteSaver, WAL, NORMAL, durability=sync", "step", "langgraph",
                         "WAL, NORMAL, durability=sync"),
    "dbos": ("DBOS on SQLite, rollback journal, FULL (its defaults)", "step", "dbos",
             "its defaults (rollback journal, FULL)"),
    "dbos.wal": ("DBOS on SQLite, file switched to WAL first, FULL", "step", "dbos", "WAL, FULL"),
}  # fmt: skip
PEERS = {"langgraph": ("langgraph", "langgraph.sync", "langgraph.normal"), "dbos": ("dbos", "dbos.wal")}
REQUIRED_IMPORTS = {"langgraph": "langgraph.checkpoint.sqlite.aio", "dbos": "dbos"}


# ---- the cases (each in a process of its own: ``--case ID``) ---------------------------------


def sqlite_commits(folder: Path, n: int, reps: int, synchronous: str) -> list[float]:
    """Seconds per ``INSERT`` + ``COMMIT`` of a 100-byte row, ``reps`` samples of ``n`` commits."""
    db = sqlite3.connect(folder / f"commits-{synchronous.lower()}.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.commit()
    row = ("x" * 100,)
    samples = []
    for rep in range(reps + 1):  # the first is a warm-up
        started = time.perf_counter()
        for _ in range(n):
            db.execute("INSERT INTO t (v) VALUES (?)", row)
            db.commit()
        if rep:
            samples.append((time.perf_counter() - started) / n)
    db.close()
    return samples


async def timed(run: Callable[[], Awaitable[int]], n: int, reps: int) -> list[float]:
    """Seconds per step of ``run`` (a chain of ``n`` steps returning its count), after one warm-up."""
    samples = []
    for rep in range(reps + 1):
        started = time.perf_counter()
        count = await run()
        elapsed = time.perf_counter() - started
        if count != n:
            raise SystemExit(f"the chain counted {count}, not {n}")
        if rep:
            samples.append(elapsed / n)
    return samples


async def flowcraft_steps(folder: Path, n: int, reps: int, synchronous: str | None) -> list[float]:
    from flowcraft import TypedContext
    from flowcraft.durable import DurableExecutor, SqliteRunStore
    from flowcraft.engine import flow_from_factory

    flow = flow_from_factory(FACTORY)

    async def in_memory() -> int:
        ctx = TypedContext()
        await flow.run(ctx)
        return int(await ctx.get("count"))

    if synchronous is None:
        return await timed(in_memory, n, reps)
    store = SqliteRunStore(str(folder / f"flowcraft-{synchronous.lower()}.db"), synchronous=synchronous)
    async with DurableExecutor(store) as executor:

        async def durable() -> int:
            ctx = TypedContext()
            await flow.run(ctx, executor=executor)
            return int(await ctx.get("count"))

        return await timed(durable, n, reps)


async def langgraph_steps(
    folder: Path, n: int, reps: int, durability: str | None, synchronous: str = "FULL"
) -> list[float]:
    from typing import TypedDict

    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        count: int

    async def bump(state: State) -> dict[str, int]:
        return {"count": state["count"] + 1}

    graph = StateGraph(State)
    for i in range(n):
        graph.add_node(f"n{i}", bump)
        graph.add_edge(START if i == 0 else f"n{i - 1}", f"n{i}")
    graph.add_edge(f"n{n - 1}", END)
    name = f"langgraph-{durability or 'default'}-{synchronous.lower()}.db"
    async with aiosqlite.connect(str(folder / name)) as conn:  # what from_conn_string does, plus the pragma
        await conn.execute(f"PRAGMA synchronous={synchronous}")
        app = graph.compile(checkpointer=AsyncSqliteSaver(conn))
        runs = iter(range(reps + 1))

        async def invoke() -> int:
            config: Any = {"configurable": {"thread_id": f"t{next(runs)}"}, "recursion_limit": n + 10}
            extra = {"durability": durability} if durability else {}
            state = await app.ainvoke({"count": 0}, config, **extra)
            return int(state["count"])

        return await timed(invoke, n, reps)


def dbos_app(path: Path) -> tuple[Any, Any]:
    """DBOS configured on the SQLite file ``path``, and a workflow of ``n`` steps counting
    (the step SIGKILLs its process at ``$DURABLE_BENCH_CRASH``, naps ``$DURABLE_BENCH_NAP``)."""
    from dbos import DBOS

    crash_at = int(os.environ.get("DURABLE_BENCH_CRASH", "-1"))
    nap = float(os.environ.get("DURABLE_BENCH_NAP", "0"))
    first: list[float] = []

    @DBOS.step()
    async def bump_step(count: int) -> int:
        if nap:
            if not first:
                first.append(time.time())
            if count == crash_at:
                os.kill(os.getpid(), signal.SIGKILL)
            await asyncio.sleep(nap)
        return count + 1

    @DBOS.workflow()
    async def dbos_chain(n: int) -> int:
        count = 0
        for _ in range(n):
            count = await bump_step(count)
        return count

    DBOS(config={"name": "durable-bench", "system_database_url": f"sqlite:///{path}", "log_level": "WARNING"})
    dbos_chain.first = first  # type: ignore[attr-defined]
    return DBOS, dbos_chain


async def dbos_steps(folder: Path, n: int, reps: int, wal: bool) -> list[float]:
    path = folder / f"dbos-{'wal' if wal else 'default'}.sqlite"
    if wal:  # the journal mode is kept in the file: DBOS opens it in WAL from then on
        sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").fetchall()
    dbos, chain = dbos_app(path)
    dbos.launch()
    try:
        return await timed(lambda: chain(n), n, reps)
    finally:
        dbos.destroy()


async def run_case(case: str, parent: Path, n: int, reps: int) -> list[float]:
    folder = parent / f"{case}-{os.getpid()}"  # fresh files for every process
    folder.mkdir()
    runners: dict[str, Callable[[], Any]] = {
        "sqlite.normal": lambda: sqlite_commits(folder, n, reps, "NORMAL"),
        "sqlite.full": lambda: sqlite_commits(folder, n, reps, "FULL"),
        "flowcraft.memory": lambda: flowcraft_steps(folder, n, reps, None),
        "flowcraft.durable": lambda: flowcraft_steps(folder, n, reps, "NORMAL"),
        "flowcraft.durable.full": lambda: flowcraft_steps(folder, n, reps, "FULL"),
        "langgraph": lambda: langgraph_steps(folder, n, reps, None),
        "langgraph.sync": lambda: langgraph_steps(folder, n, reps, "sync"),
        "langgraph.normal": lambda: langgraph_steps(folder, n, reps, "sync", "NORMAL"),
        "dbos": lambda: dbos_steps(folder, n, reps, wal=False),
        "dbos.wal": lambda: dbos_steps(folder, n, reps, wal=True),
    }
    result = runners[case]()
    return list(await result) if asyncio.iscoroutine(result) else list(result)


# ---- recovery (``--crash`` / ``--recover``: processes of their own) --------------------------


async def flowcraft_crash(path: str) -> None:
    """Start the chain durably and wait: ``FLOWCRAFT_TEST_CRASH_AT`` kills this process midway."""
    from flowcraft.durable import DurableExecutor

    async with DurableExecutor(path) as executor:
        handle = await executor.start(FACTORY, {"count": 0}, run_id="crashed")
        await handle.result(timeout=120)
    raise SystemExit("the run finished: the crash did not happen")


async def flowcraft_recover(path: str) -> dict[str, Any]:
    """Enter an executor on the crashed run's file; time to the first recovered node's prep."""
    import durable_flows

    from flowcraft.durable import DurableExecutor

    entered = time.time()
    async with DurableExecutor(path) as executor:
        handle = await executor.handle("crashed")
        await handle.result(timeout=120)
        context = await handle.context()
    if durable_flows.first_prep is None:
        raise SystemExit("no node ran in the recovering process")
    return {"latency": durable_flows.first_prep - entered, "count": context.get("count"),
            "taken_over": executor.taken_over}  # fmt: skip


async def dbos_crash(path: str, n: int) -> None:
    from dbos import SetWorkflowID

    dbos, chain = dbos_app(Path(path))
    dbos.launch()
    with SetWorkflowID("crashed"):
        await chain(n)
    raise SystemExit("the workflow finished: the crash did not happen")


async def dbos_recover(path: str) -> dict[str, Any]:
    importlib.import_module("dbos")  # imported before the clock starts, as Flowcraft's modules are

    entered = time.time()
    dbos, chain = dbos_app(Path(path))
    dbos.launch()
    try:
        handle = await dbos.retrieve_workflow_async("crashed")
        count = await handle.get_result()
    finally:
        dbos.destroy()
    if not chain.first:
        raise SystemExit("no step ran in the recovering process")
    return {"latency": chain.first[0] - entered, "count": count}


RESUMES = 20


async def resume_latencies(folder: Path, count: int = RESUMES) -> list[float]:
    """Seconds from ``resume()`` to the first step of the continuation (the wait node's
    ``post``), for ``count`` runs parked on a wait in one DurableExecutor."""
    import durable_flows

    from flowcraft import RunSuspended
    from flowcraft.durable import DurableExecutor

    latencies = []
    async with DurableExecutor(str(folder / "resume.db")) as executor:
        for i in range(count + 2):  # two warm-up runs
            handle = await executor.start("durable_flows:make_ask", run_id=f"ask-{i}")
            with contextlib.suppress(RunSuspended):
                await handle.result(timeout=30)
            started = time.perf_counter()
            await executor.resume(handle.run_id, "ask#1", i)
            await handle.result(timeout=30)  # the continuation noted when its post started
            if i >= 2:
                latencies.append(durable_flows.resumed_at[i] - started)
    return latencies


def recovery_round(runtime: str, folder: Path, n: int) -> dict[str, Any]:
    """Crash a run of ``runtime`` midway in one process, recover it in another."""
    path = str(folder / f"recovery-{runtime}-{time.monotonic_ns()}.db")
    env = {**os.environ, "DURABLE_BENCH_N": str(n), "DURABLE_BENCH_NAP": str(RECOVERY_NAP)}
    if runtime == "flowcraft":
        env["FLOWCRAFT_TEST_CRASH_AT"] = f"before_complete:n{n // 2}"
    else:
        env["DURABLE_BENCH_CRASH"] = str(n // 2)
    crashed = subprocess.run([sys.executable, __file__, "--crash", runtime, "--db", path, "--n", str(n)],
                             env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    if crashed.returncode != -signal.SIGKILL:
        raise RuntimeError(f"{runtime} crash process ended with {crashed.returncode}: {crashed.stderr[-2000:]}")
    env.pop("FLOWCRAFT_TEST_CRASH_AT", None)
    env.pop("DURABLE_BENCH_CRASH", None)
    recovered = subprocess.run([sys.executable, __file__, "--recover", runtime, "--db", path, "--n", str(n)],
                               env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    if recovered.returncode:
        raise RuntimeError(f"{runtime} recovery process ended with {recovered.returncode}: {recovered.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(recovered.stdout.strip().splitlines()[-1])
    if result["count"] != n:
        raise RuntimeError(f"{runtime} recovered run counted {result['count']}, not {n}")
    return result


# ---- the parent: rounds, results, report -----------------------------------------------------


def available(runtime: str) -> str | None:
    """Why a peer cannot run here, or None."""
    module = REQUIRED_IMPORTS.get(runtime)
    if module is None:
        return None
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    if done.returncode:
        return "cannot import: " + (done.stderr.strip().splitlines() or ["?"])[-1].split(": ", 1)[-1]
    return None


def version(package: str | None) -> str | None:
    if package is None:
        return f"SQLite {sqlite3.sqlite_version}"
    try:
        return f"{package} {metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "platform": platform.platform(terse=True),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version}  # fmt: skip


def commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() or None


def filesystem(folder: Path) -> str:
    """The file system type of ``folder`` (from /proc/mounts), e.g. ``ext4``."""
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, fstype, *_ = line.split()
            if str(folder.resolve()).startswith(mount) and len(mount) > len(best):
                best, kind = mount, fstype
    except OSError:
        pass
    return kind


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="durable-bench-", dir=args.dir))
    skipped = {case: why for runtime, cases in PEERS.items() if (why := available(runtime)) for case in cases}
    cases = [case for case in CASES if case not in skipped]
    doc: dict[str, Any] = {
        "meta": {"date": time.strftime("%Y-%m-%d", time.gmtime()), "mode": "smoke" if args.smoke else "full",
                 "n": args.n, "rounds": args.rounds, "reps": args.reps, "recovery_n": args.recovery_n,
                 "recovery_nap_s": RECOVERY_NAP, "machine": machine(), "folder_fs": filesystem(folder),
                 "load_before": [round(x, 2) for x in os.getloadavg()], "commit": commit()},
        "cases": {},
        "recovery": {},
    }  # fmt: skip
    samples: dict[str, list[float]] = {case: [] for case in cases}
    recoveries: dict[str, list[dict[str, Any]]] = {"flowcraft": [], "dbos": []}
    errors: dict[str, str] = {}
    started = time.perf_counter()
    try:
        for round_no in range(args.rounds):
            shift = round_no % len(cases)
            for case in cases[shift:] + cases[:shift]:
                if case in errors:
                    continue
                done = subprocess.run([sys.executable, __file__, "--case", case, "--dir", str(folder),
                                       "--n", str(args.n), "--reps", str(args.reps)],
                                      capture_output=True, text=True, timeout=600)  # fmt: skip
                if done.returncode:
                    errors[case] = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
                    print(f"  {case}: failed: {errors[case]}", file=sys.stderr)
                    continue
                samples[case] += json.loads(done.stdout.strip().splitlines()[-1])
            for runtime in recoveries:
                if runtime in skipped or f"recovery.{runtime}" in errors:
                    continue
                try:
                    recoveries[runtime].append(recovery_round(runtime, folder, args.recovery_n))
                except (RuntimeError, subprocess.TimeoutExpired, ValueError) as error:
                    errors[f"recovery.{runtime}"] = str(error).strip().splitlines()[-1]
                    print(f"  recovery {runtime}: failed: {error}", file=sys.stderr)
            print(f"round {round_no + 1}/{args.rounds} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        try:
            resumes = asyncio.run(resume_latencies(folder))
            doc["resume"] = {"samples": [round(x, 9) for x in resumes],
                             "median_s": round(statistics.median(resumes), 9)}  # fmt: skip
        except Exception as error:  # a failure here must not lose the other results
            doc["resume"] = {"error": f"{type(error).__name__}: {error}"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for case, (label, unit, package, short) in CASES.items():
        entry: dict[str, Any] = {"label": label, "short": short, "unit": unit, "version": version(package)}
        if case in skipped:
            entry["skipped"] = skipped[case]
        elif case in errors:
            entry["error"] = errors[case]
        else:
            entry["samples"] = [round(s, 9) for s in samples[case]]
            entry["median_s"] = round(statistics.median(samples[case]), 9)
        doc["cases"][case] = entry
    for runtime, rounds in recoveries.items():
        rec: dict[str, Any] = {}
        if runtime in skipped:
            rec["skipped"] = skipped["dbos"]
        elif f"recovery.{runtime}" in errors:
            rec["error"] = errors[f"recovery.{runtime}"]
        if rounds:
            latencies = [r["latency"] for r in rounds]
            rec["samples_s"] = [round(x, 4) for x in latencies]
            rec["median_s"] = round(statistics.median(latencies), 4)
        doc["recovery"][runtime] = rec
    doc["meta"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    doc["meta"]["duration_s"] = round(time.perf_counter() - started)
    doc["goals"] = goals(doc)
    return doc


def figure(doc: dict[str, Any], case: str) -> float | None:
    value: float | None = doc["cases"].get(case, {}).get("median_s")
    return value


def goals(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The goals of DURABILITY.md "Performance", each with its same-run figure."""
    rows: list[dict[str, Any]] = []

    def add(label: str, goal: str, measured: str, met: bool | None) -> None:
        rows.append({"label": label, "goal": goal, "measured": measured, "met": met})

    commit = figure(doc, "sqlite.normal")
    memory = figure(doc, "flowcraft.memory")
    for case, commit_case, label in (("flowcraft.durable", "sqlite.normal", "NORMAL"),
                                     ("flowcraft.durable.full", "sqlite.full", "FULL")):  # fmt: skip
        durable, unit = figure(doc, case), figure(doc, commit_case)
        if durable is None or memory is None or unit is None:
            continue
        overhead = durable - memory
        add(f"durability overhead per node, synchronous={label}", "≤ 5x one SQLite commit" if label == "NORMAL"
            else "(FULL: for information)", f"{overhead * 1e6:.1f} µs = {overhead / unit:.1f}x one commit "
            f"({unit * 1e6:.1f} µs)", overhead / unit <= 5 if label == "NORMAL" else None)  # fmt: skip
    durable, full = figure(doc, "flowcraft.durable"), figure(doc, "flowcraft.durable.full")
    for runtime, cases in PEERS.items():
        name = "LangGraph + SQLite checkpointer" if runtime == "langgraph" else "DBOS on SQLite"
        default = figure(doc, cases[0])
        if durable is None or default is None:
            entry = doc["cases"][cases[0]]
            add(f"per step vs {name}", "≥ 10x faster", f"not measured: {entry.get('skipped') or entry.get('error')}",
                None)  # fmt: skip
            continue
        add(f"per step vs {name}, both at their defaults", "≥ 10x faster", f"{default / durable:.1f}x",
            default / durable >= 10)  # fmt: skip
        others = [f"{value / durable:.1f}x vs {doc['cases'][case]['short']}"
                  for case in cases[1:] if (value := figure(doc, case)) is not None]  # fmt: skip
        if others:
            add(f"per step vs {name}, its other settings (Flowcraft at NORMAL)", "(for information)",
                "; ".join(others), None)  # fmt: skip
        if full is not None:
            same = [f"{value / full:.1f}x vs {doc['cases'][case]['short']}" for case in cases
                    if "FULL" in doc["cases"][case]["short"] and (value := figure(doc, case)) is not None]  # fmt: skip
            add(f"like for like: Flowcraft at FULL vs {name} at FULL", "(for information)", "; ".join(same), None)
    if commit is None:
        rows.insert(0, {"label": "SQLite commit", "goal": "—", "measured": "not measured", "met": None})
    for runtime, name in (("flowcraft", "Flowcraft"), ("dbos", "DBOS")):
        rec = doc["recovery"].get(runtime, {})
        goal = "≤ 0.2 s" if runtime == "flowcraft" else "(for information)"
        label = f"{name}: executor entered → first recovered node"
        if "median_s" in rec:
            met = rec["median_s"] <= 0.2 if runtime == "flowcraft" else None
            add(label, goal, f"{rec['median_s'] * 1e3:.0f} ms", met)
        else:
            add(label, goal, f"not measured: {rec.get('skipped') or rec.get('error')}", None)
    resume = doc.get("resume", {})
    if "median_s" in resume:
        add("resume of an awaiting run → first node", "≤ 10 ms", f"{resume['median_s'] * 1e3:.2f} ms",
            resume["median_s"] <= 0.010)  # fmt: skip
    else:
        add("resume of an awaiting run → first node", "≤ 10 ms", f"not measured: {resume.get('error', '?')}", None)
    return rows


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def table(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(case, median per step/commit, ÷ one commit (NORMAL), ÷ a Flowcraft durable step (NORMAL))."""
    commit, durable = figure(doc, "sqlite.normal"), figure(doc, "flowcraft.durable")
    rows = []
    for entry in doc["cases"].values():
        value = entry.get("median_s")
        if value is None:
            why = entry.get("skipped") or entry.get("error")
            rows.append((entry["label"], f"n/a ({why})", "—", "—"))
            continue
        vs_commit = f"{value / commit:.1f}x" if commit else "—"
        faster = f"{value / durable:.{3 if value < durable else 1}f}x" if durable and entry["unit"] == "step" else "—"
        rows.append((entry["label"], fmt(value) + f" per {entry['unit']}", vs_commit, faster))
    return rows


def render(doc: dict[str, Any]) -> str:
    """The "Durable runs" section of docs/benchmarks.md: conditions, the chart, the goals, the cases."""
    meta, m = doc["meta"], doc["meta"]["machine"]
    versions = sorted({e["version"] for e in doc["cases"].values() if e.get("version") and "samples" in e})
    lines = [
        f"{SECTION}: per step against one SQLite commit, LangGraph and DBOS",
        "",
        f"Measured by `benchmarks/durable_bench.py` ({meta['date']}, {meta['mode']} run, commit "
        f"`{meta.get('commit')}`, {meta['duration_s']} s): "
        f"a chain of N = {meta['n']} trivial steps (each adds 1 to a counter), every case in a fresh process "
        f"on a fresh SQLite file in one temporary folder ({meta['folder_fs']}), {meta['rounds']} rounds in "
        f"rotating order, {meta['reps']} timed runs per process after a warm-up; figures are medians. "
        "Figures in `benchmarks/results/durable.json`.",
        "",
        f"- **Machine**: {m['nproc']} CPUs, {m['cpu']}, {m['platform']}, Python {m['python']}, SQLite {m['sqlite']}; "
        f"shared with other work (load average {meta['load_before'][0]} before, {meta['load_after'][0]} after): "
        "absolute times are noisy, the ratios within the run are the result.",
        f"- **Versions**: {', '.join(versions)}",
        "- **Settings**: SQLite's own default is `synchronous=FULL`, which LangGraph's saver and DBOS keep; "
        "Flowcraft's default is `NORMAL` in WAL (a commit survives a crash of the process; the last ones may "
        'not survive a power loss), `FULL` on request. The "like for like" rows compare at `FULL`.',
        "- **Durability overhead** = Flowcraft durable - Flowcraft in memory, per node. A LangGraph step is "
        "one superstep (one checkpoint); a DBOS step is one `@DBOS.step()` call in an async workflow.",
        f"- **Recovery**: a process runs a chain of {meta['recovery_n']} nodes that nap "
        f"{meta['recovery_nap_s'] * 1e3:.0f} ms each and is SIGKILLed at the middle one; a new process enters "
        "the executor (`DurableExecutor(file)`; for DBOS `DBOS(config)` + `DBOS.launch()`) on the same file; "
        "the time from just before that to the first recovered node's start (`time.time()`, imports excluded), "
        "median of the rounds. The recovered run's count is checked (= N).",
        "",
        "![Cost of one durable step, side by side](assets/benchmarks/durable.svg)",
        "",
        "| goal | target | measured (same run) | met |",
        "|---|---|---|---|",
    ]
    for row in doc["goals"]:
        met = {True: "yes", False: "**no**", None: "n/a"}[row["met"]]
        lines.append(f"| {row['label']} | {row['goal']} | {row['measured']} | {met} |")
    header = "| case | median | ÷ one commit (NORMAL) | ÷ one Flowcraft durable step (NORMAL) |"
    lines += ["", header, "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in table(doc)]
    return "\n".join(lines)


def update_docs(path: Path, section: str) -> None:
    """Replace the "Durable runs" section of ``path`` (up to the next ``## `` heading), or append it."""
    text = path.read_text() if path.is_file() else ""
    pattern = re.compile(rf"^{re.escape(SECTION)}.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip() + "\n\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section.rstrip() + "\n"
    path.write_text(text)


def print_table(doc: dict[str, Any]) -> None:
    print(f"{'case':64} {'median':>18} {'÷ commit':>9} {'÷ flowcraft':>11}")
    for label, value, vs_commit, faster in table(doc):
        print(f"{label:64} {value:>18} {vs_commit:>9} {faster:>11}")
    for row in doc["goals"]:
        met = {True: "met", False: "MISSED", None: "-"}[row["met"]]
        print(f"{row['label']:54} {row['goal']:>24}  {row['measured']}  [{met}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, help="steps per chain (default 200; 10 with --smoke)")
    parser.add_argument("--rounds", type=int, help="rounds (default 5; 1 with --smoke)")
    parser.add_argument("--reps", type=int, help="timed runs per case per process (default 3; 1 with --smoke)")
    parser.add_argument("--recovery-n", type=int, help="nodes of the crashed chain (default 200; 10 with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round, peers only if installed")
    parser.add_argument("--dir", help="where the temporary folder goes (default: the system's temp folder)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--docs", type=Path, help="replace (or append) the Durable runs section of this markdown")
    parser.add_argument("--render", type=Path, help="print the docs section for this results file, then exit")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--crash", help=argparse.SUPPRESS)
    parser.add_argument("--recover", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    small = args.smoke
    args.n = args.n or (10 if small else 200)
    args.rounds = args.rounds or (1 if small else 5)
    args.reps = args.reps or (1 if small else 3)
    args.recovery_n = args.recovery_n or (10 if small else 200)
    sys.path.insert(0, str(HERE))  # durable_flows, for the factory name
    if args.case or args.crash or args.recover:
        os.environ["DURABLE_BENCH_N"] = str(args.n)
    if args.render:
        doc = json.loads(args.render.read_text())
        doc["goals"] = goals(doc)  # from the samples, with this version's wording
        if args.docs:
            update_docs(args.docs, render(doc))
        else:
            print(render(doc))
    elif args.case:
        print(json.dumps(asyncio.run(run_case(args.case, Path(args.dir), args.n, args.reps))))
    elif args.crash:
        asyncio.run(flowcraft_crash(args.db) if args.crash == "flowcraft" else dbos_crash(args.db, args.n))
    elif args.recover:
        result = asyncio.run(flowcraft_recover(args.db) if args.recover == "flowcraft" else dbos_recover(args.db))
        print(json.dumps(result))
    else:
        doc = run_all(args)
        print_table(doc)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(doc, indent=1) + "\n")
        if args.docs:
            update_docs(args.docs, render(doc))
            print(f"wrote the {SECTION[3:]} section of {args.docs}")


if __name__ == "__main__":
    main()
