"""`flowcraft worker / run --executor redis / status / cancel` against a real Redis.

Fails (never skips) when Redis is unreachable; `scripts/test` starts one.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from .helpers import MODERATION, ROOT, flowcraft, one_error_line

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("FLOWCRAFT_TEST_REDIS_URL", "redis://127.0.0.1:6399/0")


@pytest.fixture
def space() -> Iterator[list[str]]:
    import redis  # the redis extra is part of the test install: a missing one fails here

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"these tests need a real Redis at {REDIS_URL} (set FLOWCRAFT_TEST_REDIS_URL): {error}")
    tag = uuid.uuid4().hex[:10]
    options = ["--redis", REDIS_URL, "--queue", f"cliq{tag}", "--prefix", f"clip{tag}"]
    yield options
    keys = list(client.scan_iter(match=f"clip{tag}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def worker(space: list[str]) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowcraft", "worker", "--registry", "examples.moderation.nodes:REGISTRY", *space],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    seen = ""
    while "worker ready" not in seen:
        line = proc.stdout.readline()
        assert line and time.monotonic() < deadline, f"the worker did not start: {seen}"
        seen += line
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()


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
    assert result.returncode != 0
    assert "nosuch.module" in result.stderr
