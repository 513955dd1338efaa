"""Our blueprints equal Flowcraft TS 1.0.0's (tests/fixtures/ts/blueprints.json, made by
generate.mjs), except for the deliberate SPEC §8 differences, asserted here instead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flowcraft import DEFAULT_ACTION, DanglingEdgeError
from flowcraft.graph import GraphBuilder

from .conftest import DictResolver, Recorder, run

FIXTURES = json.loads((Path(__file__).parents[1] / "fixtures" / "ts" / "blueprints.json").read_text("utf-8"))
CASES = {case["name"]: case for case in FIXTURES["cases"]}

# Cases where SPEC deliberately differs from Flowcraft TS; each has its own test below.
DIFFERENT = {
    "several_starts",  # SPEC §9: start nodes under the root container count 1, the root counts 0
    "diff_parallel_per_action_group",  # SPEC §8.8: one container per action group
    "diff_duplicate_predecessor_edges",  # counts are distinct predecessors
    "diff_dangling_target",  # SPEC §8.16: unknown targets are errors
}


def builder_for(case: dict[str, Any]) -> GraphBuilder:
    return GraphBuilder(
        {"task": Recorder, "check": Recorder, "decide": Recorder},
        sub_workflow_node_types=case.get("subWorkflowNodeTypes", ()),
        conditional_node_types=case.get("conditionalNodeTypes", ()),
        sub_workflow_resolver=DictResolver(case.get("subWorkflows", {})),
    )


def ours(case: dict[str, Any]) -> dict[str, Any]:
    return builder_for(case).build_blueprint(case["graph"]).blueprint.to_dict()


def test_fixture_file_covers_the_issue_list() -> None:
    assert FIXTURES["generator"] == "flowcraft@1.0.0"
    assert len(CASES) >= 12
    assert DIFFERENT <= set(CASES)


def compact(value: Any) -> str:
    """JSON text as JavaScript's JSON.stringify writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("name", sorted(set(CASES) - DIFFERENT))
def test_blueprint_equals_flowcraft_ts(name: str) -> None:
    case = CASES[name]
    expected = case["blueprint"]
    # byte for byte: key order too (predecessorCountMap's included), not just dict equality
    assert builder_for(case).build_blueprint(case["graph"]).blueprint.to_json() == compact(expected)


@pytest.mark.parametrize("name", sorted(set(CASES) - DIFFERENT - {"diff_dangling_target"}))
def test_fixture_blueprints_hydrate_and_run(name: str) -> None:
    from flowcraft.graph import BlueprintExecutor

    case = CASES[name]
    executor = BlueprintExecutor(case["blueprint"], {"task": Recorder, "check": Recorder, "decide": Recorder})
    assert set(executor.node_map) == {node["id"] for node in case["blueprint"]["nodes"]}
    if name != "loop_with_exit":  # loops forever without an exit condition in its data
        action, ctx = run(executor.flow)
        assert action is DEFAULT_ACTION or isinstance(action, str)


def test_difference_root_start_counts() -> None:
    # TS computes the counts before adding __root_parallel_start: starts get 0 and the root
    # is missing. SPEC §9: under the root, start nodes count 1 and the root counts 0 — the
    # counts equal the in-degree of the flattened graph. Everything else is identical.
    case = CASES["several_starts"]
    mine, theirs = ours(case), case["blueprint"]
    assert theirs["predecessorCountMap"] == {"a": 0, "b": 0, "c": 2}
    assert mine["predecessorCountMap"] == {"a": 1, "b": 1, "c": 2, "__root_parallel_start": 0}
    assert {k: v for k, v in mine.items() if k != "predecessorCountMap"} == {
        k: v for k, v in theirs.items() if k != "predecessorCountMap"
    }


def test_difference_parallel_container_per_action_group() -> None:
    # TS creates one container per node: the second action group with several successors
    # keeps plain edges, so only its first successor ever runs. SPEC §8.8: one container
    # per action group, the later ones named <id>__parallel_container__<action>.
    case = CASES["diff_parallel_per_action_group"]
    mine, theirs = ours(case), case["blueprint"]
    assert [n["id"] for n in theirs["nodes"]][-1] == "a__parallel_container"
    assert {"source": "a", "target": "d", "action": "alt"} in theirs["edges"]
    assert [n["id"] for n in mine["nodes"]][-2:] == ["a__parallel_container", "a__parallel_container__alt"]
    assert mine["edges"] == [
        {"source": "a", "target": "a__parallel_container", "action": "go"},
        {"source": "a__parallel_container", "target": "b"},
        {"source": "a__parallel_container", "target": "c"},
        {"source": "a", "target": "a__parallel_container__alt", "action": "alt"},
        {"source": "a__parallel_container__alt", "target": "d"},
        {"source": "a__parallel_container__alt", "target": "e2"},
    ]


def test_difference_duplicate_edges_count_one_predecessor() -> None:
    # TS counts edges, so a -x-> b plus a -y-> b gives b two predecessors — a join that
    # waits for a second arrival that never comes. We count distinct predecessors.
    case = CASES["diff_duplicate_predecessor_edges"]
    mine, theirs = ours(case), case["blueprint"]
    assert theirs["predecessorCountMap"]["b"] == 2
    assert mine["predecessorCountMap"]["b"] == 1
    assert mine["edges"] == theirs["edges"]


def test_difference_dangling_target_is_an_error() -> None:
    # TS keeps an edge to a node that does not exist (and crashes on an unknown source).
    case = CASES["diff_dangling_target"]
    assert "ghost" in case["blueprint"]["predecessorCountMap"]
    with pytest.raises(DanglingEdgeError, match=r"unknown target 'ghost'") as info:
        ours(case)
    assert info.value.path == "edges[0].target"
