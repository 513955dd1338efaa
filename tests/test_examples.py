"""Every example runs offline as a subprocess and prints what its README promises."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCAL_LLM = "LLM: local deterministic stand-in"


def run_example(*args: str, cwd: Path = ROOT) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWCRAFT_LLM_")}
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_every_example_directory_has_a_readme_and_main_and_is_tested():
    tested = {"pipeline", "agent", "batch", "moderation", "retrieval", "durable", "approval", "tally"}
    for directory in (ROOT / "examples").iterdir():
        if directory.is_dir() and not directory.name.startswith(("_", ".")) and directory.name != "__pycache__":
            assert (directory / "README.md").is_file(), directory
            if directory.name != "distributed":  # owned and tested by the distributed suite
                assert (directory / "main.py").is_file(), directory
                assert directory.name in tested, f"add a test for examples/{directory.name}"


def test_quickstart():
    assert run_example("examples/quickstart.py")


def test_pipeline(tmp_path: Path):
    out = run_example("examples/pipeline/main.py", "--out", str(tmp_path))
    assert LOCAL_LLM in out
    for step in ("Load", "Clean", "Analyze", "Summarize", "WriteReport"):
        assert f"  {step}" in out
    assert "action: written" in out
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# Report: Urban Beekeeping Takes Off")
    assert "202 words, 13 sentences, 5 paragraphs" in report
    assert "Rooftop hives have become a familiar sight in many cities." in report


def test_pipeline_on_a_missing_file_fails_after_retries(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWCRAFT_LLM_")}
    result = subprocess.run(
        [sys.executable, "examples/pipeline/main.py", str(tmp_path / "nope.txt")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "WorkflowError" in result.stderr and "FileNotFoundError" in result.stderr


def test_agent_loops_search_then_answers_with_sources():
    out = run_example("examples/agent/main.py")
    assert LOCAL_LLM in out
    assert out.count("decide -> search") == 2  # the loop ran twice
    assert "search 'Fresnel' -> fresnel" in out
    assert "decide -> answer" in out
    assert "invented by Augustin Fresnel in 1822" in out and "[lighthouses]" in out and "[fresnel]" in out


def test_agent_with_nothing_to_find():
    out = run_example("examples/agent/main.py", "What is the capital of Peru?")
    assert "-> nothing new" in out
    assert "answer: I could not find anything about that in the corpus." in out


def test_batch_respects_the_concurrency_limit_and_reports_failures():
    out = run_example("examples/batch/main.py", "--concurrency", "4")
    assert "processed 40 files" in out
    assert "(at most 4 at once, limit 4)" in out
    assert "totals: 600 lines, 5900 words; largest: doc039.txt" in out
    assert "failed: broken.txt: IsADirectoryError" in out


def test_tally_keeps_every_parallel_score_with_atomic_updates():
    out = run_example("examples/tally/main.py")
    assert "validate: [parallel-lost-update] 'ada' and 'grace' both read 'score'" in out
    assert "in memory:          score 14" in out
    assert "durable, atomic:    score 14" in out
    assert "durable, careless:  score 14" not in out
    assert "notes: 4, tags: ['good', 'reviewed', 'weak']" in out


def test_moderation_programmatic():
    out = run_example("examples/moderation/main.py")
    assert LOCAL_LLM in out
    assert "triage: approve -> decision: published" in out
    assert "triage: review -> decision: publish_redacted" in out
    assert "reviewed by" in out
    assert "triage: reject -> decision: rejected" in out
    assert "Hi cy, your post was not published" in out


@pytest.mark.parametrize(
    ("text", "decision"),
    [
        ("Lovely photos from the hike", "published"),
        ("Mail me at someone@example.com", "publish_redacted"),
        ("you idiot, shut up, loser", "rejected"),
    ],
)
def test_moderation_through_the_cli(text: str, decision: str):
    context = json.dumps({"post": {"author": "dana", "text": text}})
    out = run_example(
        "-m", "flowcraft", "run", "examples/moderation/graph.json",
        "--registry", "examples.moderation.nodes:BUILDER", "--context", context, "--progress", "none",
    )  # fmt: skip
    result = json.loads(out)
    assert result["action"] == "default"
    assert result["context"]["decision"] == decision
    assert result["context"]["notification"].startswith("Hi dana, ")


def test_retrieval_answers_with_citations_and_branches_on_no_match():
    out = run_example("examples/retrieval/main.py")
    assert LOCAL_LLM in out
    assert "nodes#2" in out.splitlines()[2]  # best hit first
    assert "`exec_fallback` runs with the last error" in out and "[nodes#2]" in out
    out = run_example("examples/retrieval/main.py", "How do I cancel a run?", "-k", "2")
    assert "[cancellation#1]" in out
    out = run_example("examples/retrieval/main.py", "zebra quantum")
    assert "answer: No document matches the question." in out


def test_llm_client_uses_an_openai_compatible_endpoint_when_configured():
    # A real HTTP server on loopback speaking the chat-completions protocol.
    code = r"""
import asyncio, json, os, sys, threading
from http.server import BaseHTTPRequestHandler, HTTPServer
sys.path.insert(0, os.getcwd())

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/v1/chat/completions", self.path
        assert self.headers["Authorization"] == "Bearer k3y"
        reply = {"choices": [{"message": {"content": f"echo {body['model']}: {body['messages'][-1]['content']}"}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
os.environ.update(FLOWCRAFT_LLM_BASE_URL=f"http://127.0.0.1:{server.server_port}/v1",
                  FLOWCRAFT_LLM_API_KEY="k3y", FLOWCRAFT_LLM_MODEL="tiny")
from examples._shared.llm import LLMError, OpenAICompatibleClient, default_client
client = default_client()
print(client.name)
print(asyncio.run(client.complete("hello", local=lambda: "unused")))
dead = OpenAICompatibleClient("http://127.0.0.1:1/v1", None, "m", timeout=5)
try:
    asyncio.run(dead.complete("x", local=lambda: ""))
except LLMError as error:
    print("error:", error)
server.shutdown()
"""
    out = run_example("-c", code)
    assert "tiny at http://127.0.0.1:" in out
    assert "echo tiny: hello" in out
    assert "error: LLM endpoint http://127.0.0.1:1/v1 failed" in out


def _durable(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, str(ROOT / "examples/durable/main.py"), "--store", "runs.db", *args]
    return subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop_at(proc: subprocess.Popen[str], line: str, sig: int) -> str:
    assert proc.stdout is not None
    seen = ""
    while line not in seen:
        got = proc.stdout.readline()
        assert got, f"the example ended before {line!r}: {seen}"
        seen += got
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    return seen + out


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_durable_example_killed_midway_finishes_where_it_stopped(tmp_path: Path, sig: int):
    first = _durable(tmp_path, "--delay", "0.5")
    try:
        before = _stop_at(first, "step 4/6 charge ...", sig)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert "step 3/6 reserve done" in before and "completed" not in before
    if sig == signal.SIGINT:
        assert first.returncode == 130 and "interrupted: run the same command again" in before
    else:
        assert first.returncode == -9
    after = run_example("examples/durable/main.py", "--store", str(tmp_path / "runs.db"), "--delay", "0.05")
    assert "run order-A-1001 was interrupted: going on from its last commit" in after
    assert "step 1/6" not in after and "step 3/6" not in after  # committed steps do not run again
    assert "step 6/6 notify done" in after
    assert "run order-A-1001 completed: fetch, validate, reserve, charge, ship, notify" in after
    ledger = json.loads((tmp_path / "runs.ledger.json").read_text())
    assert ledger == {"order-A-1001:charge:1": 42.0}  # one payment
    again = run_example("examples/durable/main.py", "--store", str(tmp_path / "runs.db"))
    assert "found in" in again and "it already ended (completed)" in again and "step" not in again.split("\n")[1]


def _approval(tmp_path: Path, *args: str) -> str:
    """One command of the approval example, in its own process, on a store in ``tmp_path``."""
    return run_example(str(ROOT / "examples/approval/main.py"), *args, cwd=tmp_path)


def _started(out: str) -> str:
    found = re.search(r"^run (\S+) is waiting for a person: wait review#1 \(approve, reject, escalate\)$", out, re.M)
    assert found, out
    return found.group(1)


def test_approval_example_pauses_then_another_process_approves(tmp_path: Path):
    started = _approval(tmp_path, "start")
    run_id = _started(started)
    assert LOCAL_LLM in started and "(in 24h)" in started
    assert "  draft:    Dear Ana, we are sorry about the double charge on order #1042" in started
    assert f"python examples/approval/main.py approve {run_id}" in started
    assert (tmp_path / "approval-example.db").is_file()  # the default store, in the current directory
    assert f"run {run_id}: awaiting" in _approval(tmp_path, "show", run_id)
    approved = _approval(tmp_path, "approve", run_id, "--by", "lee")
    assert f"run {run_id}: review#1 resumed with 'approve' by lee; going on in this process" in approved
    assert (
        f"run {run_id} completed: reply sent to ana.ruiz@example.com (approved by lee; message id {run_id}:send:1)"
        in (approved)
    )
    again = _approval(tmp_path, "reject", run_id)
    assert "not waiting for a person any more (completed)" in again and "reply sent" in again

    rejected = _started(_approval(tmp_path, "--store", "other.db", "start", "--run-id", "t-2"))
    out = _approval(tmp_path, "reject", rejected, "--by", "kim", "--note", "too vague", "--store", "other.db")
    assert "run t-2 completed: draft discarded (rejected by kim: too vague)" in out


def test_approval_example_escalates_when_nobody_answers_in_time(tmp_path: Path):
    started = _approval(tmp_path, "start", "--timeout", "1s")
    run_id = _started(started)
    assert "if nobody answers, it escalates by itself at" in started
    waited = _approval(tmp_path, "wait", run_id)  # a new process: the timer fires there
    assert f"run {run_id} completed: escalated to support-lead (no answer within 1s)" in waited
    late = _approval(tmp_path, "approve", run_id)
    assert "not waiting for a person any more (completed)" in late and "escalated to support-lead" in late


def test_approval_graph_through_the_command_line(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWCRAFT_LLM_")}
    env["PYTHONPATH"] = str(ROOT)
    ticket = {"customer": "Ana Ruiz", "email": "ana@example.com", "subject": "late parcel", "message": "Where is it?"}
    common = ("--store", str(tmp_path / "runs.db"), "--progress", "none")

    def flowcraft(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "flowcraft", *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    paused = flowcraft(
        "run", "examples/approval/graph.json", "--registry", "examples.approval.nodes:REGISTRY",
        "--run-id", "t-1", "--context", json.dumps({"ticket": ticket}), *common,
    )  # fmt: skip
    assert paused.returncode == 4, paused.stderr
    (wait,) = json.loads(paused.stdout)["waits"]
    assert wait["id"] == "review#1" and wait["actions"] == ["approve", "reject", "escalate"]
    assert wait["request"]["draft"].startswith("Dear Ana, we are sorry about the late parcel")
    done = flowcraft("resume", "t-1", "review#1", "--value", '{"by": "lee"}', "--action", "approve", *common)
    assert done.returncode == 0, done.stderr
    context = json.loads(done.stdout)["context"]
    assert context["outcome"] == "sent" and context["sent"] == {"to": "ana@example.com", "message_id": "t-1:send:1"}
