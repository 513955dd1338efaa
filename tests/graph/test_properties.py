"""Property-based tests (hypothesis) of the graph compiler."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowcraft import Node, TypedContext
from flowcraft.graph import GraphBuilder, WorkflowBlueprint, WorkflowGraph

from .conftest import DictResolver

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Rec(Node[Any, Any, Any]):
    """Records (id, snapshot of who ran before) for every run."""

    def __init__(self, data: dict[str, Any], **deps: Any) -> None:
        super().__init__()

    async def exec(self, args: Any) -> None:
        log = await args.ctx.get("log")
        log.append(self.id)


@st.composite
def dags(draw: Any, max_nodes: int = 12) -> dict[str, Any]:
    """A random DAG (edges go from lower to higher index), some edges with actions."""
    n = draw(st.integers(1, max_nodes))
    ids = [f"n{i}" if draw(st.booleans()) else f"n{i}-é" for i in range(n)]
    edges = []
    for j in range(1, n):
        for i in draw(st.sets(st.integers(0, j - 1), max_size=3)):
            edges.append({"source": ids[i], "target": ids[j]})
    return {"nodes": [{"id": i, "type": "rec"} for i in ids], "edges": edges}


@st.composite
def graphs_with_subs(draw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A DAG whose nodes may be sub-workflows (up to two levels deep)."""
    inner = draw(dags(max_nodes=4))
    middle = draw(dags(max_nodes=5))
    top = draw(dags(max_nodes=6))
    for g, sub_id in ((middle, "inner"), (top, "middle")):
        for node in g["nodes"]:
            if draw(st.integers(0, 3)) == 0:
                node["type"] = "sub"
                node["data"] = {"workflowId": sub_id}
    return top, {"inner": inner, "middle": middle}


def builder(subs: dict[str, Any] | None = None) -> GraphBuilder:
    return GraphBuilder({"rec": Rec}, sub_workflow_node_types=["sub"], sub_workflow_resolver=DictResolver(subs or {}))


@SETTINGS
@given(dags())
def test_graphs_round_trip_through_json(raw: dict[str, Any]) -> None:
    graph = WorkflowGraph.from_dict(raw)
    assert WorkflowGraph.from_json(graph.to_json()) == graph
    assert graph.to_dict()["edges"] == raw["edges"]


@SETTINGS
@given(graphs_with_subs())
def test_compiled_blueprints_are_consistent(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    top, subs = case
    blueprint = builder(subs).build_blueprint(top).blueprint
    ids = [n.id for n in blueprint.nodes]
    assert len(ids) == len(set(ids))  # generated ids are unique
    known = set(ids)
    assert all(e.source in known and e.target in known for e in blueprint.edges)
    assert blueprint.start_node_id in known
    in_degree: dict[str, set[str]] = {i: set() for i in ids}
    for e in blueprint.edges:
        in_degree[e.target].add(e.source)
    assert blueprint.predecessor_count_map == {i: len(s) for i, s in in_degree.items()}
    assert [i for i in ids if not in_degree[i]] == [blueprint.start_node_id]
    assert WorkflowBlueprint.from_json(blueprint.to_json()) == blueprint


@SETTINGS
@given(graphs_with_subs())
def test_running_a_random_dag_runs_each_reachable_node_once_after_its_predecessors(
    case: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    top, subs = case
    b = builder(subs)
    blueprint = b.build_blueprint(top).blueprint
    result = b.build(top)
    ctx = TypedContext({"log": []})
    asyncio.run(result.flow.run(ctx))
    log: list[str] = asyncio.run(ctx.get("log"))
    user_nodes = {n.id for n in blueprint.nodes if n.type == "rec"}
    assert sorted(log) == sorted(user_nodes)  # every node is reachable from the start here; each ran once
    position = {node_id: i for i, node_id in enumerate(log)}
    # every user node ran after all of its user-level producers
    producers: dict[str, set[str]] = {}
    preds: dict[str, set[str]] = {}
    for e in blueprint.edges:
        preds.setdefault(e.target, set()).add(e.source)

    def user_preds(node_id: str, seen: set[str]) -> set[str]:
        found: set[str] = set()
        for p in preds.get(node_id, ()):
            if p in seen:
                continue
            seen.add(p)
            found |= {p} if p in user_nodes else user_preds(p, seen)
        return found

    for node_id in user_nodes:
        producers[node_id] = user_preds(node_id, set())
        assert all(position[p] < position[node_id] for p in producers[node_id]), (node_id, producers[node_id], log)
