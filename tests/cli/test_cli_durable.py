"""`flowcraft run --store` (durable runs in the command's process, on a real SQLite file),
`runs`, `show`, `status` and `cancel` on a store file and on Redis, `run --timeout`, and
the warning when no worker takes a Redis run.

The crash test kills `flowcraft run` with SIGKILL midway (``FLOWCRAFT_TEST_CRASH_AT``,
see flowcraft.engine.worker) and runs the same command again: it finishes the run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .helpers import flowcraft, one_error_line, running_worker, write_json

NODES = textwrap.dedent(
    """
    import asyncio
    import os
    from flowcraft import Node

    class Step(Node):
        def __init__(self, data=None, **_):
            super().__init__()
            data = data or {}
            self.label = data.get("nodeId")
            self.delay = data.get("delay", 0)

        async def exec(self, args):
            if self.delay:
                await asyncio.sleep(self.delay)
            with open("effects.log", "a", encoding="utf-8") as log:
                log.write(f"{args.idempotency_key}\\n")

        async def post(self, args):
            await args.ctx.set("steps", [*(await args.ctx.get("steps", [])), self.label])

    class Boom(Node):
        def __init__(self, data=None, **_):
            super().__init__()

        def exec(self, args):
            raise RuntimeError("the disk is on fire")

    REGISTRY = {"step": Step, "boom": Boom}
    """
)


def chain(*nodes: dict[str, object]) -> dict[str, object]:
    return {
        "nodes": list(nodes),
        "edges": [{"source": a["id"], "target": b["id"]} for a, b in zip(nodes, nodes[1:], strict=False)],
    }


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "mynodes.py").write_text(NODES, encoding="utf-8")
    steps = [{"id": name, "type": "step"} for name in "abcd"]
    write_json(tmp_path / "chain.json", chain(*steps))
    write_json(tmp_path / "failing.json", chain(steps[0], {"id": "fire", "type": "boom"}))
    write_json(tmp_path / "slow.json", chain(steps[0], {"id": "slow", "type": "step", "data": {"delay": 60}}))
    return tmp_path


def run(work: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return flowcraft(*args, cwd=work, env=env)


def popen(work: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flowcraft", *args], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float = 30) -> str:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while text not in seen:
        line = proc.stderr.readline()
        assert line and time.monotonic() < deadline, f"{text!r} never came: {seen}"
        seen += line
    return seen


STORE = ("--store", "runs.db")
REGISTRY = ("--registry", "mynodes:REGISTRY")


def test_durable_run_then_runs_show_status_cancel(work: Path):
    result = run(work, "run", "chain.json", *REGISTRY, *STORE, "--run-id", "r1", "--context", '{"who": "cli"}',
                 "--progress", "plain")  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out == {"run_id": "r1", "action": "default", "context": {"who": "cli", "steps": ["a", "b", "c", "d"]}}
    assert "run r1 started in runs.db" in result.stderr and "--run-id r1` finishes it" in result.stderr
    assert "finished d -> default" in result.stderr  # the progress display, as in memory
    assert (work / "runs.db").is_file()

    # a second run without --run-id gets a fresh id; it fails
    failed = run(work, "run", "failing.json", *REGISTRY, *STORE, "--progress", "none")
    assert failed.returncode == 1
    failed_out = json.loads(failed.stdout)
    assert "the disk is on fire" in failed_out["error"]["message"] and failed_out["context"] == {"steps": ["a"]}
    assert re.search(r"run \w+ failed: .*the disk is on fire", one_error_line(failed))

    listing = json.loads(run(work, "runs", *STORE, "--json").stdout)
    assert [(r["run_id"], r["state"]) for r in listing] == [(failed_out["run_id"], "failed"), ("r1", "completed")]
    assert [r["run_id"] for r in json.loads(run(work, "runs", *STORE, "--json", "--state", "completed").stdout)] == [
        "r1"
    ]
    table = run(work, "runs", *STORE).stdout.splitlines()
    assert table[0].split() == ["RUN", "ID", "STATE", "CREATED", "UPDATED"] and table[2].startswith("r1 ")
    assert "no cancelled runs in runs.db" in run(work, "runs", *STORE, "--state", "cancelled").stderr

    shown = json.loads(run(work, "show", "r1", *STORE).stdout)
    assert shown["state"] == "completed" and shown["context"]["steps"] == ["a", "b", "c", "d"]
    assert shown["started_with"]["registry"] == "mynodes:REGISTRY"
    assert shown["created_at"] <= shown["ended_at"] == shown["updated_at"]
    failed_shown = json.loads(run(work, "show", failed_out["run_id"], *STORE).stdout)
    error = failed_shown["error"]
    assert (error["node"], error["phase"], error["type"]) == ("fire", "exec", "RuntimeError")
    assert "the disk is on fire" in error["message"]

    status = json.loads(run(work, "status", "r1", *STORE, "--context").stdout)
    assert status["state"] == "completed" and status["context"]["who"] == "cli"
    again = run(work, "cancel", "r1", *STORE)
    assert again.returncode == 1 and "already ended (completed); nothing to cancel" in one_error_line(again)

    # re-running the command of an ended run prints its outcome (no --registry needed)
    rerun = run(work, "run", "chain.json", *STORE, "--run-id", "r1")
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout) == out
    assert "run r1 found in runs.db: it already ended (completed)" in rerun.stderr
    assert (work / "effects.log").read_text().count("r1:") == 4  # nothing ran again


def test_kill_minus_9_midway_then_the_same_command_finishes_the_run(work: Path):
    command = ("run", "chain.json", *REGISTRY, *STORE, "--run-id", "crashy", "--progress", "plain")
    killed = run(work, *command, env={"FLOWCRAFT_TEST_CRASH_AT": "before_complete:c"})
    assert killed.returncode == -9, killed.stderr  # SIGKILL, before c's commit
    assert killed.stdout == ""
    shown = json.loads(run(work, "show", "crashy", *STORE).stdout)
    assert shown["state"] == "running" and shown["context"] == {"steps": ["a", "b"]}

    finished = run(work, "run", "chain.json", *STORE, "--run-id", "crashy", "--progress", "plain")  # no --registry
    assert finished.returncode == 0, finished.stderr
    assert "its process had stopped; going on from its last commit" in finished.stderr
    assert json.loads(finished.stdout)["context"] == {"steps": ["a", "b", "c", "d"]}  # c's write exactly once
    effects = (work / "effects.log").read_text().split()
    assert effects == ["crashy:a:1", "crashy:b:1", "crashy:c:1", "crashy:c:1", "crashy:d:1"]  # c ran twice
    assert json.loads(run(work, "status", "crashy", *STORE).stdout)["state"] == "completed"


def test_cancel_from_another_process_stops_a_store_run(work: Path):
    proc = popen(work, "run", "slow.json", *REGISTRY, *STORE, "--run-id", "slowpoke", "--progress", "plain")
    try:
        wait_for_line(proc, "started  slow")
        running = json.loads(run(work, "status", "slowpoke", *STORE).stdout)
        assert running["state"] == "running"
        cancelled = run(work, "cancel", "slowpoke", *STORE, "--reason", "enough")
        assert cancelled.returncode == 0, cancelled.stderr
        assert json.loads(cancelled.stdout)["state"] == "cancelled"
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    assert "flowcraft: error: run slowpoke cancelled" in err and "enough" in err
    assert json.loads(out)["context"] == {"steps": ["a"]}


def test_timeout_on_a_store_run_leaves_it_to_the_next_command(work: Path):
    result = run(work, "run", "slow.json", *REGISTRY, *STORE, "--run-id", "t1", "--timeout", "1")
    assert result.returncode == 124, result.stderr
    line = one_error_line(result)
    assert "run t1 did not end within 1s" in line and "--run-id t1` goes on from its last commit" in line
    assert json.loads(run(work, "show", "t1", *STORE).stdout)["context"] == {"steps": ["a"]}
    # the next command takes the run over at once (its process released it)
    cancelled = run(work, "cancel", "t1", *STORE)
    assert json.loads(cancelled.stdout)["state"] == "cancelled"
    again = run(work, "run", "slow.json", *STORE, "--run-id", "t1")
    assert again.returncode == 1 and "run t1 cancelled" in one_error_line(again)


def test_store_errors_and_misuse_are_one_line(work: Path):
    missing = run(work, "run", "chain.json", *STORE)
    assert missing.returncode == 2
    assert "the following arguments are required: --registry" in one_error_line(missing)
    unknown = run(work, "run", "chain.json", *STORE, "--run-id", "nope")
    assert unknown.returncode == 2 and "the following arguments are required: --registry" in one_error_line(unknown)
    assert run(work, "run", "chain.json", *REGISTRY, *STORE, "--run-id", "c1").returncode == 0
    conflict = run(work, "run", "failing.json", *REGISTRY, *STORE, "--run-id", "c1")
    assert conflict.returncode == 2 and "Run 'c1' exists with another graph" in one_error_line(conflict)
    (work / "foreign.db").write_bytes(b"not a database at all" * 100)
    foreign = run(work, "run", "chain.json", *REGISTRY, "--store", "foreign.db")
    assert foreign.returncode == 2 and "foreign.db" in one_error_line(foreign)
    no_file = run(work, "status", "c1", "--store", "typo.db")
    assert no_file.returncode == 2 and "--store 'typo.db' does not exist" in one_error_line(no_file)
    assert not (work / "typo.db").exists()
    not_there = run(work, "show", "nope", *STORE)
    assert not_there.returncode == 2 and "Run 'nope' does not exist" in one_error_line(not_there)
    both = run(work, "run", "chain.json", *REGISTRY, *STORE, "--executor", "redis")
    assert both.returncode == 2 and "drop --executor redis" in one_error_line(both)
    memory = run(work, "run", "chain.json", *REGISTRY, "--timeout", "3")
    assert memory.returncode == 2 and "--timeout needs --store" in one_error_line(memory)
    exclusive = run(work, "runs", *STORE, "--redis", "redis://localhost:1/0")
    assert exclusive.returncode == 2 and "not allowed with argument" in one_error_line(exclusive)


@pytest.mark.integration
def test_redis_run_timeout_warns_without_a_worker(work: Path, space: list[str]):
    started = time.monotonic()
    result = run(work, "run", "chain.json", *REGISTRY, "--executor", "redis", "--timeout", "7", "--run-id", "lonely",
                 *space)  # fmt: skip
    took = time.monotonic() - started
    assert result.returncode == 124, result.stderr
    assert "warning: no worker has taken run lonely's first job after 5s" in result.stderr
    assert "flowcraft worker --registry module:NAME --redis" in result.stderr
    line = one_error_line(result)
    assert "run lonely did not end within 7s" in line and "flowcraft status lonely --redis" in line
    assert 6.5 < took < 30
    assert json.loads(flowcraft("status", "lonely", *space).stdout)["state"] == "pending"  # it goes on
    listing = json.loads(flowcraft("runs", "--json", *space).stdout)
    assert [(r["run_id"], r["state"]) for r in listing] == [("lonely", "pending")]
    taken = run(work, "run", "chain.json", *REGISTRY, "--executor", "redis", "--run-id", "lonely", *space)
    assert taken.returncode == 2 and "already exists" in one_error_line(taken)


@pytest.mark.integration
def test_redis_run_with_a_worker_neither_warns_nor_times_out(work: Path, space: list[str]):
    slow = chain({"id": "a", "type": "step", "data": {"delay": 6}})
    write_json(work / "six.json", slow)
    with running_worker(space, "mynodes:REGISTRY", cwd=work):
        result = run(work, "run", "six.json", *REGISTRY, "--executor", "redis", "--timeout", "30", *space)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    run_id = json.loads(result.stdout)["run_id"]
    listing = json.loads(flowcraft("runs", "--json", "--state", "completed", *space).stdout)
    assert [r["run_id"] for r in listing] == [run_id]
    shown = json.loads(flowcraft("show", run_id, *space).stdout)
    assert shown["state"] == "completed" and shown["context"] == {"steps": ["a"]}
