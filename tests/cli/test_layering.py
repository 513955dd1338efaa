"""Import layering of the command line (checked statically with scripts/import_graph.py).

`flowcraft.distributed` is a library layer: it must never import `flowcraft.cli`, not even
inside a function. The CLI's own modules form no cycle, counting function-local imports
too (those hide a cycle rather than remove it), and each function-local import in the CLI
says why on its line or the line above (`# local import: <reason>`).
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from types import ModuleType

from .helpers import ROOT, flowcraft

SRC = ROOT / "src"


def _import_graph() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _all_imports(package: str) -> dict[str, set[str]]:
    """module → the flowcraft modules it imports anywhere (module level or in a function)."""
    graph_tool = _import_graph()
    files = sorted((SRC / "flowcraft").rglob("*.py"))
    modules = {graph_tool.module_name(f) for f in files}
    out: dict[str, set[str]] = {}
    for path in files:
        name = graph_tool.module_name(path)
        if name != package and not name.startswith(package + "."):
            continue
        top, local = graph_tool.scan(ast.parse(path.read_text()))
        targets: set[str] = set()
        for node in [*top, *local]:
            targets.update(graph_tool.resolve(name, graph_tool.is_package(path), node, modules))
        out[name] = targets
    return out


def test_distributed_never_imports_the_cli():
    offending = {
        module: sorted(t for t in targets if t == "flowcraft.cli" or t.startswith("flowcraft.cli."))
        for module, targets in _all_imports("flowcraft.distributed").items()
    }
    assert not {m: t for m, t in offending.items() if t}, "flowcraft.distributed must not import flowcraft.cli"


def test_cli_modules_form_no_cycle_even_through_local_imports():
    graph = {
        module: {t for t in targets if t.startswith("flowcraft.cli.") and t != module}
        for module, targets in _all_imports("flowcraft.cli").items()
    }
    cycles = _import_graph().strongly_connected(graph)
    assert cycles == [], f"import cycles in flowcraft.cli: {cycles}"


def test_cli_local_imports_are_explained_and_cli_has_no_cycle():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import_graph.py")], capture_output=True, text=True, check=False
    )
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("import cycle")], result.stdout
    assert not [line for line in lines if line.startswith("src/flowcraft/cli/")], result.stdout


def test_the_worker_runs_from_the_cli_package_only():
    assert not (SRC / "flowcraft" / "distributed" / "worker_cli.py").exists()
    worker_source = (SRC / "flowcraft" / "distributed" / "worker.py").read_text()
    assert "def main(" not in worker_source and "__main__" not in worker_source
    result = flowcraft("worker", "--help")
    assert result.returncode == 0, result.stderr
    assert "--registry" in result.stdout


def test_no_caller_runs_the_old_worker_module():
    old = 'flowcraft.distributed.worker"'
    for path in [
        ROOT / "tests" / "distributed" / "conftest.py",
        ROOT / "tests" / "distributed" / "test_runs.py",
        ROOT / "examples" / "distributed" / "run.py",
        ROOT / "benchmarks" / "distributed_bench.py",
    ]:
        assert old not in path.read_text(), (
            f"{path.relative_to(ROOT)} still runs python -m flowcraft.distributed.worker"
        )
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "examples").rglob("*.md"))]:
        assert "-m flowcraft.distributed.worker" not in path.read_text(), f"{path.relative_to(ROOT)} documents it"
