"""Charts for docs/benchmarks.md, drawn from benchmarks/results/*.json with matplotlib.

``python benchmarks/charts.py`` (matplotlib is in the ``bench`` extra:
``pip install -e '.[bench]'``) writes SVGs to ``docs/assets/benchmarks/``:

- ``per-node.svg``: W1, cost per node of a chain of no-op nodes, every runtime;
- ``fan-out.svg``: W2, fan-out to K sleeping branches and a join, as a multiple of
  ``asyncio.gather`` (or of plain JS for Flowcraft TS);
- ``batch.svg``: W3, parallel batches of 10,000 items, as a multiple of the floor;
- ``distributed.svg``: node jobs per second through Redis + BullMQ against raw BullMQ,
  by number of workers (from ``distributed.json``);
- ``durable.svg``: cost of one durable step against one SQLite commit, LangGraph's SQLite
  checkpointer and DBOS, and the time to the first recovered node after a ``kill -9``
  (from ``durable.json``, written by ``benchmarks/durable_bench.py``).

The SVGs are committed; rerun this after ``bash scripts/bench``. The output is
deterministic (no dates, fixed ids), so an unchanged result gives an unchanged file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "docs" / "assets" / "benchmarks"
FLOWCRAFT = "flowcraft"
COLORS = {
    "flowcraft": "#3f51b5",
    "asyncio": "#9e9e9e",
    "js": "#bdbdbd",
    "pocketflow": "#ff9800",
    "langgraph": "#009688",
    "flowcraft-ts": "#9c27b0",
    "raw": "#9e9e9e",
    "sqlite": "#9e9e9e",
    "dbos": "#795548",
}

plt.rcParams.update(
    {
        "svg.hashsalt": "flowcraft-benchmarks",  # stable ids in the SVG
        "svg.fonttype": "none",  # text stays text: small files, the page's font
        "font.family": "sans-serif",
        "font.size": 10,
        "figure.facecolor": "white",  # readable in the light and the dark theme
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


def best(doc: dict[str, Any], case: str, runtime: str) -> float | None:
    slot = doc["results"].get(case, {}).get(runtime)
    return min(slot["samples"]) if slot and slot.get("samples") else None


def floor_ratio(doc: dict[str, Any], workload: str, size: int, runtime: str) -> float | None:
    value = best(doc, f"{workload}@{size}", runtime)
    floor_name = doc["runtimes"][runtime].get("floor", "asyncio")
    floor = best(doc, f"{doc['workloads'][workload]['floor_id']}@{size}", floor_name)
    return None if value is None or not floor else value / floor


def label(doc: dict[str, Any], runtime: str) -> str:
    return str(doc["runtimes"][runtime]["label"])


def save(fig: Any, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    fig.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return path


def grouped_bars(ax: Any, groups: list[str], series: list[tuple[str, str, list[float | None]]], *, fmt: str) -> None:
    """Horizontal bars: one group of bars per entry of ``groups``, one bar per series."""
    height = 0.8 / len(series)
    for index, (name, color, values) in enumerate(series):
        for group, value in enumerate(values):
            if value is None:
                continue
            y = group + (index - (len(series) - 1) / 2) * height
            ax.barh(y, value, height=height * 0.9, color=color, label=name if group == 0 else None)
            ax.text(value, y, " " + fmt.format(value), va="center", fontsize=8)
    ax.set_yticks(range(len(groups)), groups)
    ax.invert_yaxis()
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def per_node(doc: dict[str, Any]) -> Path:
    sizes = doc["workloads"]["w1.chain"]["sizes"]
    runtimes = [r for r in doc["runtimes"] if any(best(doc, f"w1.chain@{n}", r) for n in sizes)]
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(runtimes) * len(sizes) / 1.5 + 1.2))
    series = [
        (f"N = {n:,}", "#3f51b5" if i == 0 else "#9fa8da", [_per_node(doc, r, n) for r in runtimes])
        for i, n in enumerate(sizes)
    ]
    grouped_bars(ax, [label(doc, r) for r in runtimes], series, fmt="{:.2f} µs")
    ax.set_xscale("log")
    ax.set_xlabel("µs per node (minimum of all samples; log scale, lower is better)")
    ax.set_title("W1 — a chain of N no-op nodes: cost per node", loc="left", fontsize=11)
    return save(fig, "per-node.svg")


def _per_node(doc: dict[str, Any], runtime: str, size: int) -> float | None:
    value = best(doc, f"w1.chain@{size}", runtime)
    return None if value is None else value / size * 1e6


def versus_floor(doc: dict[str, Any], workloads: list[tuple[str, str]], name: str, title: str) -> Path:
    cases = [(w, n, text) for w, text in workloads for n in doc["workloads"][w]["sizes"]]
    peers = [r for r in doc["runtimes"] if doc["runtimes"][r].get("floor") != r]
    peers = [r for r in peers if any(floor_ratio(doc, w, n, r) for w, n, _ in cases)]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(cases) * len(peers) / 2 + 1.4))
    series = [
        (label(doc, r), COLORS.get(r, "#607d8b"), [floor_ratio(doc, w, n, r) for w, n, _ in cases]) for r in peers
    ]
    grouped_bars(
        ax, [f"{text}\n{doc['workloads'][w]['size_name']} = {n:,}" for w, n, text in cases], series, fmt="{:.2f}x"
    )
    ax.axvline(1.0, color="#616161", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_xlabel("x the floor (plain asyncio.gather / plain JS; 1 = the floor; log scale, lower is better)")
    ax.set_title(title, loc="left", fontsize=11)
    return save(fig, name)


def distributed(doc: dict[str, Any]) -> Path:
    rows = doc["fanout"]
    fig, ax = plt.subplots(figsize=(7.5, 2.6))
    series = [
        ("raw BullMQ (trivial jobs)", COLORS["raw"], [row["raw"]["jobs_per_s"] for row in rows]),
        ("Flowcraft node jobs (fan-out)", COLORS[FLOWCRAFT], [row["jobs_per_s"] for row in rows]),
    ]
    grouped_bars(
        ax, [f"{row['workers']} worker{'s' if row['workers'] > 1 else ''}" for row in rows], series, fmt="{:.0f}/s"
    )
    ax.set_xlabel("jobs per second through Redis + BullMQ (higher is better)")
    width = doc["meta"]["width"]
    ax.set_title(f"Distributed — a fan-out of {width:,} node jobs against raw BullMQ", loc="left", fontsize=11)
    return save(fig, "distributed.svg")


def durable(doc: dict[str, Any]) -> Path:
    """Median cost of one step (or one SQLite commit) per case, and recovery latency (``durable.json``)."""
    cases = [(case, entry) for case, entry in doc["cases"].items() if entry.get("median_s")]
    recovery = [(name, entry["median_s"]) for name, entry in doc["recovery"].items() if entry.get("median_s")]
    fig, (steps, recover) = plt.subplots(
        2, 1, figsize=(8.5, 0.42 * (len(cases) + len(recovery)) + 2.4),
        gridspec_kw={"height_ratios": [max(len(cases), 1), max(len(recovery), 1) + 0.6]},
    )  # fmt: skip
    for index, (case, entry) in enumerate(cases):
        value = entry["median_s"] * 1e6
        steps.barh(index, value, height=0.7, color=COLORS.get(case.split(".")[0], "#607d8b"))
        steps.text(value, index, f" {value:,.1f} µs", va="center", fontsize=8)
    names = {"sqlite": "SQLite commit", "flowcraft": "Flowcraft", "langgraph": "LangGraph", "dbos": "DBOS"}
    labels = [f"{names.get(case.split('.')[0], case)}, {entry.get('short', entry['label'])}" for case, entry in cases]
    steps.set_yticks(range(len(cases)), labels, fontsize=8)
    steps.invert_yaxis()
    steps.set_xscale("log")
    steps.set_xlabel("µs per step, or per commit for SQLite (median; log scale, lower is better)")
    n = doc["meta"]["n"]
    steps.set_title(f"Durable runs — a chain of {n} steps: cost per step, one run", loc="left", fontsize=11)
    for index, (name, value) in enumerate(recovery):
        recover.barh(index, value * 1e3, height=0.6, color=COLORS.get(name, "#607d8b"))
        recover.text(value * 1e3, index, f" {value * 1e3:,.0f} ms", va="center", fontsize=8)
    recover.set_yticks(range(len(recovery)), [{"flowcraft": "Flowcraft", "dbos": "DBOS"}.get(name, name)
                                              for name, _ in recovery], fontsize=8)  # fmt: skip
    recover.invert_yaxis()
    recover.set_xscale("log")
    recover.set_xlabel("ms from entering the executor to the first recovered node after kill -9 (median; log scale)")
    recover.set_title("Recovery after kill -9", loc="left", fontsize=11)
    fig.tight_layout()
    return save(fig, "durable.svg")


def main() -> int:
    latest = json.loads((RESULTS / "latest.json").read_text())
    written = [
        per_node(latest),
        versus_floor(
            latest,
            [("w2.fanout", "graph fan-out + join"), ("w2.block", "parallel block, join after")],
            "fan-out.svg",
            "W2 — fan-out to K branches sleeping 10 ms, against asyncio.gather",
        ),
        versus_floor(
            latest,
            [("w3.batch.noop", "batch, no-op items"), ("w3.batch.sleep", "batch, items sleep 1 ms")],
            "batch.svg",
            "W3 — a parallel batch of 10,000 items, against asyncio.gather",
        ),
    ]
    if (RESULTS / "distributed.json").is_file():
        written.append(distributed(json.loads((RESULTS / "distributed.json").read_text())))
    if (RESULTS / "durable.json").is_file():
        written.append(durable(json.loads((RESULTS / "durable.json").read_text())))
    for path in written:
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
