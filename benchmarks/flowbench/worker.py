"""The worker process of one Python runtime.

``python -m flowbench.worker RUNTIME`` reads JSON commands on stdin, one per line, and
answers each with one JSON line on stdout:

- ``{"op": "hello"}`` → ``{"ok": true, "version", "implements", "unsupported"}`` (or
  ``{"ok": false, "error"}`` when the runtime's library cannot be imported);
- ``{"op": "run", "workload", "size", "reps", "budget", "warmup"}`` → ``{"ok": true,
  "times": [seconds, ...]}``, ``{"ok": false, "na": reason}`` or ``{"ok": false, "error"}``;
- ``{"op": "quit"}``.

A worker holds one built case at a time, as ``benchmarks/floors.py`` measures: asked for
another case, it drops the one it holds and runs ``gc.collect()`` before building the new
one, so no case is timed beside the heap of the others (a large live heap makes every
collector pass longer, which is the runtime's cost only for what it built itself). The
build is not timed. A case is warmed with ``WARMUP_RUNS`` untimed runs the first time the
worker builds it (CPython 3.11 specialises a function from its 8th call: a single warm-up
overstates the chain by ~25%) and ``REWARM_RUNS`` when it is rebuilt in a later round
(the code is specialised by then), or for ``WARMUP_SECONDS`` when it is slow. Every run
happens on one event loop kept for the worker's lifetime, after a ``gc.collect()``; a
workload id ending in ``.nogc`` runs its base workload with the
garbage collector paused during the timed run (W2 is reported with and without GC).

``python -m flowbench.worker RUNTIME --memory K`` measures W5 once (fresh process) and
prints ``{"graph", "run", "total"}`` in bytes (tracemalloc), then exits.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from .runtimes import Adapter, Unavailable, load_adapter

__all__ = ["REWARM_RUNS", "WARMUP_RUNS", "WARMUP_SECONDS", "main"]

WARMUP_RUNS = 10
REWARM_RUNS = 2
WARMUP_SECONDS = 3.0
NO_GC = ".nogc"


class Worker:
    """Runs the workloads of one adapter on one event loop."""

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self.loop = asyncio.new_event_loop()
        self.cases: dict[tuple[str, int], Callable[[], Awaitable[Any]]] = {}  # at most one
        self.built: set[tuple[str, int]] = set()  # cases built before (warmed once already)

    def hello(self) -> dict[str, Any]:
        return {
            "ok": True,
            "version": self.adapter.version(),
            "implements": sorted(self.adapter.timed),
            "unsupported": self.adapter.unsupported,
            "import_argv": [sys.executable, "-c", import_probe(self.adapter.import_statement)],
            "hello_argv": [sys.executable, "-c", self.adapter.hello_source],
        }

    def run(self, workload: str, size: int, reps: int, budget: float, warmup: bool) -> dict[str, Any]:
        if workload in self.adapter.unsupported:
            return {"ok": False, "na": self.adapter.unsupported[workload]}
        base = workload.removesuffix(NO_GC)
        factory = self.adapter.timed.get(base)
        if base in self.adapter.unsupported:
            return {"ok": False, "na": self.adapter.unsupported[base]}
        if factory is None:
            return {"ok": False, "na": "not implemented"}
        key = (base, size)
        paused = workload.endswith(NO_GC)
        times: list[float] = []
        fn = self.cases.get(key)
        if fn is None:
            self.cases.clear()  # release the case held before, so its heap is not timed here
            gc.collect()
            try:
                fn = factory(size)
            except Unavailable as reason:
                return {"ok": False, "na": str(reason)}
            self.cases[key] = fn
            warm_runs = REWARM_RUNS if key in self.built else WARMUP_RUNS
            self.built.add(key)
            if warmup:
                first = self._time(fn)
                if first > 1.0:  # slow enough that the warm-up is a fair sample and a rerun costs
                    times.append(first)
                else:
                    warmed, runs = first, 1
                    while runs < warm_runs and warmed < WARMUP_SECONDS:
                        warmed += self._time(fn)
                        runs += 1
        spent = sum(times)
        while len(times) < reps and (not times or spent < budget):
            elapsed = self._time(fn, paused)
            times.append(elapsed)
            spent += elapsed
        return {"ok": True, "times": times}

    def _time(self, fn: Callable[[], Awaitable[Any]], paused: bool = False) -> float:
        gc.collect()
        if not paused:
            return self.loop.run_until_complete(_timed(fn))
        gc.disable()
        try:
            return self.loop.run_until_complete(_timed(fn))
        finally:
            gc.enable()


def import_probe(statement: str) -> str:
    """A ``python -c`` program printing the seconds ``statement`` takes once asyncio is imported."""
    pre = "" if statement == "import asyncio" else "import asyncio\n"
    return f"import time\n{pre}started = time.perf_counter()\n{statement}\nprint(time.perf_counter() - started)\n"


async def _timed(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


def measure_memory(adapter: Adapter, size: int) -> dict[str, Any]:
    """W5 in this (fresh) process: bytes allocated by building, and the peak while running."""
    if adapter.memory is None:
        return {"ok": False, "na": "not implemented"}
    build, run = adapter.memory(size)
    loop = asyncio.new_event_loop()
    gc.collect()
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    built = build()
    after_build = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    loop.run_until_complete(run(built))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    loop.close()
    return {"ok": True, "graph": after_build - baseline, "run": peak - after_build, "total": peak - baseline}


def _serve(adapter: Adapter | None, import_error: str | None) -> None:
    worker = Worker(adapter) if adapter is not None else None
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        op = command.get("op")
        if op == "quit":
            break
        reply: dict[str, Any]
        if worker is None:
            reply = {"ok": False, "error": import_error}
        elif op == "hello":
            reply = worker.hello()
        elif op == "run":
            try:
                reply = worker.run(
                    command["workload"], int(command["size"]), int(command.get("reps", 3)),
                    float(command.get("budget", 0.3)), bool(command.get("warmup", True)),
                )  # fmt: skip
            except Exception as error:  # a failing peer is reported, not fatal
                reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        else:
            reply = {"ok": False, "error": f"unknown op {op!r}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Entry point; see the module docstring."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stderr.write("usage: python -m flowbench.worker RUNTIME [--memory K]\n")
        return 2
    name = args[0]
    try:
        adapter: Adapter | None = load_adapter(name)
        import_error = None
    except ImportError as error:
        adapter, import_error = None, f"cannot import: {error}"
    if len(args) >= 3 and args[1] == "--memory":
        result = measure_memory(adapter, int(args[2])) if adapter else {"ok": False, "error": import_error}
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    _serve(adapter, import_error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
