"""check_concurrency: the five issue kinds with their witnesses, on programmatic flows,
JSON graphs and compiled blueprints; declarations from class attributes, ContextKeys,
JSON data and registry classes; `flowcraft validate --concurrency`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flowcraft import Flow, Node, ParallelBatchFlow, ParallelFlow, context_key
from flowcraft.graph import (
    CONCURRENCY_ISSUE_TYPES,
    Effects,
    GraphBuilder,
    GraphIssue,
    Witness,
    check_concurrency,
    create_node_registry,
    declared_effects,
)

TOTAL = context_key("total", int)


def make(name: str, reads: tuple[Any, ...] | None = (), writes: tuple[Any, ...] | None = ()) -> Node:
    attrs: dict[str, Any] = {}
    if reads is not None:
        attrs["reads"] = reads
    if writes is not None:
        attrs["writes"] = writes
    return type(name.title(), (Node,), attrs)().with_id(name)  # type: ignore[no-any-return]


def kinds(issues: list[GraphIssue]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(i.type, i.node_id, i.keys) for i in issues]


def test_two_branches_writing_one_key_conflict_with_a_witness() -> None:
    price, tax = make("price", ("order",), (TOTAL,)), make("tax", ("order",), ("total",))
    block = ParallelFlow([price, tax]).with_id("fork")
    block.next(make("report", ("total",)))
    (issue,) = check_concurrency(Flow(block))
    assert (issue.type, issue.node_id, issue.keys, issue.severity) == (
        "parallel-write-conflict", "tax", ("total",), "error"
    )  # fmt: skip
    assert issue.witness == Witness("fork", ("price",), ("tax",))
    assert "'price' and 'tax' may run at the same time and both write 'total'" in issue.message


def test_a_read_of_a_key_a_sibling_writes_races_and_nested_paths_are_the_witness() -> None:
    a = make("a", (), ("x",))
    a.next(make("a2", (), ("y",)))
    b = make("b", (), ())
    b.next(make("b2", ("x",), ()))
    issues = check_concurrency(Flow(ParallelFlow([a, b]).with_id("p")))
    assert kinds(issues) == [("parallel-read-write-race", "b2", ("x",))]
    assert issues[0].witness == Witness("p", ("b", "b2"), ("a",))


def test_a_join_orders_what_comes_after_it() -> None:
    a, b, join = make("a", (), ("x",)), make("b", (), ("y",)), make("join", ("x", "y"), ("z",))
    a.next(join)
    b.next(join)
    after = make("after", ("z",), ("x",))
    join.next(after)
    assert check_concurrency(Flow(ParallelFlow([a, b]))) == []


def test_a_join_does_not_order_a_branch_that_does_not_reach_it() -> None:
    a, b, c, join = make("a"), make("b"), make("slow", ("x",)), make("join", (), ("x",))
    a.next(join)
    b.next(join)
    assert kinds(check_concurrency(Flow(ParallelFlow([a, b, c])))) == [("parallel-read-write-race", "slow", ("x",))]


def test_different_actions_of_one_node_are_exclusive() -> None:
    pick = make("pick")
    pick.next(make("yes", (), ("answer",)), "yes")
    pick.next(make("no", (), ("answer",)), "no")
    assert check_concurrency(Flow(pick)) == []


def test_a_sequential_block_and_a_serial_batch_do_not_race() -> None:
    assert check_concurrency(Flow(ParallelFlow([make("a", (), ("k",)), make("b", (), ("k",))], concurrency=1))) == []
    batch = ParallelBatchFlow(make("item", (), ("last",)), concurrency=1)
    assert check_concurrency(Flow(batch)) == []


def test_items_of_a_parallel_batch_race_with_each_other() -> None:
    issues = check_concurrency(Flow(ParallelBatchFlow(make("item", ("seen",), ("seen",))).with_id("batch")))
    # read-modify-write in parallel: one lost update (it is a write conflict and a read race in one)
    assert kinds(issues) == [("parallel-lost-update", "item", ("seen",))]
    assert "each item of a parallel batch" in issues[0].message
    issues = check_concurrency(Flow(ParallelBatchFlow(make("item", (), ("last",))).with_id("batch")))
    assert kinds(issues) == [("parallel-write-conflict", "item", ("last",))]
    assert issues[0].witness == Witness("batch", ("item",), ("item",))


def test_undeclared_nodes_in_a_parallel_region_are_warnings_and_outside_are_not() -> None:
    lone = make("lone", None, None)
    block = ParallelFlow([make("a", (), ("x",)), make("mystery", None, None)]).with_id("p")
    lone.next(block)
    issues = check_concurrency(Flow(lone))
    assert kinds(issues) == [("undeclared-effects", "mystery", ())]
    assert issues[0].severity == "warning" and issues[0].witness == Witness("p", ("mystery",), ("a",))


def test_a_read_that_not_every_path_writes_first() -> None:
    pick = make("pick")
    pick.next(make("yes", (), ("answer",)), "yes").next(make("use", ("answer", "input"), ()))
    pick.next(make("no"), "no").next(
        pick.successors["yes"][0].successors[next(iter(pick.successors["yes"][0].successors))][0]
    )
    issues = check_concurrency(Flow(pick))
    assert kinds(issues) == [("maybe-unset-read", "use", ("answer",))]  # "input" is written nowhere: an input
    assert issues[0].witness == Witness("pick", ("pick", "no", "use"))
    assert check_concurrency(Flow(pick), inputs=["answer"]) == []


def test_a_loop_reading_what_it_writes_is_not_reported() -> None:
    count = make("count", ("i",), ("i",))
    count.next(count, "again")
    assert check_concurrency(Flow(make("start", (), ()).next(count) and Flow(count))) == []


GRAPH: dict[str, Any] = {
    "nodes": [
        {"id": "s", "type": "step", "data": {"writes": ["order"]}},
        {"id": "pick", "type": "choose", "data": {"reads": ["order"]}},
        {"id": "left", "type": "step", "data": {"writes": ["side"]}},
        {"id": "right", "type": "step", "data": {"writes": ["side"]}},
        {"id": "merge", "type": "step", "data": {"reads": ["side"]}},
        {"id": "slow", "type": "slow"},
    ],
    "edges": [
        {"source": "s", "target": "pick"},
        {"source": "s", "target": "slow"},
        {"source": "pick", "target": "left", "action": "l"},
        {"source": "pick", "target": "right", "action": "r"},
        {"source": "left", "target": "merge"},
        {"source": "right", "target": "merge"},
    ],
}


class Slow(Node):
    reads = ("order",)
    writes = ("slow",)

    def __init__(self, data: Any = None, **deps: Any) -> None:
        super().__init__()


class Step(Slow):
    reads = writes = None  # type: ignore[assignment]


def test_a_json_graph_exclusive_join_and_registry_effects() -> None:
    issues = check_concurrency(GRAPH, registry={"slow": Slow})
    assert kinds(issues) == [("exclusive-join", "merge", ())]
    assert issues[0].witness == Witness("pick", ("left",), ("right",))
    # without the registry, slow declares nothing
    assert kinds(check_concurrency(GRAPH))[0] == ("undeclared-effects", "slow", ())
    # a conditional type gets a conditional join: not a join any more
    assert check_concurrency(GRAPH, registry={"slow": Slow}, conditional_node_types=["choose"]) == []


def test_a_compiled_blueprint_gives_the_same_verdict() -> None:
    registry = create_node_registry({"step": Step, "choose": Step, "slow": Slow})
    plain = GraphBuilder(registry).build_blueprint(GRAPH).blueprint
    assert kinds(check_concurrency(plain, registry=registry)) == [("exclusive-join", "merge", ())]
    assert kinds(check_concurrency(plain.to_dict(), registry=registry)) == [("exclusive-join", "merge", ())]
    conditional = GraphBuilder(registry, conditional_node_types=["choose"]).build_blueprint(GRAPH).blueprint
    assert check_concurrency(conditional, registry=registry) == []
    flow = GraphBuilder(registry).build(GRAPH).flow
    assert kinds(check_concurrency(flow)) == [("exclusive-join", "merge", ())]


def test_a_json_fork_races() -> None:
    graph = {
        "nodes": [
            {"id": "a", "type": "t", "data": {"writes": ["k"]}},
            {"id": "b", "type": "t", "data": {"writes": ["k"], "reads": ["j"]}},
            {"id": "c", "type": "t", "data": {"writes": ["j"]}},
        ],
        "edges": [{"source": "a", "target": "b"}, {"source": "a", "target": "c"}],
    }
    issues = check_concurrency(graph)
    assert kinds(issues) == [("parallel-read-write-race", "b", ("j",))]
    assert issues[0].witness == Witness("a", ("b",), ("c",))
    assert {i.type for i in issues} <= set(CONCURRENCY_ISSUE_TYPES)


def test_declarations_are_checked() -> None:
    assert declared_effects(Slow) == Effects(frozenset({"order"}), frozenset({"slow"}))
    assert declared_effects(Node()) is None
    bad = type("Bad", (Node,), {"reads": 3})
    with pytest.raises(TypeError, match=r"Bad.reads must be context key names, got int 3"):
        declared_effects(bad)
    with pytest.raises(TypeError, match=r"node 'x' data.writes must be context key names, got int 1"):
        check_concurrency({"nodes": [{"id": "x", "type": "t", "data": {"writes": [1]}}], "edges": []})


def test_validate_concurrency_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(GRAPH))

    def validate(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flowcraft", "validate", str(path), *extra],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    assert validate().returncode == 0
    result = validate("--concurrency")
    assert result.returncode == 1, result.stdout
    assert "error: [exclusive-join] node 'merge'" in result.stdout
    assert "witness: pick -> left | pick -> right" in result.stdout
    assert "warning: [undeclared-effects] node 'slow'" in result.stdout
    ok = validate("--concurrency", "--conditional-type", "choose", "--json")
    assert ok.returncode == 0, ok.stdout
    report = json.loads(ok.stdout)
    (race,) = [w for w in report["warnings"] if w["type"] == "undeclared-effects"]
    assert report["valid"] and race["witness"] == {"fork": "s", "paths": [["slow"], ["pick"]]}
