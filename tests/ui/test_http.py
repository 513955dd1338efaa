"""The dashboard over plain HTTP: pages, bad input (each a clear page, the run unharmed),
the token, CSRF and Host checks, the live stream, and `flowcraft ui` itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from flowcraft.cli import main
from flowcraft.ui import Guard, SqliteBackend, is_loopback
from flowcraft.ui.graph import diagram_of
from flowcraft.ui.views import json_tree, script_json

from .helpers import REGISTRY_REF, get, park_runs, served

pytestmark = pytest.mark.timeout(60)


class Session:
    """A browser-like client: keeps cookies, reads the CSRF token from the last page."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def _headers(self) -> dict[str, str]:
        return {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    def _keep(self, headers: Any) -> None:
        for value in headers.get_all("set-cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]

    def request(self, path: str, form: dict[str, str] | None = None) -> tuple[int, str, Any]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        headers = self._headers()
        if data is not None:
            headers["content-type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.base + path, data=data, headers=headers)
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=10) as response:
                status, body, found = response.status, response.read().decode(), response.headers
        except urllib.error.HTTPError as error:
            with error:
                status, body, found = error.code, error.read().decode(), error.headers
        self._keep(found)
        match = re.search(r'name="csrf" value="([^"]+)"', body)
        if match:
            self.csrf = match.group(1)
        return status, body, found


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


@pytest.fixture
def parked(store: str) -> str:
    park_runs(store, ["r1", "r2"])
    return store


def test_list_filters_searches_and_pages(store: str) -> None:
    park_runs(store, [f"run-{n:03d}" for n in range(55)])
    with served(SqliteBackend(store)) as server:
        status, body, _ = get(server.url + "/")
        assert status == 200
        assert body.count('<tr data-run="') == 50
        assert 'data-run="run-054"' in body and 'data-run="run-005"' in body and "page 1 of 2" in body
        status, body, _ = get(server.url + "/?page=2")
        assert body.count('<tr data-run="') == 5 and 'data-run="run-004"' in body
        _, body, _ = get(server.url + "/?q=run-01&state=awaiting")
        assert body.count('<tr data-run="') == 10
        _, body, _ = get(server.url + "/?state=completed")
        assert "No runs in state completed" in body
        _, body, _ = get(server.url + "/?q=%25")  # LIKE wildcards are searched for literally
        assert "No runs" in body


@pytest.mark.parametrize(
    ("path", "code", "text"),
    [
        ("/runs/nope", 404, "Run &#39;nope&#39; does not exist"),
        ("/runs/nope/panel", 404, "does not exist"),
        ("/runs/nope/stream", 404, "does not exist"),
        ("/nowhere", 404, "There is no page at /nowhere"),
        ("/?state=sleeping", 400, "No run state"),
        ("/?page=x", 400, "page must be a whole number"),
        ("/?page=0", 400, "page must be 1 or more"),
        ("/?q=" + "x" * 201, 400, "at most 200 characters"),
    ],
)
def test_bad_requests_get_a_clear_page(parked: str, path: str, code: int, text: str) -> None:
    with served(SqliteBackend(parked)) as server:
        status, body, _ = get(server.url + path)
        assert status == code
        assert text in body
        assert "Traceback" not in body


def test_bad_resumes_leave_the_run_unharmed(parked: str) -> None:
    with served(SqliteBackend(parked, registry=REGISTRY_REF)) as server:
        client = Session(server.url)
        status, body, headers = client.request("/runs/r1")
        assert status == 200 and client.csrf
        assert "default-src 'none'" in headers["content-security-policy"]
        key = re.search(r'name="key" value="([^"]+)"', body).group(1)  # type: ignore[union-attr]

        def resume(**fields: str) -> tuple[int, str, Any]:
            form = {"csrf": client.csrf, "wait": "w2#1", "value": "1", "action": "ok", "key": key, **fields}
            return client.request("/runs/r1/resume", form)

        status, body, _ = resume(value="{not json")
        assert status == 400 and "is not JSON" in body and "the wait stays open" in body
        assert "{not json" in body  # kept in the form to correct
        status, body, _ = resume(action="maybe")
        assert status == 400 and "allows the actions ok, no, not &#39;maybe&#39;" in body
        status, body, _ = resume(wait="w9#1")
        assert status == 404 and "has no open wait" in body
        status, body, _ = resume(csrf="forged")
        assert status == 403 and "CSRF" in body
        status, body, _ = client.request("/runs/nope/resume", {"csrf": client.csrf, "wait": "w1#1", "key": "k"})
        assert status == 404
        status, body, _ = resume(key="")
        assert status == 400 and "idempotency key" in body
        # the run is as it was: both waits open
        _, body, _ = client.request("/runs/r1")
        assert 'data-wait="w1#1"' in body and 'data-wait="w2#1"' in body and 'data-state="awaiting"' in body
        # a double submit of one form resumes once
        first = resume(value='"yes"')
        second = resume(value='"yes"')
        assert first[0] == 303 and second[0] in (303, 404)
        _, body, _ = client.request("/runs/r1")
        assert 'data-wait="w2#1"' not in body and 'data-wait="w1#1"' in body
        # a form sent as JSON is refused
        request = urllib.request.Request(server.url + "/runs/r1/cancel", data=b"{}",
                                         headers={"content-type": "application/json"})  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        with refused.value:
            assert refused.value.code == 415


def test_cancel_needs_the_csrf_token_and_reports_an_ended_run(parked: str) -> None:
    with served(SqliteBackend(parked)) as server:
        client = Session(server.url)
        client.request("/runs/r2")
        status, body, _ = client.request("/runs/r2/cancel", {})
        assert status == 403
        status, _, headers = client.request("/runs/r2/cancel", {"csrf": client.csrf})
        assert status == 303 and "cancelled=cancelled" in headers["location"]
        status, _, headers = client.request("/runs/r2/cancel", {"csrf": client.csrf})
        assert "already%20ended" in headers["location"]
        status, body, _ = client.request("/runs/gone/cancel", {"csrf": client.csrf})
        assert status == 404


def test_a_store_that_disappears_gives_a_503_page(parked: str) -> None:
    with served(SqliteBackend(parked)) as server:
        assert get(server.url + "/runs/r1")[0] == 200
        for suffix in ("", "-wal", "-shm"):
            Path(parked + suffix).unlink(missing_ok=True)
        for path in ("/", "/runs/r1"):
            status, body, _ = get(server.url + path)
            assert status == 503 and "is gone" in body


def test_the_token_header_cookie_and_host_checks(parked: str) -> None:
    with served(SqliteBackend(parked), Guard("127.0.0.1", "s3cret")) as server:
        status, body, _ = get(server.url + "/")
        assert status == 401 and "access token" in body
        assert get(server.url + "/", {"authorization": "Bearer wrong"})[0] == 401
        assert get(server.url + "/", {"authorization": "Bearer s3cret"})[0] == 200
        assert get(server.url + "/", {"x-flowcraft-token": "s3cret"})[0] == 200
        assert get(server.url + "/", {"cookie": "flowcraft_token=s3cret"})[0] == 200
        assert get(server.url + "/static/ui.css")[0] == 401
    with served(SqliteBackend(parked)) as server:
        status, body, _ = get(server.url + "/", {"host": "evil.example:8600"})
        assert status == 400 and "DNS rebinding" in body
        assert get(server.url + "/", {"host": f"localhost:{server.port}"})[0] == 200


def test_guard_rules() -> None:
    with pytest.raises(ValueError, match="give --token"):
        Guard("0.0.0.0")
    with pytest.raises(ValueError, match="must not be empty"):
        Guard("127.0.0.1", " ")
    assert Guard("0.0.0.0", "t").host_allowed("anything")
    assert is_loopback("::1") and is_loopback("[::1]") and is_loopback("localhost") and not is_loopback("10.0.0.1")
    guard = Guard("127.0.0.1")
    assert guard.csrf_ok("s", guard.csrf_token("s")) and not guard.csrf_ok("s", guard.csrf_token("t"))
    assert not guard.csrf_ok(None, "x") and guard.host_allowed("[::1]:80")


def test_the_live_stream_sends_states_and_ends_with_the_run(parked: str) -> None:
    with served(SqliteBackend(parked)) as server:
        Session(server.url).request("/runs/r1")
        request = urllib.request.Request(server.url + "/runs/r1/stream")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            first = b""
            while b"\n\n" not in first:
                first += response.read1(4096)
        assert b"event: update" in first and b'"w1": "waiting"' in first and b'"final": false' in first
        client = Session(server.url)
        client.request("/runs/r1")
        client.request("/runs/r1/cancel", {"csrf": client.csrf})
        with urllib.request.urlopen(server.url + "/runs/r1/stream", timeout=10) as response:
            text = response.read().decode()  # ends: the run has stopped
        assert '"state": "cancelled"' in text and '"final": true' in text


def test_escaping_of_context_and_script_data() -> None:
    tree = str(json_tree({"a": ["<script>x</script>", {"b": None}], "n": 1.5}))
    assert "<script>" not in tree and "&lt;script&gt;" in tree
    assert "</script>" not in str(script_json({"x": "</script><script>alert(1)</script>"}))
    assert str(json_tree([])) == '<span class="j-lit">[]</span>'


def test_diagrams_of_blueprints_and_factories() -> None:
    diagram = diagram_of('{"nodes": [{"id": "a\\"]; click", "type": "t"}, {"id": "b", "type": "wait"}], '
                         '"edges": [{"source": "a\\"]; click", "target": "b", "action": "go"}]}')  # fmt: skip
    assert diagram is not None and diagram.ids == {'a"]; click': "n0", "b": "n1"}
    assert "#quot;" in diagram.text and 'n0 -- "go" --> n1' in diagram.text
    factory = diagram_of('{"factory": "wait_nodes:make_approval", "shapes": {"approve": "x", "draft": "y"}}')
    assert factory is not None and "--factories" in factory.note and factory.ids == {"approve": "n0", "draft": "n1"}
    drawn = diagram_of('{"factory": "wait_nodes:make_approval", "shapes": {}}', factories=True)
    assert drawn is not None and not drawn.note and "approve" in drawn.ids and '-- "approve" -->' in drawn.text
    broken = diagram_of('{"factory": "no_such_module:f", "shapes": {"x": "1"}}', factories=True)
    assert broken is not None and "could not be loaded" in broken.note
    assert diagram_of(None) is None and diagram_of("not json") is None and diagram_of("[1]") is None


def test_the_ui_command_refuses_a_public_bind_without_a_token(parked: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ui", "--store", parked, "--host", "0.0.0.0"]) == 2
    assert "give --token" in capsys.readouterr().err
    assert main(["ui", "--store", parked + ".missing"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_ui_command_names_the_extra_when_it_is_missing(tmp_path: Path) -> None:
    blocker = tmp_path / "starlette"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('blocked', name='starlette')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "flowcraft", "ui", "--store", "x.db"], capture_output=True,
                          text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 3
    assert "pip install 'flowcraft-py[ui]'" in done.stderr


REDIS_URL = os.environ.get("FLOWCRAFT_TEST_REDIS_URL", "redis://127.0.0.1:6399/0")


@pytest.mark.integration
def test_runs_on_redis_are_listed_shown_and_cancelled() -> None:
    """On Redis: the list, a run page and cancel; no worker runs the run."""
    import asyncio
    import uuid

    import redis

    from flowcraft.distributed import DistributedExecutor
    from flowcraft.ui import RedisBackend

    prefix = f"fcui{uuid.uuid4().hex[:8]}"
    graph = {
        "startNodeId": "a",
        "nodes": [{"id": "a", "type": "step", "data": {}}],
        "edges": [],
        "predecessorCountMap": {"a": 0},
        "originalPredecessorIdMap": {},
    }

    async def start() -> None:
        async with DistributedExecutor(REDIS_URL, prefix=prefix, queue=prefix) as executor:
            await executor.start(graph, {"k": "<i>v</i>"}, run_id="on-redis")

    asyncio.run(start())
    try:
        with served(RedisBackend(REDIS_URL, prefix=prefix, queue=prefix)) as server:
            status, body, _ = get(server.url + "/")
            assert status == 200 and 'data-run="on-redis"' in body and "redis redis://" in body
            status, body, _ = get(server.url + "/runs/on-redis")
            assert status == 200 and "&lt;i&gt;v&lt;/i&gt;" in body and 'id="cancel-form"' in body
            client = Session(server.url)
            client.request("/runs/on-redis")
            status, _, headers = client.request("/runs/on-redis/cancel", {"csrf": client.csrf})
            assert status == 303 and "cancelled=cancelled" in headers["location"]
            assert 'data-state="cancelled"' in get(server.url + "/runs/on-redis")[1]
            assert get(server.url + "/runs/missing")[0] == 404
    finally:
        client_ = redis.Redis.from_url(REDIS_URL)
        keys = list(client_.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client_.delete(*keys)
        client_.close()


def test_the_list_benchmark_runs() -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "ui_list.py"), "--runs", "120", "--repeat", "1"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "first page" in done.stdout and "id search" in done.stdout


def test_a_failed_run_shows_its_error(store: str) -> None:
    import asyncio

    from flowcraft import Node, NodeArgs, WorkflowError
    from flowcraft.durable import DurableExecutor
    from flowcraft.graph import GraphBuilder, create_node_registry

    class Boom(Node):
        def __init__(self, data: Any = None, **_: Any) -> None:
            super().__init__()

        async def exec(self, args: NodeArgs) -> Any:
            raise ValueError("no <stock> left")

    registry = create_node_registry({"boom": Boom})
    blueprint = (
        GraphBuilder(registry)
        .build_blueprint({"nodes": [{"id": "charge", "type": "boom", "data": {}}], "edges": []})
        .blueprint
    )

    async def run() -> None:
        async with DurableExecutor(store, registry=registry) as executor:
            handle = await executor.start(blueprint, {}, run_id="failing", events=True)
            with pytest.raises(WorkflowError):
                await handle.result(timeout=10)

    asyncio.run(run())
    with served(SqliteBackend(store)) as server:
        status, body, _ = get(server.url + "/runs/failing")
        assert status == 200 and 'id="run-error"' in body
        error = body.split('id="run-error"', 1)[1].split("</div>", 1)[0]
        assert "charge" in error and "exec" in error and "ValueError" in error and "no &lt;stock&gt; left" in error
        assert 'data-kind="NodeFailed"' in body and '"charge": "failed"' in body
        assert 'id="cancel-form"' not in body
