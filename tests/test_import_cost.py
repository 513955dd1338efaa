"""``import flowcraft`` stays cheap: it loads none of ``logging``, ``json``, ``uuid``,
``inspect``, ``dataclasses``, the optional extras or flowcraft's own on-demand modules beyond what
``import asyncio`` already loads (measured in a fresh interpreter; see the import-time
row of docs/benchmarks.md). No timing here: the modules loaded are the contract.

``asyncio`` itself loads ``logging`` and ``inspect`` (CPython 3.11-3.13: ``asyncio.log``,
``asyncio.coroutines``), so the probe cannot see flowcraft load those two; a second check
reads the source of every flowcraft module ``import flowcraft`` loads and fails on a
module-level import of any of them (imports inside functions and under
``TYPE_CHECKING`` run on first use or never). One exception: ``inspect`` is how Python
tells a coroutine function and an awaitable apart (``iscoroutinefunction``,
``isawaitable``), which the node classes need when they are defined and every run needs;
asyncio cannot work without loading it, and ``asyncio.iscoroutinefunction``, the only
other spelling, is deprecated from Python 3.14."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

# Stdlib modules that cost start-up time, and every optional extra (pyproject.toml).
HEAVY = (
    "logging",
    "json",
    "uuid",
    "inspect",
    "sqlite3",
    "random",
    "datetime",
    "re",
    "tempfile",
    "decimal",
    "dataclasses",  # with `copy`: ~1 ms, for NodeArgs, RunOptions and WalkScope alone
    "copy",
)
# Loaded by asyncio itself on every supported Python and needed at class definition (above).
NEEDED_BY_ASYNCIO = ("inspect",)
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
    "flowcraft.merge",
    "flowcraft.patterns",
    "flowcraft.awaitables",
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


def _without_coverage() -> dict[str, str]:
    """The environment without pytest-cov's subprocess hook (its variables): coverage
    itself imports modules (``dataclasses``) that ``import flowcraft`` must not."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE_", "COVERAGE_"))}


def _loaded_by_import() -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60, env=_without_coverage()
    )
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


def _eager_imports(tree: ast.Module) -> list[str]:
    """Top-level module names a module imports when it is loaded (module and class
    bodies, including ``if``/``try`` blocks, but not ``if TYPE_CHECKING:``)."""
    found: list[str] = []

    def visit(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Import):
                found.extend(alias.name.split(".")[0] for alias in stmt.names)
            elif isinstance(stmt, ast.ImportFrom) and stmt.level == 0 and stmt.module:
                found.append(stmt.module.split(".")[0])
            elif isinstance(stmt, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(stmt.test):
                    visit(stmt.body)
                visit(stmt.orelse)
            elif isinstance(stmt, ast.Try):
                visit(stmt.body)
                for handler in stmt.handlers:
                    visit(handler.body)
                visit(stmt.orelse)
                visit(stmt.finalbody)
            elif isinstance(stmt, ast.ClassDef | ast.With):
                visit(stmt.body)

    visit(tree.body)
    return found


def test_no_module_import_flowcraft_loads_imports_a_heavy_module_at_load_time() -> None:
    import flowcraft

    package = Path(flowcraft.__file__).parent
    loaded = [name for name in _loaded_by_import() if name == "flowcraft" or name.startswith("flowcraft.")]
    offenders: dict[str, list[str]] = {}
    for name in loaded:
        parts = name.split(".")[1:]
        path = package.joinpath(*parts)
        source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        imported = _eager_imports(ast.parse(source.read_text()))
        heavy = [module for module in imported if module in HEAVY + EXTRAS and module not in NEEDED_BY_ASYNCIO]
        if heavy:
            offenders[name] = heavy
    assert len(loaded) > 5  # the probe saw the package's modules
    assert offenders == {}, f"imported at load time by `import flowcraft`: {offenders}; import them on first use"


def test_the_eager_import_reader_sees_what_runs_at_load_time() -> None:
    source = """
import logging
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    import inspect
try:
    import json
except ImportError:
    import uuid
class A:
    import re
def f():
    import sqlite3
"""
    assert _eager_imports(ast.parse(source)) == ["logging", "typing", "json", "uuid", "re"]


def test_the_lazy_names_still_resolve() -> None:
    import flowcraft

    assert flowcraft.Budget.__module__ == "flowcraft.budget"
    assert flowcraft.RetryPolicy.__module__ == "flowcraft.retry"
    assert flowcraft.WaitNode.__module__ == "flowcraft.waits"
    assert flowcraft.RunStarted.__module__ == "flowcraft.events"
    assert flowcraft.ParallelFlow.__module__ == "flowcraft.patterns"
    assert flowcraft.BatchFlow.__module__ == "flowcraft.patterns"
    # Submodules `import flowcraft` used to load stay attributes of the package.
    probe = "import flowcraft; assert flowcraft.merge.append.name == 'append'; assert flowcraft.patterns.BatchFlow"
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)


RECORDS_PROBE = """
import asyncio, sys
import flowcraft
assert "dataclasses" not in sys.modules
import dataclasses, inspect
from flowcraft import NodeArgs, RunOptions, TypedContext, WalkScope
ctx = TypedContext()
records = [
    NodeArgs(ctx, {"a": 1}, None, None, name="n"),
    RunOptions(params={"a": 1}),
    WalkScope(ctx, {}, None, None, None, chain=len),
]
for record in records:
    cls = type(record)
    assert dataclasses.is_dataclass(record) and dataclasses.is_dataclass(cls)
    fields = dataclasses.fields(cls)
    assert fields == dataclasses.fields(record)
    parameters = list(inspect.signature(cls).parameters.values())
    assert [f.name for f in fields] == [p.name for p in parameters]
    for f, p in zip(fields, parameters):
        assert (f.default is dataclasses.MISSING) == (p.default is inspect.Parameter.empty)
        assert f.default is dataclasses.MISSING or f.default == p.default
    copy = dataclasses.replace(record)
    assert copy == record and copy is not record
changed = dataclasses.replace(records[0], params={"b": 2})
assert changed.params == {"b": 2} and changed.name == "n" and changed.ctx is ctx
assert records[0].replace(name="m") == dataclasses.replace(records[0], name="m")
assert dataclasses.replace(records[2], job="j").chain is len
try:
    dataclasses.replace(records[1], nope=1)
except TypeError:
    pass
else:
    raise AssertionError("an unknown field was accepted")
print("ok")
"""


def test_the_core_records_are_dataclasses_to_the_dataclasses_module() -> None:
    """NodeArgs, RunOptions and WalkScope are plain slotted classes (so ``import flowcraft``
    need not import ``dataclasses``), yet `dataclasses.fields`, `replace` and
    `is_dataclass` treat them as the dataclasses they were, defaults included."""
    done = subprocess.run(
        [sys.executable, "-c", RECORDS_PROBE],
        capture_output=True, text=True, check=False, timeout=60, env=_without_coverage(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
