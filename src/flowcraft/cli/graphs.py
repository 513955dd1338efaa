"""``flowcraft validate`` and ``flowcraft viz``: check and draw graph files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import GraphError
from ..graph import (
    GraphAnalysis,
    GraphBuilder,
    GraphIssue,
    Witness,
    WorkflowBlueprint,
    WorkflowGraph,
    analyze_graph,
    check_concurrency,
    check_default_action_strings,
    check_for_cycles,
    create_node_rule,
    generate_mermaid,
    validate_graph,
)
from ..graph.internal_nodes import CONDITIONAL_JOIN_TYPE
from ..node import AbstractNode
from .errors import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from .loading import BuilderOptions, DirectoryResolver, load_builder, read_json_file

__all__ = ["collect_issues", "render_dot", "validate_command", "viz_command"]

CONDITIONAL_JOIN_SUFFIX = "__conditional_join"


class _Unbuilt(AbstractNode):
    """Stands in for node classes when a graph is compiled only to be drawn or checked."""


def _permissive_builder(graph: WorkflowGraph, options: BuilderOptions, graph_dir: Path) -> GraphBuilder:
    """A builder for drawing and checking a graph without its registry.

    ``build_blueprint()`` never constructs nodes, so every type maps to a placeholder.
    Unless ``--sub-workflow-type`` says otherwise, nodes whose data has a ``workflowId``
    are sub-workflows, looked up in ``--workflows DIR`` or else next to the graph file and
    in a ``workflows/`` folder beside it.
    """
    sub_types = options.sub_workflow_types or tuple(
        sorted({node.type for node in graph.nodes if "workflowId" in node.data})
    )
    directories = [Path(options.workflows)] if options.workflows else [graph_dir, graph_dir / "workflows"]
    resolver = DirectoryResolver(*directories)
    # Every type of the graph and of the sub-workflows it reaches (resolution errors are
    # left to the builder, which reports them with the node that needs them).
    registry: dict[str, Any] = {}
    pending, seen = [graph], set()
    while pending:
        current = pending.pop()
        for node in current.nodes:
            registry[node.type] = _Unbuilt
            workflow_id = node.data.get("workflowId")
            if node.type in sub_types and isinstance(workflow_id, str | int) and workflow_id not in seen:
                seen.add(workflow_id)
                try:
                    sub_graph = resolver.get_graph(workflow_id)
                except CliError:
                    sub_graph = None
                if sub_graph is not None:
                    pending.append(sub_graph)
    return GraphBuilder(
        registry,
        sub_workflow_node_types=sub_types,
        sub_workflow_resolver=resolver,
        conditional_node_types=options.conditional_types,
    )


# ---- validate ---------------------------------------------------------------------------------


def _structure(graph: WorkflowGraph, analysis: GraphAnalysis) -> list[GraphIssue]:
    issues: list[GraphIssue] = []
    if not graph.nodes:
        return [GraphIssue("", "EmptyGraph", "the graph has no nodes")]
    for node_id, count in Counter(node.id for node in graph.nodes).items():
        if count > 1:
            issues.append(GraphIssue(node_id, "DuplicateNodeId", f"{count} nodes share the id {node_id!r}"))
    ids = {node.id for node in graph.nodes}
    for i, edge in enumerate(graph.edges):
        for end in ("source", "target"):
            node_id = getattr(edge, end)
            if node_id not in ids:
                issues.append(
                    GraphIssue(
                        node_id,
                        "DanglingEdge",
                        f"edges[{i}] {edge.source!r} -> {edge.target!r}: {end} {node_id!r} is not a node of the graph",
                    )
                )
    if not analysis.start_node_ids:
        issues.append(
            GraphIssue(
                "", "NoStartNode", "every node has a predecessor, so there is nowhere to start: "
                "remove an edge into the first node",
            )
        )  # fmt: skip
    return issues


def _unreachable(graph: WorkflowGraph, analysis: GraphAnalysis) -> list[GraphIssue]:
    successors: dict[str, list[str]] = {}
    for edge in graph.edges:
        successors.setdefault(edge.source, []).append(edge.target)
    seen = set(analysis.start_node_ids)
    stack = list(seen)
    while stack:
        for target in successors.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return [
        GraphIssue(node_id, "Unreachable", f"node {node_id!r} cannot be reached from a start node")
        for node_id in analysis.all_node_ids
        if node_id not in seen
    ]


def collect_issues(
    graph: WorkflowGraph,
    builder: GraphBuilder | None,
    options: BuilderOptions | None = None,
    *,
    dag: bool = False,
    graph_dir: Path | None = None,
    concurrency: bool = False,
) -> tuple[list[GraphIssue], list[GraphIssue]]:
    """Every error and warning of ``graph`` at once: ``(errors, warnings)``.

    Errors: no nodes, duplicate ids, dangling edges, no start node, unknown node types
    (with a registry), cycles (with ``dag``), then whatever the builder rejects.
    Warnings: unreachable nodes, edges using the literal action ``"default"``, and node
    types left unchecked when there is no registry. With ``concurrency``, the compiled
    blueprint's [`check_concurrency`][flowcraft.graph.check_concurrency] issues too
    (``undeclared-effects`` are warnings). Without a builder, ``options``
    (sub-workflow and conditional types, a workflows directory) shape the compile check.
    """
    analysis = analyze_graph(graph)
    errors = _structure(graph, analysis)
    warnings = validate_graph(graph, check_default_action_strings) + _unreachable(graph, analysis)
    if dag:
        errors += check_for_cycles(analysis, graph)
    if builder is None:
        warnings.append(GraphIssue("", "TypesNotChecked", "node types were not checked: pass --registry to check them"))
    else:
        known = builder.registry
        errors += validate_graph(
            graph,
            create_node_rule(
                lambda node: node.type not in known and node.type not in builder.sub_workflow_node_types,
                lambda node: GraphIssue(
                    node.id, "UnknownNodeType", f"node {node.id!r} has type {node.type!r}, which is not in the registry"
                ),
            ),
        )
    if not errors:
        compiler = builder or _permissive_builder(graph, options or BuilderOptions(), graph_dir or Path())
        try:
            blueprint = compiler.build_blueprint(graph).blueprint
        except GraphError as error:
            errors.append(GraphIssue(error.node_id or "", type(error).__name__, str(error)))
        else:
            if concurrency:
                found = check_concurrency(blueprint, registry=builder.registry if builder else None)
                errors += [issue for issue in found if issue.severity == "error"]
                warnings += [issue for issue in found if issue.severity != "error"]
    return errors, warnings


def validate_command(
    path: str, registry: str | None, options: BuilderOptions, *, as_json: bool, dag: bool, concurrency: bool = False
) -> int:
    """Check a graph file and print every issue; exit 1 when there are errors."""
    raw = read_json_file(path, "graph file")
    try:
        graph = WorkflowGraph.from_dict(raw)
    except GraphError as error:
        errors: list[GraphIssue] = [GraphIssue("", type(error).__name__, str(error))]
        warnings: list[GraphIssue] = []
    else:
        builder = load_builder(registry, options) if registry else None
        errors, warnings = collect_issues(
            graph, builder, options, dag=dag, graph_dir=Path(path).parent, concurrency=concurrency
        )
    if as_json:
        print(
            json.dumps(
                {
                    "file": path,
                    "valid": not errors,
                    "errors": [_issue_dict(i) for i in errors],
                    "warnings": [_issue_dict(i) for i in warnings],
                },
                indent=2,
            )
        )
    else:
        for level, issues in (("error", errors), ("warning", warnings)):
            for issue in issues:
                where = f" node {issue.node_id!r}" if issue.node_id else ""
                print(f"{level}: [{issue.type}]{where}: {issue.message}")
                if issue.witness is not None:
                    print(f"    witness: {_witness_text(issue.witness)}")
        verdict = "invalid" if errors else "valid"
        print(f"{path}: {verdict} ({len(errors)} error(s), {len(warnings)} warning(s))")
    return EXIT_FAILED if errors else EXIT_OK


def _witness_text(witness: Witness) -> str:
    paths = [" -> ".join((witness.fork, *path)) for path in (witness.first, witness.second) if path]
    return " | ".join(paths) or witness.fork


def _issue_dict(issue: GraphIssue) -> dict[str, Any]:
    found: dict[str, Any] = {"node_id": issue.node_id, "type": issue.type, "message": issue.message}
    if issue.keys:
        found["keys"] = list(issue.keys)
    if issue.witness is not None:
        w = issue.witness
        found["witness"] = {"fork": w.fork, "paths": [list(w.first), list(w.second)]}
    return found


# ---- viz --------------------------------------------------------------------------------------

_DOT_SHAPES: Mapping[str, str] = {
    "__internal_parallel_container__": 'shape=hexagon, style=filled, fillcolor="#e8f0fe"',
    "__internal_input_mapper__": 'shape=circle, style=filled, fillcolor="#f1f3f4", fontsize=10',
    "__internal_output_mapper__": 'shape=circle, style=filled, fillcolor="#f1f3f4", fontsize=10',
    "__internal_sub_workflow_container__": 'shape=component, style=filled, fillcolor="#fef7e0"',
    "__internal_conditional_join__": 'shape=diamond, style=filled, fillcolor="#fce8e6", fontsize=10',
}


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(blueprint: WorkflowBlueprint | WorkflowGraph) -> str:
    """Graphviz DOT text for a compiled blueprint (or a raw graph).

    Structural nodes get distinct shapes (parallel containers are hexagons, mappers
    circles, sub-workflow containers components, conditional joins diamonds); edges on a
    non-default action are labelled with it; parallel branches are dashed.
    """
    lines: list[str] = [
        "digraph flowcraft {",
        "  rankdir=TB;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
    ]
    types = {node.id: node.type for node in blueprint.nodes}
    start = getattr(blueprint, "start_node_id", None)
    for node in blueprint.nodes:
        attrs = _DOT_SHAPES.get(node.type)
        if attrs is None:
            label = f"{node.id}\n({node.type})"
            attrs = "penwidth=2" if node.id == start else ""
        else:
            label = node.id
        lines.append(f"  {_dot_quote(node.id)} [label={_dot_quote(label)}{', ' + attrs if attrs else ''}];")
    for edge in blueprint.edges:
        edge_attrs: list[str] = []
        if edge.action is not None:
            edge_attrs.append(f"label={_dot_quote(edge.action)}")
        if types.get(edge.source) == "__internal_parallel_container__":
            edge_attrs.append("style=dashed")
        suffix = f" [{', '.join(edge_attrs)}]" if edge_attrs else ""
        lines.append(f"  {_dot_quote(edge.source)} -> {_dot_quote(edge.target)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def viz_command(
    path: str, registry: str | None, options: BuilderOptions, *, fmt: str, output: str | None, raw: bool
) -> int:
    """Draw a graph file as Mermaid, DOT, or (through Graphviz) SVG/PNG."""
    raw_graph = read_json_file(path, "graph file")
    try:
        graph = WorkflowGraph.from_dict(raw_graph)
    except GraphError as error:
        raise CliError(f"graph file {path!r} is invalid: {error}") from None
    source: WorkflowBlueprint | WorkflowGraph = graph
    note: str | None = None
    if not raw:
        builder = (
            load_builder(registry, options) if registry else _permissive_builder(graph, options, Path(path).parent)
        )
        try:
            source = builder.build_blueprint(graph).blueprint
        except GraphError as error:
            hint = "" if registry else "; pass --registry, or --raw to draw it as written"
            raise CliError(f"graph file {path!r} is invalid: {error} (run `flowcraft validate {path}`{hint})") from None
        if not registry and not options.conditional_types:
            note = _missing_joins_note(graph, source, builder)
    if note is not None:
        print(f"flowcraft: note: {note}", file=sys.stderr)
    if fmt == "mermaid":
        return _emit(_with_note(generate_mermaid(source).rstrip("\n"), f"  %% note: {note}" if note else None), output)
    dot = render_dot(source)
    if fmt == "dot":
        return _emit(_with_note(dot.rstrip("\n"), f"  // note: {note}" if note else None), output)
    return _graphviz(dot, fmt, output)


def _with_note(text: str, comment: str | None) -> str:
    """``text`` with ``comment`` as its second line (after ``graph TD`` / ``digraph {``)."""
    if comment is None:
        return text + "\n"
    first, _, rest = text.partition("\n")
    return f"{first}\n{comment}\n{rest}\n" if rest else f"{first}\n{comment}\n"


def _missing_joins_note(graph: WorkflowGraph, drawn: WorkflowBlueprint, builder: GraphBuilder) -> str | None:
    """Without a registry nothing says which node types are conditional, so the drawing has
    no conditional joins. When a node branches on several actions and its branches meet
    again, the graph that runs has a join there if that type is conditional: say so."""
    out: dict[str, set[str | None]] = {}
    for edge in drawn.edges:
        out.setdefault(edge.source, set()).add(edge.action)
    candidates = sorted(
        {node.type for node in drawn.nodes if not node.type.startswith("__internal_") and len(out.get(node.id, ())) > 1}
    )
    if not candidates:
        return None
    trial = GraphBuilder(
        builder.registry,
        sub_workflow_node_types=sorted(builder.sub_workflow_node_types),
        sub_workflow_resolver=builder.sub_workflow_resolver,
        conditional_node_types=candidates,
    )
    try:
        compiled = trial.build_blueprint(graph).blueprint
    except GraphError:
        return None
    types = {node.id: node.type for node in compiled.nodes}
    joins: dict[str, list[str]] = {}  # node type -> "'<join>' in front of '<target>'"
    for edge in compiled.edges:
        if types.get(edge.source) == CONDITIONAL_JOIN_TYPE:
            owner = edge.source.removesuffix(CONDITIONAL_JOIN_SUFFIX)
            joins.setdefault(types.get(owner, "?"), []).append(f"{edge.source!r} in front of {edge.target!r}")
    if not joins:
        return None
    clauses = "; ".join(
        f"if node type {kind!r} is conditional, the graph that runs has {' and '.join(found)}"
        for kind, found in sorted(joins.items())
    )
    return (
        f"no conditional joins are drawn without --registry: {clauses}; "
        "pass --registry or --conditional-type to draw it"
    )


def _emit(text: str, output: str | None) -> int:
    if output is None:
        sys.stdout.write(text)
    else:
        _write(output, text.encode("utf-8"))
    return EXIT_OK


def _write(output: str, data: bytes) -> None:
    try:
        with open(output, "wb") as file:
            file.write(data)
    except OSError as error:
        raise CliError(f"cannot write --output {output!r}: {error}") from None


def _graphviz(dot: str, fmt: str, output: str | None) -> int:
    executable = shutil.which("dot")
    if executable is None:
        raise CliError(
            f"--format {fmt} needs Graphviz's `dot` command, which is not installed or not on PATH: install "
            "Graphviz (e.g. `apt-get install graphviz` or `brew install graphviz`), or use --format dot or mermaid",
            EXIT_ENVIRONMENT,
        )
    if output is None and fmt == "png" and sys.stdout.isatty():
        raise CliError("--format png writes binary data: pass --output FILE.png or redirect stdout", EXIT_USAGE)
    try:
        result = subprocess.run([executable, f"-T{fmt}"], input=dot.encode("utf-8"), capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CliError(f"running Graphviz `dot -T{fmt}` failed: {error}", EXIT_ENVIRONMENT) from None
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise CliError(
            f"Graphviz `dot -T{fmt}` failed: {message[-1] if message else f'exit {result.returncode}'}",
            EXIT_ENVIRONMENT,
        )
    if output is None:
        sys.stdout.buffer.write(result.stdout)
        sys.stdout.flush()
    else:
        _write(output, result.stdout)
    return EXIT_OK
