"""Runs every runtime in its own process, interleaved round-robin, and collects samples.

For each round, for each case (workload x size), every runtime runs the case in turn
(the order rotates each round), so the noise of a shared machine falls on all of them
alike. Timed cases go to the runtime's long-lived worker; ``fresh`` cases (memory,
import, hello world) start a new process per sample.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from .runtimes import NODE_RUNTIMES, PYTHON_RUNTIMES, RuntimeInfo
from .worker import REWARM_RUNS, WARMUP_RUNS
from .workloads import Workload, all_workloads

__all__ = ["BENCH_DIR", "Options", "run_benchmarks"]

BENCH_DIR = Path(__file__).resolve().parent.parent
TS_DIR = BENCH_DIR / "ts"


@dataclasses.dataclass
class Options:
    """What to run."""

    smoke: bool = False
    rounds: int = 5
    memory_rounds: int = 3
    reps: int = 3
    budget: float = 0.3
    slow_cutoff: float = 3.0
    """A runtime whose best sample of a case exceeds this many seconds is not re-run in later rounds."""
    only: tuple[str, ...] = ()
    """Workload id prefixes to run (empty: all)."""
    runtimes: tuple[str, ...] = ()
    """Runtime names to run (empty: every available one)."""
    size: int | None = None
    """Override every workload's sizes with this one (for quick checks and the test)."""
    python: str = sys.executable
    log: IO[str] | None = None


class WorkerProcess:
    """One runtime's long-lived worker, spoken to in JSON lines."""

    def __init__(self, info: RuntimeInfo, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.info = info
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(command) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError) as error:
            return {"ok": False, "error": f"worker died: {error}"}
        if not line:
            return {"ok": False, "error": f"worker exited with code {self.proc.poll()}"}
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _say(options: Options, message: str) -> None:
    out = options.log if options.log is not None else sys.stderr
    out.write(message + "\n")
    out.flush()


def _python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(BENCH_DIR) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONHASHSEED", "0")
    # Import times must not include compiling sources: let Python cache bytecode.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _start_workers(options: Options, notes: list[str]) -> tuple[list[WorkerProcess], dict[str, Any]]:
    workers: list[WorkerProcess] = []
    status: dict[str, Any] = {}
    node = shutil.which("node")
    for info in PYTHON_RUNTIMES + NODE_RUNTIMES:
        entry: dict[str, Any] = {"label": info.label, "lang": info.lang, "floor": info.floor}
        status[info.name] = entry
        if options.runtimes and not info.is_floor and not _selected(info, options.runtimes):
            entry["skipped"] = "not selected"
            continue
        if info.lang == "python":
            argv = [options.python, "-m", "flowbench.worker", info.name]
            worker = WorkerProcess(info, argv, BENCH_DIR, _python_env())
        else:
            if node is None:
                entry["skipped"] = "node is not installed"
                notes.append(f"skipped {info.label}: node is not installed")
                continue
            if info.name == "flowcraft-ts" and not (TS_DIR / "node_modules" / "flowcraft").is_dir():
                entry["skipped"] = "benchmarks/ts/node_modules missing (run bash scripts/bench to install)"
                notes.append(f"skipped {info.label}: {entry['skipped']}")
                continue
            worker = WorkerProcess(info, [node, "--expose-gc", "worker.mjs", info.name], TS_DIR, dict(os.environ))
        hello = worker.ask({"op": "hello"})
        if not hello.get("ok"):
            worker.close()
            entry["skipped"] = hello.get("error", "unavailable")
            notes.append(f"skipped {info.label}: {entry['skipped']}")
            continue
        entry.update(
            version=hello["version"],
            import_argv=hello.get("import_argv"),
            hello_argv=hello.get("hello_argv"),
            unsupported=hello.get("unsupported", {}),
        )
        if entry["import_argv"]:  # once untimed, so bytecode caches exist before any import is timed
            cwd = BENCH_DIR if info.lang == "python" else TS_DIR
            subprocess.run(entry["import_argv"], cwd=cwd, env=_python_env(), capture_output=True, check=False)
        workers.append(worker)
    return workers, status


def _selected(info: RuntimeInfo, chosen: tuple[str, ...]) -> bool:
    """Whether ``--runtime`` chose ``info`` (the hand-written floor comes with Flowcraft)."""
    return info.name in chosen or (info.name == "handwritten" and "flowcraft" in chosen)


def _cases(options: Options) -> list[tuple[Workload, int]]:
    cases = []
    for workload in all_workloads():
        if options.only and not any(workload.id.startswith(prefix) for prefix in options.only):
            continue
        sizes = workload.smoke_sizes if options.smoke else workload.sizes
        if options.size is not None and workload.size_name != "-":
            sizes = (options.size,)
        cases.extend((workload, size) for size in sizes)
    return cases


def _fresh_sample(workload: Workload, size: int, worker: WorkerProcess, entry: dict[str, Any]) -> dict[str, Any]:
    """One sample of a ``fresh`` workload, in new processes."""
    info = worker.info
    if workload.id in entry.get("unsupported", {}):
        return {"ok": False, "na": entry["unsupported"][workload.id]}
    if workload.id == "w5.memory":
        if info.lang == "python":
            argv = [*worker.proc.args[:-1], info.name, "--memory", str(size)]  # type: ignore[index]
            env, cwd = _python_env(), BENCH_DIR
        else:
            node = str(worker.proc.args[0])  # type: ignore[index]
            argv, env, cwd = [node, "--expose-gc", "worker.mjs", info.name, "--memory", str(size)], None, TS_DIR
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0 or not done.stdout.strip():
            return {"ok": False, "error": done.stderr.strip()[-500:] or f"exit {done.returncode}"}
        reply: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        if reply.get("ok"):
            return {"ok": True, "value": reply["total"], "extra": {"graph": reply["graph"], "run": reply["run"]}}
        return reply
    cwd = BENCH_DIR if info.lang == "python" else TS_DIR
    env = _python_env() if info.lang == "python" else None
    if workload.id == "startup.import":
        argv = entry.get("import_argv")
        if not argv:
            return {"ok": False, "na": "nothing to import (the floor)"}
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            return {"ok": False, "error": done.stderr.strip()[-500:]}
        return {"ok": True, "value": float(done.stdout.strip().splitlines()[-1])}
    if workload.id == "startup.hello":
        started = time.perf_counter()
        done = subprocess.run(
            entry["hello_argv"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0 or "hello" not in done.stdout:
            return {"ok": False, "error": done.stderr.strip()[-500:] or "no hello printed"}
        return {"ok": True, "value": elapsed}
    return {"ok": False, "na": f"no fresh-process handler for {workload.id}"}


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    node = shutil.which("node")
    node_version = None
    if node:
        node_version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "node": node_version,
    }


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=BENCH_DIR, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def run_benchmarks(options: Options) -> dict[str, Any]:
    """Run the selected cases round-robin; returns the results document (see :mod:`flowbench.report`)."""
    if options.smoke:
        options.rounds, options.memory_rounds, options.reps, options.budget = 1, 1, 1, 0.0
    notes: list[str] = []
    started = time.time()
    workers, status = _start_workers(options, notes)
    for note in notes:
        _say(options, f"note: {note}")
    cases = _cases(options)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        for round_index in range(options.rounds):
            _say(options, f"round {round_index + 1}/{options.rounds}")
            for workload, size in cases:
                if workload.kind == "fresh" and round_index >= (
                    options.memory_rounds if workload.id == "w5.memory" else options.rounds
                ):
                    continue
                key = f"{workload.id}@{size}"
                by_runtime = results.setdefault(key, {})
                shift = round_index % max(1, len(workers))
                for worker in workers[shift:] + workers[:shift]:
                    name = worker.info.name
                    if worker.info.is_floor and workload.floor_id != workload.id:
                        continue  # the floor is measured once, under the baseline workload
                    if workload.id.endswith(".nogc") and worker.info.lang != "python":
                        continue  # pausing Python's garbage collector: Python runtimes only
                    slot = by_runtime.setdefault(name, {"samples": []})
                    if "na" in slot or "error" in slot:
                        continue
                    if slot["samples"] and min(slot["samples"]) > options.slow_cutoff:
                        continue
                    if workload.kind == "fresh":
                        reply = _fresh_sample(workload, size, worker, status[name])
                        if reply.get("ok"):
                            slot["samples"].append(reply["value"])
                            for metric, value in reply.get("extra", {}).items():
                                slot.setdefault("extra", {}).setdefault(metric, []).append(value)
                    else:
                        reply = worker.ask(
                            {
                                "op": "run", "workload": workload.id, "size": size, "reps": options.reps,
                                "budget": options.budget, "warmup": True,
                            }
                        )  # fmt: skip
                        if reply.get("ok"):
                            slot["samples"].extend(reply["times"])
                    if not reply.get("ok"):
                        if "na" in reply:
                            slot["na"] = reply["na"]
                        else:
                            slot["error"] = reply.get("error", "failed")
                            _say(options, f"  {key} {name}: error: {slot['error']}")
                best = {
                    name: min(slot["samples"]) for name, slot in by_runtime.items() if slot["samples"]
                }  # progress line
                _say(options, f"  {key}: " + ", ".join(f"{n}={v:.4g}" for n, v in best.items()))
    finally:
        for worker in workers:
            worker.close()
    for entry in status.values():
        entry.pop("import_argv", None)
        entry.pop("hello_argv", None)
    return {
        "meta": {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "mode": "smoke" if options.smoke else "full",
            "rounds": options.rounds,
            "memory_rounds": options.memory_rounds,
            "reps_per_round": options.reps,
            "warmup_runs": WARMUP_RUNS,
            "rewarm_runs": REWARM_RUNS,
            "slow_cutoff_s": options.slow_cutoff,
            "duration_s": round(time.time() - started, 1),
            "commit": _git_commit(),
            "machine": _machine(),
        },
        "runtimes": status,
        "notes": notes,
        "workloads": {w.id: dataclasses.asdict(w) | {"floor_id": w.floor_id} for w in all_workloads()},
        "results": results,
    }
