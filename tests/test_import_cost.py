"""``import flowcraft`` stays cheap: it loads none of ``logging``, ``json``, ``uuid``,
``inspect``, the optional extras or flowcraft's own on-demand modules beyond what
``import asyncio`` already loads (measured in a fresh interpreter; see the import-time
row of docs/benchmarks.md). No timing here: the modules loaded are the contract.

``asyncio`` itself loads ``logging`` and ``inspect`` (CPython 3.11-3.13: ``asyncio.log``,
``asyncio.coroutines``), so those two cost ``import flowcraft`` nothing and the check
can only catch them on a Python whose asyncio stops loading them; ``json``, ``uuid``, the
extras and the on-demand modules are caught on every version."""

from __future__ import annotations

import json
import subprocess
import sys

# Stdlib modules that cost start-up time, and every optional extra (pyproject.toml).
HEAVY = ("logging", "json", "uuid", "inspect", "sqlite3", "random", "datetime", "re", "tempfile")
EXTRAS = ("redis", "bullmq", "opentelemetry", "mkdocs", "matplotlib")
# flowcraft modules that load on first use (flowcraft.__getattr__ or a local import).
ON_DEMAND = (
    "flowcraft.budget",
    "flowcraft.clock",
    "flowcraft.events",
    "flowcraft.retry",
    "flowcraft.waits",
    "flowcraft.graph",
    "flowcraft.engine",
    "flowcraft.durable",
    "flowcraft.distributed",
    "flowcraft.cli",
    "flowcraft.topology",
    "flowcraft.functional",
    "flowcraft.executors.dry_run",
    "flowcraft.executors.joins",
)

PROBE = """
import json, sys
import asyncio
before = set(sys.modules)
import flowcraft
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def _loaded_by_import() -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60)
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_import_flowcraft_loads_nothing_heavy_beyond_asyncio() -> None:
    loaded = _loaded_by_import()
    assert "flowcraft.node" in loaded  # the probe measured the import
    unwanted = [
        name
        for name in loaded
        if name.split(".")[0] in HEAVY + EXTRAS or any(name == m or name.startswith(m + ".") for m in ON_DEMAND)
    ]
    assert unwanted == [], f"`import flowcraft` loads {unwanted}: import them on first use instead"


def test_the_lazy_names_still_resolve() -> None:
    import flowcraft

    assert flowcraft.Budget.__module__ == "flowcraft.budget"
    assert flowcraft.RetryPolicy.__module__ == "flowcraft.retry"
    assert flowcraft.WaitNode.__module__ == "flowcraft.waits"
    assert flowcraft.RunStarted.__module__ == "flowcraft.events"
