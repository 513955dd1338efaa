"""Waits and timers across real processes: a run paused on a wait survives `kill -9`
of its process and is resumed from a new one, ending as its in-memory equivalent with the
value injected; a real 2-second sleep goes on after its process is killed and a new
executor is opened on the file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "src")])}
    return subprocess.Popen(
        [sys.executable, str(HERE / "wait_child.py"), *args], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def first_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.stderr else ""
    found: dict[str, Any] = json.loads(line)
    return found


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)  # reaps it and closes its pipes
    assert proc.returncode == -signal.SIGKILL


def finish(*args: str) -> dict[str, Any]:
    proc = spawn(*args)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    found: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return found


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_kill_9_while_awaiting_then_resume_from_a_new_process(tmp_path: Path) -> None:
    import asyncio

    import wait_nodes

    from flowcraft import Flow, Node, TypedContext

    db = str(tmp_path / "runs.db")
    starter = spawn("start", db, "r", "wait_nodes:make_approval")
    assert first_line(starter) == {"waits": ["approve#1"]}
    kill(starter)

    resumed = finish("resume", db, "r", "approve#1", '{"by": "ana"}', "approve")

    class Injected(Node):  # the in-memory equivalent: the wait replaced by its value and action
        async def post(self, args: Any) -> Any:
            await args.ctx.set("review", {"by": "ana"})
            return "approve"

    draft = wait_nodes.Draft()
    draft.next(Injected()).next(wait_nodes.Record("outcome", "sent"), "approve")
    ctx = TypedContext()
    action = asyncio.run(Flow(draft).run(ctx))
    assert resumed == {"action": action, "context": ctx.to_dict()}


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_real_sleep_goes_on_after_its_process_is_killed(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    sleeper = spawn("start", db, "nap", "wait_nodes:make_short_nap")
    parked = first_line(sleeper)
    assert parked["state"] == "awaiting"
    kill(sleeper)

    done = finish("finish", db, "nap")
    assert done["action"] == "finished" and done["context"] == {"started": True, "woke": True}
    assert done["at"] - parked["at"] >= 1.4  # the 2 s nap was kept, not skipped (it parked before "at")


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_parallel_branch_paused_then_killed_resumes_from_new_processes(tmp_path: Path) -> None:
    import asyncio

    import wait_nodes

    from flowcraft import TypedContext
    from flowcraft.graph import GraphBuilder

    db = str(tmp_path / "runs.db")
    starter = spawn("start", db, "p", "wait_nodes:make_parallel_waits")
    assert first_line(starter) == {"waits": ["w1#1", "w2#1"]}  # a and b ran, the join holds
    kill(starter)

    finish("resume", db, "p", "w2#1", "2", "ok")  # each resume from a process of its own
    resumed = finish("resume", db, "p", "w1#1", '"x"', "default")

    reference = GraphBuilder(wait_nodes.REGISTRY).build(wait_nodes.injected({"w1": "x", "w2": 2})).flow
    ctx = TypedContext()
    asyncio.run(reference.run(ctx))
    assert resumed["context"] == ctx.to_dict()
    assert resumed["context"]["collected"] == 1
