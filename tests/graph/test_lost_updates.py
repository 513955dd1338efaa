"""check_concurrency's ``parallel-lost-update`` (issue 14, defect 8): a node that reads a
key and writes it back while another node may write it at the same time loses updates;
``updates`` declarations (``ctx.update``) and keys with a merge policy are atomic and
not reported; `flowcraft validate --concurrency` prints it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from flowcraft import ContextKey, Flow, Node, ParallelFlow
from flowcraft.graph import GraphIssue, check_concurrency, declared_effects

TRAIL = ContextKey[str]("trail", merge="append")


def make(name: str, **effects: Any) -> Node:
    return type(name.title(), (Node,), effects)().with_id(name)  # type: ignore[no-any-return]


def kinds(issues: list[GraphIssue]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(i.type, i.node_id, i.keys) for i in issues]


def test_parallel_read_modify_write_is_a_lost_update_naming_the_nodes_and_the_key() -> None:
    left = make("left", reads=("trail",), writes=("trail",))
    right = make("right", reads=("trail",), writes=("trail",))
    (issue,) = check_concurrency(Flow(ParallelFlow([left, right]).with_id("fork")))
    assert kinds([issue]) == [("parallel-lost-update", "right", ("trail",))]
    assert issue.severity == "error"
    assert "'left' and 'right' both read 'trail' and write it back" in issue.message
    assert "parallel fork 'fork'" in issue.message
    assert "await ctx.update(key, fn)" in issue.message and "merge policy" in issue.message
    assert issue.witness is not None and (issue.witness.first, issue.witness.second) == (("right",), ("left",))


def test_one_read_modify_write_beside_a_plain_writer_is_a_lost_update_too() -> None:
    rmw = make("rmw", reads=("n",), writes=("n",))
    plain = make("plain", writes=("n",))
    (issue,) = check_concurrency(Flow(ParallelFlow([plain, rmw])))
    assert kinds([issue]) == [("parallel-lost-update", "rmw", ("n",))]
    assert "'rmw' reads 'n' and writes it back while 'plain' may write it at once" in issue.message


def test_atomic_updates_and_merge_policies_are_not_reported() -> None:
    updates = [make(f"u{i}", updates=("trail",)) for i in range(3)]
    assert check_concurrency(Flow(ParallelFlow(updates))) == []
    merges = [make(f"m{i}", writes=(TRAIL,)) for i in range(3)]
    assert check_concurrency(Flow(ParallelFlow(merges))) == []
    mixed = [make("u", updates=("trail",)), make("m", writes=(TRAIL,))]  # both atomic: no lost write
    assert check_concurrency(Flow(ParallelFlow(mixed))) == []
    effects = declared_effects(make("x", reads=("a",), writes=(TRAIL, "b"), updates=("c",)))
    assert effects is not None
    assert (effects.writes, effects.merged) == (frozenset({"trail", "b", "c"}), frozenset({"trail", "c"}))


def test_a_plain_write_beside_a_merge_is_still_a_write_conflict() -> None:
    issues = check_concurrency(Flow(ParallelFlow([make("m", writes=(TRAIL,)), make("p", writes=("trail",))])))
    assert kinds(issues) == [("parallel-write-conflict", "p", ("trail",))]


def test_a_reader_of_a_merged_key_still_races() -> None:
    issues = check_concurrency(Flow(ParallelFlow([make("m", writes=(TRAIL,)), make("r", reads=("trail",))])))
    assert kinds(issues) == [("parallel-read-write-race", "r", ("trail",))]


GRAPH = {
    "nodes": [
        {"id": "s", "type": "step", "data": {"reads": [], "writes": ["trail"]}},
        {"id": "a", "type": "step", "data": {"reads": ["trail"], "writes": ["trail"]}},
        {"id": "b", "type": "step", "data": {"reads": ["trail"], "writes": ["trail"]}},
        {"id": "c", "type": "step", "data": {"updates": ["count"]}},
        {"id": "d", "type": "step", "data": {"updates": ["count"]}},
    ],
    "edges": [{"source": "s", "target": t} for t in "abcd"],
}


def test_json_graphs_declare_updates_in_data() -> None:
    assert kinds(check_concurrency(GRAPH)) == [("parallel-lost-update", "b", ("trail",))]


def test_validate_concurrency_prints_the_lost_update(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(GRAPH))
    result = subprocess.run(
        [sys.executable, "-m", "flowcraft", "validate", str(path), "--concurrency"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert "error: [parallel-lost-update] node 'b'" in result.stdout
    assert "'a' and 'b' both read 'trail' and write it back" in result.stdout
    assert "ctx.update" in result.stdout
    assert "count" not in result.stdout
