"""Waits from the command line, on a real SQLite file and real processes: `flowcraft run
--store` of a graph with a `wait` node prints the open wait and exits 4; `show` lists it
with its request; `flowcraft resume` (another process) refuses a bad action and leaves
the wait open, then resolves it, runs the rest and prints the outcome like `run`."""

from __future__ import annotations

import json
from pathlib import Path

from .helpers import flowcraft, one_error_line, write_json

NODES = """
from flowcraft import Node

class Note(Node):
    def __init__(self, data=None, **_):
        super().__init__()
        self.label = (data or {}).get("nodeId")

    async def post(self, args):
        await args.ctx.set("steps", [*(await args.ctx.get("steps", [])), self.label])

REGISTRY = {"note": Note}
"""

GRAPH = {
    "nodes": [
        {"id": "draft", "type": "note"},
        {"id": "review", "type": "wait", "data": {"actions": ["approve", "reject"], "output": "decision"}},
        {"id": "send", "type": "note"},
        {"id": "drop", "type": "note"},
    ],
    "edges": [
        {"source": "draft", "target": "review"},
        {"source": "review", "target": "send", "action": "approve"},
        {"source": "review", "target": "drop", "action": "reject"},
    ],
}


def test_a_paused_run_exits_4_then_resume_finishes_it(tmp_path: Path) -> None:
    (tmp_path / "mynodes.py").write_text(NODES, encoding="utf-8")
    write_json(tmp_path / "graph.json", GRAPH)
    store = ("--store", "runs.db")

    paused = flowcraft("run", "graph.json", "--registry", "mynodes:REGISTRY", *store, "--run-id", "r", cwd=tmp_path)
    assert paused.returncode == 4, paused.stderr
    out = json.loads(paused.stdout)
    assert out["state"] == "awaiting" and out["context"] == {"steps": ["draft"]}
    assert out["waits"] == [
        {"id": "review#1", "node": "review", "kind": "input", "request": None, "actions": ["approve", "reject"]}
    ]

    shown = json.loads(flowcraft("show", "r", *store, cwd=tmp_path).stdout)
    assert shown["state"] == "awaiting" and [w["id"] for w in shown["waits"]] == ["review#1"]

    refused = flowcraft("resume", "r", "review#1", "--value", '"ok"', "--action", "maybe", *store, cwd=tmp_path)
    assert refused.returncode == 2
    assert "allows the actions ['approve', 'reject'], not 'maybe'; the wait stays open" in one_error_line(refused)
    unknown = flowcraft("resume", "r", "review#2", *store, cwd=tmp_path)
    assert unknown.returncode == 2 and "has no wait 'review#2' (open waits: review#1)" in one_error_line(unknown)
    not_json = flowcraft("resume", "r", "review#1", "--value", "yes", "--action", "approve", *store, cwd=tmp_path)
    assert not_json.returncode == 2 and "--value is not JSON" in one_error_line(not_json)

    done = flowcraft("resume", "r", "review#1", "--value", '"looks good"', "--action", "approve", *store, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "run_id": "r", "action": "default", "context": {"steps": ["draft", "send"], "decision": "looks good"},
    }  # fmt: skip

    again = flowcraft("resume", "r", "review#1", "--action", "reject", *store, cwd=tmp_path)
    assert again.returncode == 2 and "has stopped (completed)" in one_error_line(again)


def test_on_redis_a_paused_run_exits_4_and_resume_lets_the_workers_finish_it(tmp_path: Path, space: list[str]) -> None:
    from .helpers import running_worker

    (tmp_path / "mynodes.py").write_text(NODES, encoding="utf-8")
    write_json(tmp_path / "graph.json", GRAPH)
    with running_worker(space, "mynodes:REGISTRY", cwd=tmp_path):
        paused = flowcraft("run", "graph.json", "--registry", "mynodes:REGISTRY", "--executor", "redis", *space,
                           "--progress", "none", cwd=tmp_path)  # fmt: skip
        assert paused.returncode == 4, paused.stderr
        out = json.loads(paused.stdout)
        assert out["state"] == "awaiting" and [w["id"] for w in out["waits"]] == ["review#1"]
        done = flowcraft("resume", out["run_id"], "review#1", "--value", '"fine"', "--action", "reject", *space,
                         "--progress", "none", cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["context"] == {"steps": ["draft", "drop"], "decision": "fine"}
