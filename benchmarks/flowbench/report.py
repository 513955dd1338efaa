"""The markdown report: charts, the targets checked, then every case side by side.

``python -m flowbench.report RESULTS.json [OUT.md]`` renders a results file written by
``python benchmarks/run.py`` (to stdout without ``OUT.md``).

Ratios use each runtime's best (minimum) sample, the figure least disturbed by other
load on a shared machine; medians are shown next to it. Python runtimes are compared
with plain asyncio, node runtimes with plain JS on node: "x floor" is always against the
runtime's own floor, and "Flowcraft ÷" compares Flowcraft for Python's time with a
Python peer's time, or its floor ratio with Flowcraft TS's floor ratio.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["evaluate_targets", "main", "render", "render_eager"]

FLOWCRAFT = "flowcraft"
HANDWRITTEN = "handwritten"
# (file in docs/assets/benchmarks/, alt text): drawn by benchmarks/charts.py
CHARTS = [
    ("per-node.svg", "W1: cost per node of a chain of no-op nodes, every runtime"),
    ("fan-out.svg", "W2: fan-out and join against asyncio.gather"),
    ("batch.svg", "W3: parallel batches against asyncio.gather"),
]


def _fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _fmt_bytes(value: float) -> str:
    if abs(value) < 10_000:
        return f"{value:.0f} B"
    if abs(value) < 10_000_000:
        return f"{value / 1024:.1f} KB"
    return f"{value / 1024 / 1024:.1f} MB"


def _fmt(value: float, unit: str) -> str:
    return _fmt_bytes(value) if unit == "bytes" else _fmt_time(value)


def _per(value: float, size: int, unit: str) -> str:
    if unit == "bytes":
        return f"{value / size / 1024:.2f} KB"
    return f"{value / size * 1e6:.3f} µs"


class Results:
    """Convenient access to a results document."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.runtimes: dict[str, Any] = doc["runtimes"]
        self.workloads: dict[str, Any] = doc["workloads"]
        self.results: dict[str, dict[str, Any]] = doc["results"]

    def slot(self, workload: str, size: int, runtime: str) -> dict[str, Any] | None:
        slot: dict[str, Any] | None = self.results.get(f"{workload}@{size}", {}).get(runtime)
        return slot

    def best(self, workload: str, size: int, runtime: str) -> float | None:
        slot = self.slot(workload, size, runtime)
        return min(slot["samples"]) if slot and slot["samples"] else None

    def floor_ratio(self, workload: str, size: int, runtime: str) -> float | None:
        value = self.best(workload, size, runtime)
        floor_name = self.runtimes.get(runtime, {}).get("floor", "asyncio")
        floor = self.best(self.workloads[workload]["floor_id"], size, floor_name)
        if value is None or floor is None or floor <= 0:
            return None
        return value / floor


def _ratio(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}x"


def evaluate_targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue with Flowcraft's measured figure and whether it is met."""
    r = Results(doc)
    rows: list[dict[str, Any]] = []

    def add(key: str, label: str, goal: str, measured: str, met: bool | None) -> None:
        rows.append({"key": key, "label": label, "goal": goal, "measured": measured, "met": met,
                     "floor": floors.get(key, "—")})  # fmt: skip

    floors = _floors(r)

    ratios = {n: r.floor_ratio("w1.chain", n, FLOWCRAFT) for n in (1_000, 10_000)}
    loop = {n: r.floor_ratio("w1.loop", n, FLOWCRAFT) for n in (1_000, 10_000)}
    per_node = r.best("w1.chain", 10_000, FLOWCRAFT)
    if ratios[10_000] is not None and per_node is not None:
        parts = [
            f"{ratios[10_000]:.1f}x ({per_node / 10_000 * 1e6:.2f} µs/node) at 10k",
            f"{_ratio(ratios[1_000], 1)} at 1k",
            f"loop {_ratio(loop[10_000], 1)} / {_ratio(loop[1_000], 1)}",
        ]
        values = [v for v in (*ratios.values(), *loop.values()) if v is not None]
        add("w1", "W1 per node, chain N=10k (and 1k, loop)", "≤ 5x plain await", "; ".join(parts),
            all(v <= 5 for v in values))  # fmt: skip
    else:
        add("w1", "W1 per node", "≤ 5x plain await", "not measured", None)

    base = r.best("w1.chain", 10_000, FLOWCRAFT)
    mw1, mw3 = r.best("w1.chain.mw1", 10_000, FLOWCRAFT), r.best("w1.chain.mw3", 10_000, FLOWCRAFT)
    if base is not None and mw1 is not None and mw3 is not None:
        one = (mw1 - base) / 10_000 * 1e6
        three = (mw3 - base) / 10_000 / 3 * 1e6
        add("w1.mw", "W1 per no-op middleware (N=10k)", "≤ +0.15 µs/node",
            f"+{one:.2f} µs/node with 1; +{three:.2f} µs/node each with 3", max(one, three) <= 0.15)  # fmt: skip
    else:
        add("w1.mw", "W1 per no-op middleware", "≤ +0.15 µs/node", "not measured", None)

    w2 = r.floor_ratio("w2.fanout", 10_000, FLOWCRAFT)
    w2_small = r.floor_ratio("w2.fanout", 100, FLOWCRAFT)
    w2_nogc = r.floor_ratio("w2.fanout.nogc", 10_000, FLOWCRAFT)
    block = r.floor_ratio("w2.block", 10_000, FLOWCRAFT)
    add("w2", "W2 fan-out + join, K=10k", "≤ 1.15x gather",
        f"{_ratio(w2)} (graph fan-in join; GC paused: {_ratio(w2_nogc)}); {_ratio(block)} (join after the block); "
        f"K=100: {_ratio(w2_small)}",
        None if w2 is None else w2 <= 1.15)  # fmt: skip

    batch = r.floor_ratio("w3.batch.noop", 10_000, FLOWCRAFT)
    batch_sleep = r.floor_ratio("w3.batch.sleep", 10_000, FLOWCRAFT)
    add("w3.batch", "W3 batch node, no-op, 10k items", "≤ 1.2x gather (3.11)",
        f"{_ratio(batch)} (sleep 1 ms: {_ratio(batch_sleep)})", None if batch is None else batch <= 1.2)  # fmt: skip
    sub = r.floor_ratio("w3.subflow.noop", 10_000, FLOWCRAFT)
    sub_sleep = r.floor_ratio("w3.subflow.sleep", 10_000, FLOWCRAFT)
    add("w3.subflow", "W3 per-item sub-flow, no-op, 10k items", "≤ 1.4x gather",
        f"{_ratio(sub)} (sleep 1 ms: {_ratio(sub_sleep)})", None if sub is None else sub <= 1.4)  # fmt: skip

    dag = r.best("w4.dag", 5_000, FLOWCRAFT)
    slot = r.slot("w4.dag", 5_000, FLOWCRAFT)
    if dag is not None:
        large = r.best("w4.dag", 10_000, FLOWCRAFT)
        growth = f"; t10k/t5k = {large / dag:.2f} (linear: 2)" if large else ""
        add("w4", "W4 build, layered DAG V=5k", "≤ 25 ms, t10k/t5k ≤ 2.2", f"{_fmt_time(dag)}{growth}",
            dag <= 0.025 and (large is None or large / dag <= 2.2))  # fmt: skip
    else:
        why = (slot or {}).get("na") or (slot or {}).get("error") or "not measured"
        add("w4", "W4 build, layered DAG V=5k", "≤ 25 ms, linear", f"not available: {why}", None)

    mem = r.best("w5.memory", 10_000, FLOWCRAFT)
    floor_mem = r.best("w5.memory", 10_000, "asyncio")
    if mem is not None:
        floor_text = f" (gather alone: {floor_mem / 10_000 / 1024:.2f} KB)" if floor_mem else ""
        add("w5", "W5 peak memory, K=10k", "≤ 2.3 KB/branch", f"{mem / 10_000 / 1024:.2f} KB/branch{floor_text}",
            mem / 10_000 / 1024 <= 2.3)  # fmt: skip
    else:
        add("w5", "W5 peak memory, K=10k", "≤ 2.3 KB/branch", "not measured", None)

    imp = r.best("startup.import", 1, FLOWCRAFT)
    add("import", "`import flowcraft` over `import asyncio`", "≤ +5 ms",
        "not measured" if imp is None else f"+{imp * 1e3:.1f} ms", None if imp is None else imp <= 0.005)  # fmt: skip
    return rows


def _floors(r: Results) -> dict[str, str]:
    """The hand-written floor of each target (``runtimes/handwritten.py``), as measured in this run."""
    hand = HANDWRITTEN

    def ratio(workload: str, size: int) -> str:
        return _ratio(r.floor_ratio(workload, size, hand))

    floors = {
        "w1": f"{ratio('w1.chain', 10_000)} (1k: {ratio('w1.chain', 1_000)})",
        "w2": f"{ratio('w2.fanout', 10_000)} (GC paused: {ratio('w2.fanout.nogc', 10_000)})",
        "w3.batch": ratio("w3.batch.noop", 10_000),
        "w3.subflow": ratio("w3.subflow.noop", 10_000),
    }
    plain5k, plain10k = r.best("w4.dag", 5_000, "asyncio"), r.best("w4.dag", 10_000, "asyncio")
    if plain5k is not None:
        growth = f"; t10k/t5k = {plain10k / plain5k:.2f}" if plain10k else ""
        floors["w4"] = f"plain dicts {_fmt_time(plain5k)}{growth}"
    mem = r.best("w5.memory", 10_000, hand)
    if mem is not None:
        floors["w5"] = f"{mem / 10_000 / 1024:.2f} KB/branch"
    pocketflow = r.best("startup.import", 1, "pocketflow")
    if pocketflow is not None:
        floors["import"] = f"PocketFlow +{pocketflow * 1e3:.1f} ms"
    return floors


def _runtime_order(r: Results) -> list[str]:
    return list(r.runtimes)


def render(doc: dict[str, Any]) -> str:
    """The whole markdown report."""
    r = Results(doc)
    meta = doc["meta"]
    machine = meta["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Flowcraft for Python side by side with plain asyncio (the floor), PocketFlow, LangGraph and "
        "Flowcraft TS 1.x. Reproduce with `bash scripts/bench` "
        "(7 minutes on this machine, most of it LangGraph; `--smoke` for a quick check). "
        "Generated by `benchmarks/flowbench/report.py`; the raw samples are in `benchmarks/results/latest.json`. "
        "The last sections come from `benchmarks/distributed_bench.py` (distributed throughput) and "
        "`benchmarks/durable_bench.py` (durable runs against one SQLite commit, LangGraph and DBOS).",
        "",
        f"- **Date**: {meta['date']} — {meta['mode']} run, commit `{meta.get('commit')}`, took {meta['duration_s']} s",
        f"- **Machine**: {machine['nproc']} CPUs, {machine['cpu']}, {machine['platform']} (shared with other work)",
        f"- **Versions**: Python {machine['python']}, node {machine.get('node') or '—'}; "
        + ", ".join(
            entry["version"]
            for name, entry in r.runtimes.items()
            if entry.get("version") and entry.get("floor") != name
        ),
        f"- **Method**: one worker process per runtime; {meta['rounds']} rounds, each running every case on every "
        f"runtime in turn (order rotating), up to {meta['reps_per_round']} runs per case per round, after a warm-up of "
        f"{meta.get('warmup_runs', 1)} runs when a case is first built (fewer when they take over 3 s); "
        f"a runtime slower than {meta['slow_cutoff_s']} s on a case is not re-run in later rounds. "
        + (
            "Cases are isolated alike for every runtime: a worker holds one built case at a time, "
            "dropping the one before and running `gc.collect()` (node: `gc()` when exposed) before it "
            f"builds the next; a case rebuilt in a later round is warmed with {meta['rewarm_runs']} runs. "
            if "rewarm_runs" in meta
            else "Built cases stay alive in their worker for the whole run. "
        )
        + f"Memory and start-up: a fresh process per sample ({meta['memory_rounds']} memory rounds). "
        "Ratios use the minimum.",
    ]
    for note in doc.get("notes", []):
        lines.append(f"- **Note**: {note}")
    lines += ["", "## Charts", ""]
    lines.append("Drawn from the results files by `benchmarks/charts.py` (minimum of all samples).")
    for name, alt in CHARTS:
        lines += ["", f"![{alt}](assets/benchmarks/{name})"]
    lines += [
        "",
        "## Targets",
        "",
        "Each goal is set just above a hand-written floor: the least an engine with "
        "Flowcraft's model must do, written by hand (`benchmarks/flowbench/runtimes/handwritten.py`; "
        "per node an args record, the phases, an abort check and a successor lookup; per branch a "
        "task, fail-fast and the join's count; per item the params merge and an outcome record), "
        "measured in this run beside plain asyncio. What changed in each round, and why, is in "
        "[Performance notes](performance-notes.md).",
        "",
        "| target | goal | hand-written floor | Flowcraft for Python | met |",
        "|---|---|---|---|---|",
    ]
    for row in evaluate_targets(doc):
        met = {True: "yes", False: "**no**", None: "n/a"}[row["met"]]
        lines.append(f"| {row['label']} | {row['goal']} | {row['floor']} | {row['measured']} | {met} |")

    lines += ["", "## All cases", ""]
    lines.append(
        "Each cell is a runtime's minimum ÷ its floor's minimum (plain asyncio for Python, plain JS "
        "for node): 1.00x is the floor, lower is better. The Flowcraft column also gives its "
        "minimum time (or memory). Every sample is in `benchmarks/results/latest.json`."
    )
    peers = [name for name, entry in r.runtimes.items() if entry.get("floor") != name]
    current_group = None
    for key, by_runtime in r.results.items():
        workload_id, size_text = key.rsplit("@", 1)
        size = int(size_text)
        workload = r.workloads[workload_id]
        if workload["group"] != current_group:
            current_group = workload["group"]
            lines += ["", f"### {current_group}", ""]
            lines.append("| case | " + " | ".join(r.runtimes[name]["label"] for name in peers) + " |")
            lines.append("|---|" + "---|" * len(peers))
        size_label = "" if workload["size_name"] == "-" else f", {workload['size_name']} = {size:,}"
        cells = []
        for name in peers:
            slot = by_runtime.get(name)
            if slot is None or not slot["samples"]:
                why = slot.get("na") or slot.get("error") if slot else None
                cells.append(f"n/a ({why})" if why else "—")
                continue
            cell = _ratio(r.floor_ratio(workload_id, size, name))
            if name == FLOWCRAFT:
                cell += f" ({_fmt(min(slot['samples']), workload['unit'])})"
            cells.append(cell)
        lines.append(f"| {workload['title']}{size_label} | " + " | ".join(cells) + " |")
    return "\n".join(lines).rstrip() + "\n"


EAGER_CASES = ("w3.batch.noop", "w3.batch.sleep", "w3.subflow.noop", "w3.subflow.sleep")


def render_eager(doc: dict[str, Any]) -> str:
    """The section of a W3 run on Python 3.12+, where batch items start eagerly."""
    r = Results(doc)
    machine = doc["meta"]["machine"]
    lines = [
        f"## W3 on Python {machine['python']}: eager task start",
        "",
        "From Python 3.12 a batch item starts running as soon as its task is created "
        "(`eager_start`), up to its first real wait. The same W3 cases as above, run by "
        f"`scripts/bench` on CPython {machine['python']} in the same way ({doc['meta']['rounds']} rounds, "
        "minimum), against `asyncio.gather` on that Python; peers are not installed there. "
        "Raw samples: `benchmarks/results/py312.json`.",
        "",
        "| case | goal | hand-written floor | Flowcraft for Python | met |",
        "|---|---|---|---|---|",
    ]
    for workload in EAGER_CASES:
        title = r.workloads[workload]["title"]
        ours = r.floor_ratio(workload, 10_000, FLOWCRAFT)
        goal, met = "—", ""
        if workload == "w3.batch.noop":
            goal = "≤ 1.0x gather"
            met = "n/a" if ours is None else ("yes" if ours <= 1.0 else "**no**")
        floor = _ratio(r.floor_ratio(workload, 10_000, HANDWRITTEN))
        lines.append(f"| {title}, items = 10,000 | {goal} | {floor} | {_ratio(ours)} | {met} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m flowbench.report [--eager] RESULTS.json [OUT.md]``."""
    args = sys.argv[1:] if argv is None else argv
    eager = "--eager" in args
    args = [arg for arg in args if arg != "--eager"]
    if not args:
        sys.stderr.write("usage: python -m flowbench.report [--eager] RESULTS.json [OUT.md]\n")
        return 2
    doc = json.loads(Path(args[0]).read_text())
    text = render_eager(doc) if eager else render(doc)
    if len(args) > 1:
        Path(args[1]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
