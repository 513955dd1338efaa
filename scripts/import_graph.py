"""Check the layering of ``src/flowcraft``: no import cycle, few function-local imports.

Reads every module with :mod:`ast` (nothing is imported). An edge ``a -> b`` is an
import of ``b`` that runs when ``a`` is imported: module-level imports, outside ``if
TYPE_CHECKING:`` blocks. Importing ``pkg.sub`` also runs ``pkg/__init__.py``, so the
parent subpackage counts as imported too, unless the importing module is inside it (it
is then being imported already; nor does the top-level ``flowcraft`` package count).

Imports of flowcraft modules inside functions hide a cycle rather than remove it, so
each one must say why on its own line or the line above (``# local import: <reason>``);
the check lists them all.

Usage: ``python scripts/import_graph.py [--graph]`` — exit 1 on a cycle or an
unexplained local import; ``--graph`` prints every module's imports.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "flowcraft"
MARKER = "# local import:"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def resolve(current: str, package: bool, node: ast.ImportFrom | ast.Import, modules: set[str]) -> Iterator[str]:
    """The flowcraft modules an import statement loads."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == PACKAGE:
                yield alias.name
        return
    if node.level:
        base = current.split(".") if package else current.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    if target.split(".")[0] != PACKAGE:
        return
    yield target
    for alias in node.names:
        candidate = f"{target}.{alias.name}"
        if candidate in modules:
            yield candidate


def with_parents(name: str, modules: set[str]) -> Iterator[str]:
    parts = name.split(".")
    for i in range(2, len(parts) + 1):
        prefix = ".".join(parts[:i])
        if prefix in modules:
            yield prefix


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def scan(tree: ast.Module) -> tuple[list[ast.Import | ast.ImportFrom], list[ast.Import | ast.ImportFrom]]:
    """(module-level runtime imports, imports inside functions)."""
    top: list[ast.Import | ast.ImportFrom] = []
    local: list[ast.Import | ast.ImportFrom] = []

    def visit(nodes: list[ast.stmt], in_function: bool) -> None:
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                (local if in_function else top).append(node)
            elif isinstance(node, ast.If) and _type_checking(node.test):
                visit(node.orelse, in_function)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(node.body, True)
            elif isinstance(node, ast.ClassDef):
                visit(node.body, in_function)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        visit([c for c in children if isinstance(c, ast.stmt)], in_function)
                for handler in getattr(node, "handlers", []) or []:
                    visit(handler.body, in_function)

    visit(tree.body, False)
    return top, local


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): components with a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph.get(node, ()):
                        found.append(sorted(component))
    return found


def main(argv: list[str]) -> int:
    files = sorted((ROOT / PACKAGE).rglob("*.py"))
    modules = {module_name(f) for f in files}
    graph: dict[str, set[str]] = {}
    unexplained: list[str] = []
    explained: list[str] = []
    for path in files:
        name = module_name(path)
        source = path.read_text()
        lines = source.splitlines()
        top, local = scan(ast.parse(source))
        edges: set[str] = set()
        for node in top:
            for target in resolve(name, is_package(path), node, modules):
                edges.update(t for t in with_parents(target, modules) if t != name and not name.startswith(t + "."))
        graph[name] = edges
        for node in local:
            if not list(resolve(name, is_package(path), node, modules)):
                continue
            where = f"{path.relative_to(ROOT.parent)}:{node.lineno}"
            around = lines[node.lineno - 1] + (lines[node.lineno - 2] if node.lineno > 1 else "")
            (explained if MARKER in around else unexplained).append(where)
    if "--graph" in argv:
        for name in sorted(graph):
            print(f"{name} -> {', '.join(sorted(graph[name])) or '-'}")
    cycles = strongly_connected(graph)
    for cycle in cycles:
        print("import cycle: " + " <-> ".join(cycle))
    for where in unexplained:
        print(f"{where}: function-local import of a flowcraft module without '{MARKER} <reason>'")
    print(f"imports: {len(graph)} modules, {len(cycles)} cycles, {len(explained)} explained local imports")
    return 1 if cycles or unexplained else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
