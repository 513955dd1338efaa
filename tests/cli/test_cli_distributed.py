"""`flowcraft worker / run --executor redis / status / cancel` against a real Redis.

Fails (never skips) when Redis is unreachable; `scripts/test` starts one.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import MODERATION, ROOT, flowcraft, one_error_line, running_worker, write_json

pytestmark = pytest.mark.integration


@pytest.fixture
def worker(space: list[str]) -> Iterator[subprocess.Popen[str]]:
    with running_worker(space, "examples.moderation.nodes:REGISTRY") as proc:
        yield proc


def test_run_on_workers_then_status(space: list[str], worker: subprocess.Popen[str]):
    context = json.dumps({"post": {"author": "eve", "text": "FREE MONEY click here, you idiot loser"}})
    result = flowcraft(
        "run", str(MODERATION), "--registry", "examples.moderation.nodes:BUILDER", "--context", context,
        "--executor", "redis", *space,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["action"] == "default"
    assert out["context"]["decision"] == "rejected"
    assert "started on" in result.stderr and "ended after" in result.stderr
    # node-by-node progress, as in memory (docs/cli.md)
    assert "started  ingest (Ingest)" in result.stderr and "finished triage -> reject" in result.stderr

    status = flowcraft("status", out["run_id"], "--context", *space)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["state"] == "completed" and report["last_action"] == "default"
    assert report["context"]["decision"] == "rejected"

    again = flowcraft("cancel", out["run_id"], *space)
    assert again.returncode == 1
    assert "already ended (completed); nothing to cancel" in one_error_line(again)


def test_detach_then_cancel_without_workers(space: list[str]):
    result = flowcraft(
        "run", str(MODERATION), "--registry", "examples.moderation.nodes:BUILDER", "--context", '{"post": "hi"}',
        "--executor", "redis", "--detach", *space,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    assert result.stdout == run_id + "\n" and " " not in run_id and "{" not in run_id  # the bare id
    status = json.loads(flowcraft("status", run_id, *space).stdout)
    assert status["state"] == "pending"
    cancelled = flowcraft("cancel", run_id, "--reason", "not needed", *space)
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["state"] == "cancelled"
    assert json.loads(flowcraft("status", run_id, *space).stdout)["cancel_reason"] == "not needed"


def test_detach_output_feeds_status_in_a_shell(space: list[str]):
    """What the docs show: `flowcraft status $(flowcraft run ... --detach)`."""
    command = [sys.executable, "-m", "flowcraft"]
    run = [*command, "run", str(MODERATION), "--registry", "examples.moderation.nodes:BUILDER",
           "--context", '{"post": "hi"}', "--executor", "redis", "--detach", *space]  # fmt: skip
    line = f'{shlex.join([*command, "status"])} "$({shlex.join(run)})" {shlex.join(space)}'
    result = subprocess.run(["bash", "-c", line], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "pending"


def test_detach_with_json_prints_an_object(space: list[str]):
    result = flowcraft(
        "run", str(MODERATION), "--registry", "examples.moderation.nodes:BUILDER", "--context", '{"post": "hi"}',
        "--executor", "redis", "--detach", "--json", *space,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout)["run_id"]
    assert json.loads(flowcraft("cancel", run_id, *space).stdout)["state"] == "cancelled"


def test_unknown_run_is_bad_input(space: list[str]):
    result = flowcraft("status", "no-such-run", *space)
    assert result.returncode == 2
    assert "Run 'no-such-run' does not exist" in one_error_line(result)


def test_worker_with_a_bad_registry_fails_with_a_message(space: list[str]):
    result = flowcraft("worker", "--registry", "nosuch.module:REGISTRY", *space, timeout=60)
    assert result.returncode == 2
    assert "--registry 'nosuch.module:REGISTRY': no module named 'nosuch.module'" in one_error_line(result)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--registry", "examples.moderation.nodes:SPAM_WORDS"], "is a tuple, not a node registry"),
        (
            ["--registry", "examples.moderation.nodes:REGISTRY", "--middleware", "examples.moderation.nodes:REGISTRY"],
            "--middleware 'examples.moderation.nodes:REGISTRY' is not callable",
        ),
        (
            ["--registry", "examples.moderation.nodes:REGISTRY", "--dependencies", "examples.moderation.nodes:URL"],
            "--dependencies 'examples.moderation.nodes:URL' is a Pattern, not a function",
        ),
        (["--registry", "examples.moderation.nodes:REGISTRY", "--concurrency", "0"], "--concurrency: must be >= 1"),
        (["--registry", "examples.moderation.nodes:REGISTRY", "--log-level", "loud"], "--log-level"),
        (["--redis", "redis://127.0.0.1:1/0"], "the following arguments are required: --registry"),
    ],
)
def test_worker_bad_options_exit_2_with_one_line(space: list[str], args: list[str], message: str):
    result = flowcraft("worker", *space, *args, timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in one_error_line(result)


def test_worker_accepts_a_graph_builder_as_run_does(space: list[str]):
    """`--registry module:BUILDER` (a configured GraphBuilder) works for workers too."""
    context = json.dumps({"post": {"author": "dana", "text": "Call me on +1 555 123 4567"}})
    with running_worker(space, "examples.moderation.nodes:BUILDER"):
        result = flowcraft(
            "run", str(MODERATION), "--registry", "examples.moderation.nodes:BUILDER", "--context", context,
            "--executor", "redis", "--progress", "none", *space,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["context"]["decision"] == "publish_redacted"


DEPENDENCY_NODES = """
from flowcraft import Node

class Greet(Node):
    def __init__(self, data=None, greeting="(none)", **_):
        super().__init__()
        self.greeting = greeting

    async def post(self, args):
        await args.ctx.set("said", self.greeting)

REGISTRY = {"greet": Greet}

def services():
    return {"greeting": "hello from --dependencies"}
"""


def test_worker_dependencies_reach_the_node_constructors(space: list[str], tmp_path: Path):
    (tmp_path / "depnodes.py").write_text(DEPENDENCY_NODES, encoding="utf-8")
    write_json(tmp_path / "graph.json", {"nodes": [{"id": "hi", "type": "greet"}], "edges": []})
    with running_worker(space, "depnodes:REGISTRY", "--dependencies", "depnodes:services", cwd=tmp_path):
        result = flowcraft(
            "run", "graph.json", "--registry", "depnodes:REGISTRY", "--executor", "redis", "--progress", "none",
            *space, cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["context"] == {"said": "hello from --dependencies"}
