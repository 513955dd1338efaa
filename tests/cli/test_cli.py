"""The `flowcraft` command: run, validate, viz and every kind of bad input, through subprocesses."""

from __future__ import annotations

import io
import json
import os
import stat
import textwrap
from pathlib import Path

import pytest

from flowcraft import DEFAULT_ACTION, NodeFailed, NodeFinished, NodeStarted, RetryAttempt, RunFinished, __version__
from flowcraft.cli import build_parser, main
from flowcraft.cli.progress import ProgressDisplay

from .helpers import MODERATION, ROOT, flowcraft, one_error_line, write_json

REGISTRY = "examples.moderation.nodes:BUILDER"

NODES_MODULE = textwrap.dedent(
    """
    from flowcraft import Node

    class Add(Node):
        def __init__(self, data=None, **_):
            super().__init__()
            self.amount = (data or {}).get("amount", 1)

        async def prep(self, args):
            return await args.ctx.get("n", 0)

        def exec(self, args):
            return args.prep_res + self.amount * args.params.get("factor", 1)

        async def post(self, args):
            await args.ctx.set("n", args.exec_res)
            return "big" if args.exec_res > 10 else None

    class Boom(Node):
        def __init__(self, data=None, **_):
            super().__init__()

        def exec(self, args):
            raise RuntimeError("the disk is on fire")

    REGISTRY = {"add": Add, "boom": Boom}
    NOT_A_REGISTRY = 42
    BAD_ENTRY = {"add": "not a class"}

    def make_registry():
        return REGISTRY
    """
)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "mynodes.py").write_text(NODES_MODULE, encoding="utf-8")
    write_json(
        tmp_path / "graph.json",
        {
            "nodes": [{"id": "one", "type": "add"}, {"id": "two", "type": "add", "data": {"amount": 5}}],
            "edges": [{"source": "one", "target": "two"}],
        },
    )
    write_json(
        tmp_path / "failing.json",
        {
            "nodes": [{"id": "one", "type": "add"}, {"id": "fire", "type": "boom"}],
            "edges": [{"source": "one", "target": "fire"}],
        },
    )
    return tmp_path


# ---- run -------------------------------------------------------------------------------------


def test_run_moderation_example_prints_progress_and_result():
    context = {"post": {"author": "dana", "text": "Reach me at dana@example.com"}}
    result = flowcraft("run", str(MODERATION), "--registry", REGISTRY, "--context", json.dumps(context))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["action"] == "default"
    assert out["context"]["decision"] == "publish_redacted"
    assert out["context"]["review_outcome"]["text"] == "Reach me at [email]"
    assert "local deterministic stand-in" in out["context"]["llm"]
    # not a terminal: plain progress lines on stderr, structural nodes left out
    assert "started  ingest (Ingest)" in result.stderr
    assert "finished triage -> review" in result.stderr
    assert "started  review:summarize" in result.stderr
    assert "parallel_container" not in result.stderr
    assert "run finished -> default" in result.stderr


def test_run_with_context_file_params_and_registry_relative_to_cwd(workdir: Path):
    write_json(workdir / "ctx.json", {"n": 1})
    result = flowcraft(
        "run", "graph.json", "--registry", "mynodes:REGISTRY", "--context", "@ctx.json",
        "--param", "factor=2", "--progress", "none", cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"action": "big", "context": {"n": 13}}
    assert result.stderr == ""


def test_registry_may_be_a_factory_function(workdir: Path):
    result = flowcraft("run", "graph.json", "--registry", "mynodes:make_registry", "--progress", "none", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["context"] == {"n": 6}


def test_failed_run_exits_1_with_one_line_and_the_partial_context(workdir: Path):
    result = flowcraft("run", "failing.json", "--registry", "mynodes:REGISTRY", cwd=workdir)
    assert result.returncode == 1
    line = one_error_line(result)
    assert "run failed" in line and "'fire'" in line and "the disk is on fire" in line
    out = json.loads(result.stdout)
    assert out["error"]["node"] == "fire" and out["error"]["phase"] == "exec"
    assert out["context"] == {"n": 1}
    assert "FAILED   fire in exec: RuntimeError: the disk is on fire" in result.stderr


def test_debug_shows_the_traceback(workdir: Path):
    result = flowcraft("--debug", "run", "failing.json", "--registry", "mynodes:REGISTRY", cwd=workdir)
    assert result.returncode == 1
    assert "Traceback" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--registry", "nosuchmodule:REGISTRY"], r"no module named 'nosuchmodule' \(run from the directory"),
        (["--registry", "mynodes:MISSING"], r"module 'mynodes' has no attribute 'MISSING'"),
        (["--registry", "mynodes"], r"must look like package.module:NAME"),
        (["--registry", "mynodes:NOT_A_REGISTRY"], r"is a int, not a node registry"),
        (["--registry", "mynodes:BAD_ENTRY"], r"entry 'add' maps to str 'not a class'"),
        (["--registry", "mynodes:REGISTRY", "--context", "{not json"], r"--context is not valid JSON"),
        (["--registry", "mynodes:REGISTRY", "--context", "[1, 2]"], r"--context must be a JSON object"),
        (["--registry", "mynodes:REGISTRY", "--context", "@missing.json"], r"--context file 'missing.json' does not"),
        (["--registry", "mynodes:REGISTRY", "--param", "novalue"], r"--param 'novalue' must look like key=value"),
        (["--registry", "mynodes:REGISTRY", "--detach"], r"--detach needs --executor redis"),
    ],
)
def test_bad_run_input_exits_2_with_one_line(workdir: Path, args: list[str], message: str):
    result = flowcraft("run", "graph.json", *args, cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert __import__("re").search(message, one_error_line(result))
    assert result.stdout == ""


def test_module_that_fails_to_import_is_reported(workdir: Path):
    (workdir / "broken.py").write_text("import not_installed_dependency\n", encoding="utf-8")
    result = flowcraft("run", "graph.json", "--registry", "broken:REGISTRY", cwd=workdir)
    assert result.returncode == 2
    assert "importing 'broken' failed: No module named 'not_installed_dependency'" in one_error_line(result)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"graph file 'graph.json' does not exist"),
        ("{oops", r"graph file 'graph.json' is not valid JSON"),
        ('{"edges": []}', r"graph file 'graph.json' is invalid: nodes: missing"),
        ('{"nodes": [{"id": "a"}]}', r"graph file 'graph.json' is invalid: .*nodes\[0\]\.type"),
        (
            '{"nodes": [{"id": "a", "type": "add"}, {"id": "b", "type": "nope"}]}',
            r"graph file 'graph.json' is invalid: .*'nope'.*flowcraft validate",
        ),
    ],
)
def test_unreadable_or_invalid_graph_exits_2(tmp_path: Path, workdir: Path, content: str | None, message: str):
    target = tmp_path / "case"
    target.mkdir()
    (target / "mynodes.py").write_text(NODES_MODULE, encoding="utf-8")
    if content is not None:
        (target / "graph.json").write_text(content, encoding="utf-8")
    result = flowcraft("run", "graph.json", "--registry", "mynodes:REGISTRY", cwd=target)
    assert result.returncode == 2
    assert __import__("re").search(message, one_error_line(result))


def test_graph_that_is_not_text(workdir: Path):
    (workdir / "graph.json").write_bytes(b"\xff\xfe\x00binary")
    result = flowcraft("run", "graph.json", "--registry", "mynodes:REGISTRY", cwd=workdir)
    assert result.returncode == 2
    assert "cannot read graph file 'graph.json'" in one_error_line(result)


def test_graph_path_that_is_a_directory(workdir: Path):
    result = flowcraft("run", ".", "--registry", "mynodes:REGISTRY", cwd=workdir)
    assert result.returncode == 2
    assert "graph file '.' is a directory" in one_error_line(result)


def test_redis_unreachable_exits_3(workdir: Path):
    result = flowcraft(
        "run", "graph.json", "--registry", "mynodes:REGISTRY", "--executor", "redis",
        "--redis", "redis://:secret@127.0.0.1:1/0", cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 3
    line = one_error_line(result)
    assert "cannot use Redis at redis://***@127.0.0.1:1/0" in line
    assert "secret" not in result.stderr
    for command in (["status", "abc"], ["cancel", "abc"]):
        result = flowcraft(*command, "--redis", "redis://127.0.0.1:1/0")
        assert result.returncode == 3
        assert "cannot use Redis at redis://127.0.0.1:1/0" in one_error_line(result)


def test_usage_errors_exit_2():
    result = flowcraft()
    assert result.returncode == 2
    assert "a command is required" in one_error_line(result)
    result = flowcraft("run", "graph.json")
    assert result.returncode == 2
    assert "--registry" in one_error_line(result)
    result = flowcraft("viz", "graph.json", "--format", "gif")
    assert result.returncode == 2
    assert "invalid choice: 'gif'" in one_error_line(result)


def test_help_lists_commands_and_exit_codes():
    result = flowcraft("--help")
    assert result.returncode == 0
    for word in ("run", "validate", "viz", "worker", "status", "cancel", "exit codes"):
        assert word in result.stdout


def test_worker_help_has_a_flowcraft_usage_line_and_help_for_every_option():
    result = flowcraft("worker", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: flowcraft worker ")
    assert "flowcraft.distributed" not in result.stdout
    subcommands = next(a for a in build_parser()._actions if a.dest == "command")
    worker = subcommands.choices["worker"]  # type: ignore[index]
    options = {a.option_strings[-1]: a.help for a in worker._actions if a.option_strings}
    for option in ("--registry", "--redis", "--queue", "--prefix", "--concurrency", "--dependencies",
                   "--middleware", "--lock-duration", "--stalled-interval", "--reconcile-interval", "--unknown-type-grace",
                   "--shutdown-grace", "--max-connections", "--cluster", "--queue-shards",
                   "--log-level"):  # fmt: skip
        assert options.get(option), f"worker {option} has no help text"
        assert option in result.stdout


def test_main_in_process(workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.chdir(workdir)
    monkeypatch.syspath_prepend(str(workdir))
    assert main(["run", "graph.json", "--registry", "mynodes:REGISTRY", "--progress", "plain"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["context"] == {"n": 6}
    assert "finished two -> default" in captured.err
    assert main(["validate", "graph.json", "--registry", "mynodes:REGISTRY"]) == 0
    assert main(["viz", "graph.json", "--format", "dot"]) == 0
    assert '"one" -> "two";' in capsys.readouterr().out
    assert build_parser().prog == "flowcraft"


# ---- progress display ------------------------------------------------------------------------


def _event(cls, **fields):
    return cls(run_id="r", time=0.0, **fields)


def test_live_progress_redraws_one_line():
    stream = io.StringIO()
    display = ProgressDisplay(stream, live=True, node_ids=["a", "b", "c"])
    display(_event(NodeStarted, node_id="a", node_name="A"))
    display(_event(NodeStarted, node_id="b", node_name="B"))
    display(_event(NodeStarted, node_id="__internal", node_name="X"))  # not a user node: ignored
    assert display.status_line().startswith("0 done of 3 · 2 running · 0 failed")
    assert display.status_line().endswith("[a, b]")
    display(_event(NodeFinished, node_id="a", node_name="A", action=DEFAULT_ACTION, duration=0.1))
    display(_event(RetryAttempt, node_id="b", node_name="B", attempt=1, max_attempts=2, error=ValueError("x"), wait=0))
    display(_event(NodeFailed, node_id="b", node_name="B", error=ValueError("bad"), phase="exec", duration=0.1))
    assert display.status_line().startswith("1 done of 3 · 0 running · 1 failed")
    display(_event(RunFinished, action="ok", duration=0.5))
    text = stream.getvalue()
    assert "\n" not in text.rstrip("\n")  # one line redrawn in place with carriage returns
    assert text.count("\r") >= 5
    assert text.endswith("run finished -> ok in 0.50s: 1 node done, 1 failed\n")


def test_plain_progress_writes_lines():
    stream = io.StringIO()
    display = ProgressDisplay(stream, live=False)
    display(_event(NodeStarted, node_id=None, node_name="Anon"))
    display(_event(RetryAttempt, node_id=None, node_name="Anon", attempt=1, max_attempts=3, error=OSError("x"), wait=0))
    display.redraw()  # no-op in plain mode
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("started  Anon (Anon)")
    assert lines[1].endswith("retry    Anon attempt 1/3 failed: OSError: x")


def test_live_progress_through_a_pseudo_terminal(workdir: Path):
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-m", "flowcraft", "run", "graph.json", "--registry", "mynodes:REGISTRY"],
        cwd=workdir, stdout=subprocess.PIPE, stderr=follower, timeout=60,
    )  # fmt: skip
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
        if screen.endswith(b"\n") and b"run finished" in screen:
            break
    os.close(leader)
    text = screen.decode()
    assert proc.returncode == 0, text
    assert "\r" in text and "running" in text
    assert "run finished -> default" in text
    assert "started  one" not in text  # live mode, not plain lines


# ---- validate --------------------------------------------------------------------------------


def test_validate_moderation_graph_is_valid():
    result = flowcraft("validate", str(MODERATION), "--registry", REGISTRY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid (0 error(s), 0 warning(s))" in result.stdout


def test_validate_reports_every_error_and_warning_at_once(workdir: Path):
    write_json(
        workdir / "bad.json",
        {
            "nodes": [
                {"id": "a", "type": "add"},
                {"id": "a", "type": "add"},
                {"id": "b", "type": "nosuch"},
                {"id": "c", "type": "add"},
                {"id": "d", "type": "add"},
            ],
            "edges": [
                {"source": "a", "target": "ghost"},
                {"source": "a", "target": "b", "action": "default"},
                {"source": "c", "target": "d"},
                {"source": "d", "target": "c"},
            ],
        },
    )
    result = flowcraft("validate", "bad.json", "--registry", "mynodes:REGISTRY", cwd=workdir)
    assert result.returncode == 1
    out = result.stdout
    assert "error: [DuplicateNodeId] node 'a': 2 nodes share the id 'a'" in out
    assert "error: [DanglingEdge] node 'ghost'" in out
    assert "error: [UnknownNodeType] node 'b'" in out
    assert "warning: [DefaultActionString]" in out
    assert "warning: [Unreachable] node 'c'" in out and "warning: [Unreachable] node 'd'" in out
    assert "bad.json: invalid (3 error(s), 3 warning(s))" in out

    result = flowcraft("validate", "bad.json", "--json", "--dag", cwd=workdir)
    report = json.loads(result.stdout)
    assert result.returncode == 1 and report["valid"] is False
    types = {issue["type"] for issue in report["errors"]}
    assert types == {"DuplicateNodeId", "DanglingEdge", "CycleDetected"}
    assert "TypesNotChecked" in {issue["type"] for issue in report["warnings"]}


def test_validate_reports_no_start_node_and_builder_errors(workdir: Path):
    write_json(
        workdir / "loop.json", {"nodes": [{"id": "a", "type": "add"}], "edges": [{"source": "a", "target": "a"}]}
    )
    result = flowcraft("validate", "loop.json", cwd=workdir)
    assert result.returncode == 1
    assert "[NoStartNode]" in result.stdout
    write_json(
        workdir / "sub.json",
        {"nodes": [{"id": "s", "type": "subflow", "data": {"workflowId": "missing"}}], "edges": []},
    )
    result = flowcraft("validate", "sub.json", "--sub-workflow-type", "subflow", "--workflows", ".", cwd=workdir)
    assert result.returncode == 1
    assert "[MissingSubWorkflowError] node 's'" in result.stdout


def test_validate_malformed_graph_is_an_error_and_unreadable_is_bad_input(workdir: Path):
    (workdir / "shape.json").write_text('{"nodes": {}}', encoding="utf-8")
    result = flowcraft("validate", "shape.json", cwd=workdir)
    assert result.returncode == 1
    assert "[InvalidGraphError]" in result.stdout
    result = flowcraft("validate", "nope.json", cwd=workdir)
    assert result.returncode == 2
    assert "graph file 'nope.json' does not exist" in one_error_line(result)


def test_validate_with_a_builder_and_cli_options_is_a_usage_error():
    result = flowcraft("validate", str(MODERATION), "--registry", REGISTRY, "--conditional-type", "triage")
    assert result.returncode == 2
    assert "is a configured GraphBuilder" in one_error_line(result)


# ---- viz -------------------------------------------------------------------------------------


def test_viz_mermaid_draws_the_compiled_graph():
    result = flowcraft("viz", str(MODERATION), "--registry", REGISTRY)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("graph TD")
    assert "review:summarize" in out  # the sub-workflow is inlined
    assert "approve" in out and "reject" in out


def test_viz_without_registry_and_raw(workdir: Path):
    result = flowcraft("viz", str(MODERATION), "--format", "dot")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("digraph flowcraft {")
    assert "ingest__parallel_container" in result.stdout and "shape=hexagon" in result.stdout
    assert '"triage" -> "publish" [label="approve"];' in result.stdout
    raw = flowcraft("viz", str(MODERATION), "--format", "dot", "--raw")
    assert "parallel_container" not in raw.stdout
    out = workdir / "graph.mmd"
    result = flowcraft("viz", "graph.json", "--output", str(out), cwd=workdir)
    assert result.returncode == 0 and result.stdout == ""
    assert out.read_text().startswith("graph TD")


def test_viz_svg_without_graphviz_says_how_to_get_it(workdir: Path):
    result = flowcraft("viz", "graph.json", "--format", "svg", cwd=workdir, env={"PATH": str(workdir)})
    assert result.returncode == 3
    assert "needs Graphviz's `dot` command" in one_error_line(result)


def _fake_dot(directory: Path, body: str) -> Path:
    script = directory / "dot"
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return directory


def test_viz_svg_and_png_go_through_graphviz(workdir: Path, tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_dot(bin_dir, 'echo "<svg format=$1>"; cat > /dev/null')
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = flowcraft("viz", "graph.json", "--format", "svg", cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "<svg format=-Tsvg>"
    result = flowcraft("viz", "graph.json", "--format", "png", "-o", "out.png", cwd=workdir, env=env)
    assert result.returncode == 0
    assert (workdir / "out.png").read_text().strip() == "<svg format=-Tpng>"
    _fake_dot(bin_dir, 'echo "Error: syntax error in line 1" >&2; exit 1')
    result = flowcraft("viz", "graph.json", "--format", "svg", cwd=workdir, env=env)
    assert result.returncode == 3
    assert "Graphviz `dot -Tsvg` failed: Error: syntax error in line 1" in one_error_line(result)


def test_viz_invalid_graph(workdir: Path):
    write_json(workdir / "bad.json", {"nodes": [{"id": "a", "type": "x"}], "edges": [{"source": "a", "target": "b"}]})
    result = flowcraft("viz", "bad.json", cwd=workdir)
    assert result.returncode == 2
    assert "run `flowcraft validate bad.json`" in one_error_line(result)
    result = flowcraft("viz", "graph.json", "-o", str(workdir / "no" / "such" / "dir.mmd"), cwd=workdir)
    assert result.returncode == 2
    assert "cannot write --output" in one_error_line(result)


def test_repo_root_constant():
    assert (ROOT / "pyproject.toml").is_file()


def test_version_prints_the_package_version():
    result = flowcraft("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"flowcraft {__version__}\n"
    assert "--version" in flowcraft("--help").stdout


@pytest.mark.parametrize(("done", "text"), [(0, "0 nodes done"), (1, "1 node done"), (2, "2 nodes done")])
def test_summary_line_pluralizes_nodes(done: int, text: str):
    stream = io.StringIO()
    display = ProgressDisplay(stream, live=False, node_ids=["a", "b"])
    for i in range(done):
        display(_event(NodeFinished, node_id="ab"[i], node_name="N", action=DEFAULT_ACTION, duration=0.1))
    display(_event(RunFinished, action=DEFAULT_ACTION, duration=0.2))
    assert f"{text}, 0 failed" in stream.getvalue().splitlines()[-1]


def test_missing_redis_extra_names_the_install_command_once(tmp_path: Path):
    (tmp_path / "bullmq.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'bullmq'\", name='bullmq')\n", encoding="utf-8"
    )
    for args in (["status", "abc"], ["worker", "--registry", "x:Y"]):
        result = flowcraft(*args, env={"PYTHONPATH": str(tmp_path)})
        assert result.returncode == 3
        line = one_error_line(result)
        assert line.count("pip install") == 1 and line.count("extra") == 1, line
        assert "bullmq is missing" in line


# ---- run budgets ------------------------------------------------------------------------------


def test_run_with_max_nodes_stops_the_run_and_exits_1(workdir: Path):
    result = flowcraft(
        "run", "graph.json", "--registry", "mynodes:REGISTRY", "--max-nodes", "1", "--progress", "none", cwd=workdir
    )  # fmt: skip
    assert result.returncode == 1
    line = one_error_line(result)
    assert "run failed" in line and "node_runs used 1 of 1" in line and "'two'" in line
    out = json.loads(result.stdout)
    assert out["error"]["phase"] == "budget" and out["context"] == {"n": 1}


def test_run_within_max_nodes_and_max_seconds_finishes(workdir: Path):
    result = flowcraft(
        "run", "graph.json", "--registry", "mynodes:REGISTRY", "--max-nodes", "2", "--max-seconds", "30",
        "--progress", "none", cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["context"] == {"n": 6}


@pytest.mark.parametrize(
    ("option", "value", "match"), [("--max-nodes", "0", "--max-nodes: Budget.max_node_runs must be > 0"),
                                   ("--max-seconds", "-1", "--max-seconds: Budget.max_seconds must be > 0")]
)  # fmt: skip
def test_bad_budget_options_are_usage_errors(workdir: Path, option: str, value: str, match: str):
    result = flowcraft("run", "graph.json", "--registry", "mynodes:REGISTRY", option, value, cwd=workdir)
    assert result.returncode == 2
    assert match in one_error_line(result)
