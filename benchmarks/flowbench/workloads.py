"""The workload registry: what is measured, at which sizes, and against which floor.

A workload is identified by a dotted id (``w1.chain``). Each runtime adapter implements
the ids it supports (see :mod:`flowbench.runtimes`); a runtime that does not implement
one shows up as "n/a" in the report, with the adapter's stated reason.

Adding a workload (for instance the distributed throughput benchmarks):

1. ``register(Workload("d1.throughput", group="D1", ...))`` here (or in a new module
   imported by :func:`all_workloads`);
2. implement it in each runtime adapter with ``@IMPLS.timed("d1.throughput")`` (a
   factory ``size -> async callable`` run in the long-lived worker) or, for
   measurements that need their own process, with ``kind="fresh"`` and a handler in
   :mod:`flowbench.worker`;
3. optionally add a :class:`Target` so the report checks it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

__all__ = [
    "TARGETS",
    "WORKLOADS",
    "Target",
    "Workload",
    "all_workloads",
    "dag_description",
    "chain_description",
    "register",
]


@dataclasses.dataclass(frozen=True)
class Workload:
    """One measured scenario.

    Attributes:
        id: dotted id, also the key runtimes implement.
        group: the issue's workload group (``W1`` … ``W5``, ``start-up``).
        title: one line for the report.
        sizes: sizes of the full run.
        smoke_sizes: tiny sizes for ``--smoke``.
        size_name: what the size counts (``N``, ``K``, ``items``, ``V``).
        kind: ``timed`` — run repeatedly in the runtime's long-lived worker;
            ``fresh`` — each sample in a new process (memory, start-up).
        floor: id of the workload whose floor-runtime result is this one's baseline
            (defaults to ``id``).
        unit: how the report shows a sample: ``s`` (seconds) or ``bytes``.
        per: when set, the report also shows the cost per ``size`` unit (``node``…).
    """

    id: str
    group: str
    title: str
    sizes: tuple[int, ...]
    smoke_sizes: tuple[int, ...]
    size_name: str
    kind: str = "timed"
    floor: str | None = None
    unit: str = "s"
    per: str | None = None

    @property
    def floor_id(self) -> str:
        """The workload whose floor result this one is compared with."""
        return self.floor or self.id


@dataclasses.dataclass(frozen=True)
class Target:
    """A target of the issue, checked by the report against the measured numbers."""

    key: str
    label: str
    goal: str
    best_peer: str


WORKLOADS: dict[str, Workload] = {}


def register(workload: Workload) -> Workload:
    """Add ``workload`` to the registry (ids are unique)."""
    if workload.id in WORKLOADS:
        raise ValueError(f"workload {workload.id!r} is registered twice")
    WORKLOADS[workload.id] = workload
    return workload


def all_workloads() -> list[Workload]:
    """Every registered workload, in registration order."""
    return list(WORKLOADS.values())


# ---- W1: per-node overhead -----------------------------------------------------------------
register(Workload("w1.chain", "W1", "linear chain of distinct no-op nodes", (1_000, 10_000), (50,), "N", per="node"))
register(Workload("w1.loop", "W1", "one no-op node looping on itself N times", (1_000, 10_000), (50,), "N", per="node"))
register(
    Workload(
        "w1.chain.mw1", "W1", "chain of no-op nodes, 1 no-op middleware", (1_000, 10_000), (50,), "N",
        floor="w1.chain", per="node",
    )
)  # fmt: skip
register(
    Workload(
        "w1.chain.mw3", "W1", "chain of no-op nodes, 3 no-op middleware", (1_000, 10_000), (50,), "N",
        floor="w1.chain", per="node",
    )
)  # fmt: skip

# ---- W2: fan-out / fan-in -----------------------------------------------------------------
register(
    Workload(
        "w2.fanout", "W2", "fan-out to K branches sleeping 10 ms, then a join", (100, 10_000), (10,), "K",
        per="branch",
    )
)  # fmt: skip
register(
    Workload(
        "w2.fanout.nogc", "W2", "same, garbage collector paused during the run (floor: gather, paused too)",
        (10_000,), (10,), "K", per="branch",
    )
)  # fmt: skip
register(
    Workload(
        "w2.block", "W2", "same, join as the parallel block's successor (not a graph fan-in)", (100, 10_000), (10,),
        "K", floor="w2.fanout", per="branch",
    )
)  # fmt: skip

# ---- W3: parallel batch --------------------------------------------------------------------
register(Workload("w3.batch.noop", "W3", "parallel batch node, no-op items", (10_000,), (20,), "items", per="item"))
register(
    Workload("w3.batch.sleep", "W3", "parallel batch node, items sleep 1 ms", (10_000,), (20,), "items", per="item")
)
register(
    Workload(
        "w3.subflow.noop", "W3", "per-item sub-flow, no-op items", (10_000,), (20,), "items",
        floor="w3.batch.noop", per="item",
    )
)  # fmt: skip
register(
    Workload(
        "w3.subflow.sleep", "W3", "per-item sub-flow, items sleep 1 ms", (10_000,), (20,), "items",
        floor="w3.batch.sleep", per="item",
    )
)  # fmt: skip

# ---- W4: building from a declarative description -------------------------------------------
register(Workload("w4.chain", "W4", "build from a description: chain", (1_000, 5_000, 10_000), (100,), "V", per="node"))
register(
    Workload(
        "w4.dag", "W4", "build from a description: layered DAG, width 50", (1_000, 5_000, 10_000), (100,), "V",
        per="node",
    )
)  # fmt: skip

# ---- W5: memory ---------------------------------------------------------------------------
register(
    Workload(
        "w5.memory", "W5", "peak memory of W2 (fan-out + join) in a fresh process", (10_000,), (50,), "K",
        kind="fresh", unit="bytes", per="branch",
    )
)  # fmt: skip

# ---- start-up -----------------------------------------------------------------------------
register(Workload("startup.import", "start-up", "import time over `import asyncio`", (1,), (1,), "-", kind="fresh"))
register(Workload("startup.hello", "start-up", "hello-world process, wall time", (1,), (1,), "-", kind="fresh"))


TARGETS: tuple[Target, ...] = (
    # issue 18 (second round): each sits just above a hand-written floor (benchmarks/floors.py)
    Target("w1", "W1 per node at N=10k (chain)", "≤ 5x plain await (floor 4.3x)", "PocketFlow 20x"),
    Target("w1.mw", "W1 per no-op middleware", "≤ +0.15 µs/node", "—"),
    Target("w2", "W2 K=10k", "≤ 1.15x gather (floor 1.06x)", "PocketFlow 2.0x; LangGraph 52x"),
    Target("w3.batch", "W3 batch node, no-op", "≤ 1.2x gather on 3.11 (floor 1.17x)", "PocketFlow 1.5x"),
    Target("w3.subflow", "W3 per-item sub-flow", "≤ 1.4x gather (floor 1.30x)", "PocketFlow 1.7x"),
    Target("w4", "W4 DAG V=5k", "≤ 25 ms, t10k/t5k ≤ 2.2", "LangGraph 316 ms; Flowcraft TS 972 ms"),
    Target("w5", "W5 K=10k", "≤ 2.3 KB/branch (floor 2.2 KB)", "PocketFlow +3.1 KB/branch"),
    Target("import", "import over `import asyncio`", "≤ +5 ms", "PocketFlow +1 ms"),
)


# ---- declarative descriptions shared by the W4 implementations -----------------------------
DAG_WIDTH = 50


def chain_description(size: int) -> dict[str, list[dict[str, str]]]:
    """``{"nodes", "edges"}`` of a chain of ``size`` no-op nodes (Flowcraft's JSON shape)."""
    nodes = [{"id": f"n{i}", "type": "noop"} for i in range(size)]
    edges = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(size - 1)]
    return {"nodes": nodes, "edges": edges}


def dag_description(size: int, width: int = DAG_WIDTH) -> dict[str, list[dict[str, str]]]:
    """A layered DAG of ``size`` nodes, ``width`` per layer.

    Node ``j`` of layer ``l`` leads to nodes ``j`` and ``j + 1 (mod width)`` of layer
    ``l + 1``: every node past the first layer is a fan-in of two, and every node before
    the last a fan-out of two. The first layer holds the (several) start nodes.
    """
    nodes = [{"id": f"n{i}", "type": "noop"} for i in range(size)]
    edges: list[dict[str, str]] = []
    for i in range(size):
        layer, j = divmod(i, width)
        base = (layer + 1) * width
        for k in _distinct((j, (j + 1) % width)):
            target = base + k
            if target < size:
                edges.append({"source": f"n{i}", "target": f"n{target}"})
    return {"nodes": nodes, "edges": edges}


def _distinct(values: Iterable[int]) -> list[int]:
    seen: list[int] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen
