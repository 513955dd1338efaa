"""Every row of the exit-code table in docs/cli.md, run.

The table is read from the page: a row without a case here, or a case whose row is gone,
fails, so the documented codes and the real ones cannot drift apart. Redis cases use the
test Redis (`scripts/test` starts one); the missing-extra case hides the redis extra with
a module that fails to import, as an uninstalled one would.
"""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import ROOT, flowcraft, one_error_line, running_worker, write_json

pytestmark = pytest.mark.integration

CLI_PAGE = ROOT / "docs" / "cli.md"

NODES = textwrap.dedent(
    """
    import asyncio
    from flowcraft import Node

    class Add(Node):
        def __init__(self, data=None, **_):
            super().__init__()

        async def post(self, args):
            await args.ctx.set("n", await args.ctx.get("n", 0) + 1)

    class Boom(Node):
        def __init__(self, data=None, **_):
            super().__init__()

        def exec(self, args):
            raise RuntimeError("the disk is on fire")

    class Slow(Node):
        def __init__(self, data=None, **_):
            super().__init__()

        async def exec(self, args):
            await asyncio.sleep(60)

    REGISTRY = {"add": Add, "boom": Boom, "slow": Slow}
    """
)


def documented_rows() -> list[tuple[int, str]]:
    section = CLI_PAGE.read_text(encoding="utf-8").split("## Errors and exit codes", 1)[1].split("\n## ", 1)[0]
    return [(int(code), when.strip()) for code, when in re.findall(r"^\| (\d+) \| (.+?) \|$", section, re.M)]


@dataclasses.dataclass
class Setup:
    """What a case needs: a directory with nodes and graphs, and a private Redis queue and prefix."""

    dir: Path
    space: list[str]

    def run(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return flowcraft(*args, cwd=self.dir, **kwargs)  # type: ignore[arg-type]

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "flowcraft", *args], cwd=self.dir, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip


@pytest.fixture
def setup(tmp_path: Path, space: list[str]) -> Setup:
    (tmp_path / "mynodes.py").write_text(NODES, encoding="utf-8")
    write_json(tmp_path / "ok.json", {"nodes": [{"id": "one", "type": "add"}], "edges": []})
    write_json(
        tmp_path / "failing.json",
        {"nodes": [{"id": "one", "type": "add"}, {"id": "fire", "type": "boom"}],
         "edges": [{"source": "one", "target": "fire"}]},
    )  # fmt: skip
    write_json(tmp_path / "slow.json", {"nodes": [{"id": "slow", "type": "slow"}], "edges": []})
    write_json(
        tmp_path / "dangling.json",
        {"nodes": [{"id": "one", "type": "add"}], "edges": [{"source": "one", "target": "nowhere"}]},
    )
    (tmp_path / "notjson.json").write_text("{oops", encoding="utf-8")
    (tmp_path / "shape.json").write_text('{"nodes": {}}', encoding="utf-8")
    return Setup(tmp_path, space)


def expect(code: int, result: subprocess.CompletedProcess[str], *, error: str | None = None) -> None:
    assert result.returncode == code, (result.args, result.stdout, result.stderr)
    if error is not None:
        assert error in one_error_line(result)


REGISTRY = ("--registry", "mynodes:REGISTRY")
UNREACHABLE = "redis://127.0.0.1:1/0"


def _success(s: Setup, code: int) -> None:
    expect(code, s.run("run", "ok.json", *REGISTRY))
    expect(code, s.run("validate", "ok.json", *REGISTRY))
    with running_worker(s.space, "mynodes:REGISTRY", cwd=s.dir) as worker:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == code


def _run_failed(s: Setup, code: int) -> None:
    expect(code, s.run("run", "failing.json", *REGISTRY), error="the disk is on fire")


def _started_run_id(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.match(r"run (\S+) started", line)
    assert match, line
    return match.group(1)


def _run_cancelled(s: Setup, code: int) -> None:
    store = ("--store", "runs.db")
    for run, where in (
        (("ok.json", "--executor", "redis", *s.space), s.space),  # no worker: the run waits until it is cancelled
        (("slow.json", *store), store),
    ):
        proc = s.popen("run", *run, *REGISTRY, "--progress", "plain")
        try:
            run_id = _started_run_id(proc)
            if "--store" in where:
                assert proc.stderr is not None
                while "started  slow" not in proc.stderr.readline():
                    assert proc.poll() is None
            expect(0, s.run("cancel", run_id, *where))
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == code, err
        assert f"flowcraft: error: run {run_id} cancelled" in err


def _validate_errors(s: Setup, code: int) -> None:
    expect(code, s.run("validate", "dangling.json"))
    expect(code, s.run("validate", "shape.json"))


def _cancel_ended(s: Setup, code: int) -> None:
    run_id = s.run("run", "ok.json", *REGISTRY, "--executor", "redis", "--detach", *s.space).stdout.strip()
    expect(0, s.run("cancel", run_id, *s.space))
    expect(code, s.run("cancel", run_id, *s.space), error="already ended (cancelled)")
    expect(0, s.run("run", "ok.json", *REGISTRY, "--store", "runs.db", "--run-id", "done"))
    expect(code, s.run("cancel", "done", "--store", "runs.db"), error="already ended (completed)")


def _bad_arguments(s: Setup, code: int) -> None:
    expect(code, s.run(), error="a command is required")
    expect(code, s.run("nosuchcommand"), error="invalid choice: 'nosuchcommand'")
    expect(code, s.run("run", "ok.json", "--no-such-option", *REGISTRY), error="unrecognized arguments")
    expect(code, s.run("run", "ok.json"), error="the following arguments are required: --registry")
    expect(code, s.run("worker", "--redis", UNREACHABLE), error="the following arguments are required: --registry")
    expect(code, s.run("worker", *REGISTRY, "--concurrency", "0"), error="--concurrency: must be >= 1")
    expect(code, s.run("viz", "ok.json", "--format", "gif"), error="invalid choice: 'gif'")
    expect(code, s.run("run", "ok.json", *REGISTRY, "--store", "r.db", "--executor", "redis"), error="drop --executor")
    expect(code, s.run("run", "ok.json", *REGISTRY, "--timeout", "5"), error="--timeout needs --store")
    expect(code, s.run("status", "x", "--store", "r.db", "--redis", UNREACHABLE), error="not allowed with argument")


def _bad_objects(s: Setup, code: int) -> None:
    expect(code, s.run("run", "ok.json", "--registry", "nosuch:REGISTRY"), error="no module named 'nosuch'")
    expect(code, s.run("run", "ok.json", "--registry", "mynodes:Add"), error="not a node registry")
    expect(code, s.run("worker", "--registry", "mynodes:NOPE", *s.space), error="has no attribute 'NOPE'")
    expect(code, s.run("worker", *REGISTRY, "--dependencies", "mynodes:REGISTRY", *s.space), error="not a function")
    expect(code, s.run("worker", *REGISTRY, "--middleware", "mynodes:REGISTRY", *s.space), error="is not callable")


def _bad_context_or_params(s: Setup, code: int) -> None:
    expect(code, s.run("run", "ok.json", *REGISTRY, "--context", "{oops"), error="--context is not valid JSON")
    expect(code, s.run("run", "ok.json", *REGISTRY, "--param", "novalue"), error="must look like key=value")


def _unreadable_graph(s: Setup, code: int) -> None:
    for command in ("run", "validate", "viz"):
        expect(code, s.run(command, "missing.json", *REGISTRY), error="graph file 'missing.json' does not exist")
        expect(code, s.run(command, "notjson.json", *REGISTRY), error="is not valid JSON")
    expect(code, s.run("viz", "ok.json", "-o", str(s.dir / "no" / "dir" / "out.mmd")), error="cannot write --output")


def _invalid_graph(s: Setup, code: int) -> None:
    expect(code, s.run("run", "dangling.json", *REGISTRY), error="graph file 'dangling.json' is invalid")
    expect(code, s.run("run", "shape.json", *REGISTRY), error="graph file 'shape.json' is invalid")
    expect(code, s.run("viz", "dangling.json"), error="flowcraft validate dangling.json")


def _run_id_taken(s: Setup, code: int) -> None:
    expect(0, s.run("run", "ok.json", *REGISTRY, "--store", "runs.db", "--run-id", "taken"))
    expect(code, s.run("run", "failing.json", *REGISTRY, "--store", "runs.db", "--run-id", "taken"),
           error="Run 'taken' exists with another graph")  # fmt: skip
    run_id = s.run("run", "ok.json", *REGISTRY, "--executor", "redis", "--detach", *s.space).stdout.strip()
    expect(code, s.run("run", "ok.json", *REGISTRY, "--executor", "redis", "--run-id", run_id, *s.space),
           error="already exists")  # fmt: skip


def _bad_store(s: Setup, code: int) -> None:
    (s.dir / "foreign.db").write_bytes(b"not a database" * 200)
    expect(code, s.run("run", "ok.json", *REGISTRY, "--store", "foreign.db"), error="foreign.db")
    expect(code, s.run("run", "ok.json", *REGISTRY, "--store", "no/such/dir/runs.db"), error="does not exist")
    for command in (("runs",), ("show", "x"), ("status", "x"), ("cancel", "x")):
        expect(code, s.run(*command, "--store", "missing.db"), error="--store 'missing.db' does not exist")


def _unknown_run(s: Setup, code: int) -> None:
    expect(0, s.run("run", "ok.json", *REGISTRY, "--store", "runs.db"))
    for command in ("status", "show", "cancel"):
        expect(code, s.run(command, "no-such-run", *s.space), error="Run 'no-such-run' does not exist")
        expect(code, s.run(command, "no-such-run", "--store", "runs.db"), error="Run 'no-such-run' does not exist")


def _redis_unreachable(s: Setup, code: int) -> None:
    where = f"cannot use Redis at {UNREACHABLE}"
    expect(code, s.run("run", "ok.json", *REGISTRY, "--executor", "redis", "--redis", UNREACHABLE), error=where)
    expect(code, s.run("worker", *REGISTRY, "--redis", UNREACHABLE), error=where)
    for command in (("status", "abc"), ("cancel", "abc"), ("show", "abc"), ("runs",)):
        expect(code, s.run(*command, "--redis", UNREACHABLE), error=where)


def _graphviz(s: Setup, code: int) -> None:
    no_dot = {"PATH": str(s.dir)}
    expect(code, s.run("viz", "ok.json", "--format", "svg", env=no_dot), error="needs Graphviz's `dot` command")
    bin_dir = s.dir / "bin"
    bin_dir.mkdir()
    (bin_dir / "dot").write_text("#!/bin/sh\necho 'Error: broken' >&2\nexit 1\n", encoding="utf-8")
    (bin_dir / "dot").chmod(0o755)
    expect(code, s.run("viz", "ok.json", "--format", "png", "-o", "x.png", env={"PATH": str(bin_dir)}), error="failed")


def _extra_missing(s: Setup, code: int) -> None:
    hidden = s.dir / "hidden"
    hidden.mkdir()
    (hidden / "bullmq.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'bullmq'\", name='bullmq')\n", encoding="utf-8"
    )
    env = {"PYTHONPATH": str(hidden)}
    hint = "pip install 'flowcraft-py[redis]'"
    for args in (
        ("run", "ok.json", *REGISTRY, "--executor", "redis"),
        ("worker", *REGISTRY),
        ("status", "abc"),
        ("cancel", "abc"),
        ("show", "abc"),
        ("runs",),
    ):
        result = s.run(*args, *s.space, env=env)
        expect(code, result, error=hint)


def _timed_out(s: Setup, code: int) -> None:
    expect(code, s.run("run", "ok.json", *REGISTRY, "--executor", "redis", "--timeout", "1", *s.space),
           error="did not end within 1s (")  # fmt: skip
    expect(code, s.run("run", "slow.json", *REGISTRY, "--store", "runs.db", "--run-id", "t", "--timeout", "1"),
           error="--run-id t` goes on from its last commit")  # fmt: skip


def _resume_refused(s: Setup, code: int) -> None:
    write_json(s.dir / "waiting.json", WAITING)
    s.run("run", "waiting.json", *REGISTRY, "--store", "runs.db", "--run-id", "q")
    store = ("--store", "runs.db")
    expect(code, s.run("resume", "q", "ask#9", *store), error="has no wait 'ask#9'")
    expect(code, s.run("resume", "q", "ask#1", "--action", "maybe", *store), error="not 'maybe'")
    expect(code, s.run("resume", "q", "ask#1", "--value", "{", "--action", "yes", *store), error="not JSON")
    expect(4, s.run("resume", "q", "ask#1", "--action", "yes", *store))
    expect(code, s.run("resume", "q", "ask#1", "--action", "no", *store), error="resolved already")
    expect(0, s.run("resume", "q", "again#1", *store))
    expect(code, s.run("resume", "q", "again#1", *store), error="has stopped (completed)")


WAITING = {
    "nodes": [
        {"id": "one", "type": "add"},
        {"id": "ask", "type": "wait", "data": {"actions": ["yes", "no"]}},
        {"id": "again", "type": "wait"},
    ],
    "edges": [{"source": "one", "target": "ask"}, {"source": "ask", "target": "again", "action": "yes"}],
}


def _paused(s: Setup, code: int) -> None:
    write_json(s.dir / "waiting.json", WAITING)
    expect(code, s.run("run", "waiting.json", *REGISTRY, "--store", "runs.db", "--run-id", "p"))
    expect(code, s.run("resume", "p", "ask#1", "--action", "yes", "--store", "runs.db"))  # pauses at "again"


def _interrupted(s: Setup, code: int) -> None:
    for durable in (False, True):
        store = ("--store", "runs.db", "--run-id", "stopped") if durable else ()
        proc = s.popen("run", "slow.json", *REGISTRY, "--progress", "plain", *store)
        try:
            assert proc.stderr is not None
            deadline = time.monotonic() + 30
            while "started  slow" not in proc.stderr.readline():
                assert time.monotonic() < deadline and proc.poll() is None, "the run did not start"
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == code, err
        assert "flowcraft: interrupted" in err
        if durable:
            assert "run stopped is kept in runs.db: `flowcraft run slow.json --store runs.db --run-id stopped`" in err


_ROWS = {
    "success:": _success,
    "`run`: the workflow failed": _run_failed,
    "`run --executor redis` or `run --store`: the run was cancelled": _run_cancelled,
    "`validate`: the graph has errors": _validate_errors,
    "`cancel`: the run already ended": _cancel_ended,
    "bad arguments:": _bad_arguments,
    "`--registry`, `--dependencies` or `--middleware`": _bad_objects,
    "`--context` or `--param` is malformed": _bad_context_or_params,
    "the graph file is missing, unreadable or not JSON": _unreadable_graph,
    "`run`, `viz`: the graph is invalid": _invalid_graph,
    "`run --run-id`: a run with that id exists": _run_id_taken,
    "`--store`: the file is not a Flowcraft run store": _bad_store,
    "`status`, `show`, `cancel`: no run with that id": _unknown_run,
    "Redis is unreachable": _redis_unreachable,
    "Graphviz's `dot` is missing or fails": _graphviz,
    "the `redis` extra is not installed": _extra_missing,
    "`run --store` or `resume`: the run paused": _paused,
    "`resume`: no such wait": _resume_refused,
    "`run --timeout S`": _timed_out,
    "interrupted": _interrupted,
}


def _check_for(when: str) -> Callable[[Setup, int], None] | None:
    found = [check for start, check in _ROWS.items() if when.startswith(start)]
    return found[0] if len(found) == 1 else None


def test_the_table_has_one_row_per_case_and_every_case_a_row():
    rows = documented_rows()
    assert rows, "docs/cli.md has no exit-code table"
    assert [when for _, when in rows if _check_for(when) is None] == [], "rows without a case in this test"
    used = {_check_for(when) for _, when in rows}
    assert [start for start, check in _ROWS.items() if check not in used] == [], "cases whose row is gone"
    assert {code for code, _ in rows} == {0, 1, 2, 3, 4, 124, 130}


@pytest.mark.parametrize(("code", "when"), documented_rows(), ids=lambda v: str(v)[:40])
def test_documented_exit_code(setup: Setup, code: int, when: str):
    check = _check_for(when)
    assert check is not None, f"no case for the row {code} | {when}"
    check(setup, code)


def test_the_readme_points_to_the_one_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/cli.md#errors-and-exit-codes" in readme
    assert not re.search(r"exit codes?:? *\d", readme), "README lists exit codes of its own: link to the table"
