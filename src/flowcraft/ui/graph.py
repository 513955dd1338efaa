"""The run page's diagram: Mermaid text for a run's stored graph, and which Mermaid node
stands for which node id (so the page can colour nodes as their events arrive).

A blueprint is drawn from its nodes and edges. A factory flow stores only its node ids
(``{"factory": "module:function", "shapes": ...}``): it is drawn as those nodes alone,
or — with ``flowcraft ui --factories`` — from the flow the factory builds (the
dashboard then imports the factory's module, as a worker does).

Mermaid ids are ``n0``, ``n1``, … (nothing of a node id reaches Mermaid's syntax but
its quoted label); Mermaid draws labels as text (``securityLevel: "strict"``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..actions import DEFAULT_ACTION

__all__ = ["Diagram", "diagram_of"]

_PARALLEL = "__internal_parallel_container__"


@dataclasses.dataclass(frozen=True, slots=True)
class Diagram:
    """Mermaid ``text``, the Mermaid id of each node id (``ids``), and a ``note`` on what
    could not be drawn (empty when the whole graph is drawn)."""

    text: str
    ids: dict[str, str]
    note: str = ""


def _label(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", " ") + '"'


class _Drawing:
    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.lines = ["flowchart TD"]

    def node(self, node_id: str, kind: str) -> None:
        uid = self.ids.setdefault(node_id, f"n{len(self.ids)}")
        if kind == _PARALLEL:
            self.lines.append(f"  {uid}{{{{{_label('parallel')}}}}}")
        elif kind in ("wait", "sleep"):
            self.lines.append(f"  {uid}([{_label(f'{node_id} ({kind})')}])")
        elif kind.startswith("__internal_"):
            self.lines.append(f"  {uid}(({_label(node_id)}))")
        else:
            self.lines.append(f"  {uid}[{_label(f'{node_id} ({kind})' if kind else node_id)}]")

    def edge(self, source: str, target: str, action: Any, *, branch: bool = False) -> None:
        if source not in self.ids or target not in self.ids:
            return
        a, b = self.ids[source], self.ids[target]
        if branch:
            self.lines.append(f"  {a} -.-> {b}")
        elif action is None or action == DEFAULT_ACTION or action == str(DEFAULT_ACTION):
            self.lines.append(f"  {a} --> {b}")
        else:
            self.lines.append(f"  {a} -- {_label(str(action))} --> {b}")

    def done(self, note: str = "") -> Diagram:
        return Diagram("\n".join(self.lines), dict(self.ids), note)


def diagram_of(graph_text: str | None, *, factories: bool = False) -> Diagram | None:
    """The diagram of a stored graph (``None``: no graph is stored, or it is unreadable)."""
    if not graph_text:
        return None
    try:
        data = json.loads(graph_text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if "factory" in data:
        return _factory(data, factories)
    drawing = _Drawing()
    kinds: dict[str, str] = {}
    for node in data.get("nodes") or ():
        if isinstance(node, dict) and isinstance(node.get("id"), str):
            kinds[node["id"]] = str(node.get("type", ""))
            drawing.node(node["id"], kinds[node["id"]])
    for edge in data.get("edges") or ():
        if isinstance(edge, dict):
            source, target = str(edge.get("source")), str(edge.get("target"))
            drawing.edge(source, target, edge.get("action"), branch=kinds.get(source) == _PARALLEL)
    return drawing.done()


def _factory(data: dict[str, Any], factories: bool) -> Diagram:
    name = str(data.get("factory"))
    found = data.get("shapes")
    shapes: dict[str, Any] = found if isinstance(found, dict) else {}
    if factories:
        try:
            return _from_flow(name)
        except Exception as error:
            note = f"the factory {name} could not be loaded ({type(error).__name__}: {error}): nodes only"
    else:
        note = f"a factory flow ({name}): nodes only; start flowcraft ui with --factories to draw its edges"
    drawing = _Drawing()
    for node_id in sorted(shapes):
        drawing.node(str(node_id), "")
    return drawing.done(note)


def _from_flow(name: str) -> Diagram:
    # local import: the job plan of a factory flow, only with --factories
    from ..engine.plan import JobPlan, flow_from_factory

    plan = JobPlan(flow_from_factory(name))
    drawing = _Drawing()
    ordered = sorted(plan.ids.items(), key=lambda item: (item[1] != plan.start_id, item[1]))
    for node, node_id in ordered:
        drawing.node(node_id, _PARALLEL if node.is_passthrough and node.branches else type(node).__name__)
    for node, node_id in ordered:
        for action, bucket in node.successors.items():
            for successor in bucket:
                drawing.edge(node_id, plan.ids[successor], action)
        if node.is_passthrough:
            for branch in node.branches:
                drawing.edge(node_id, plan.ids[branch], None, branch=True)
    return drawing.done()
