"""Cancellation, failures, bad input, Redis restarts and graceful worker shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dist_nodes as d
import pytest
import redis

from flowcraft import AbortController, AbortError, RunTimeoutError, TypedContext, WorkflowError
from flowcraft.distributed import (
    BackendConnectionError,
    CodecError,
    RemoteNodeError,
    RunNotFoundError,
)
from flowcraft.distributed.keys import Keys
from flowcraft.engine.plan import blueprint_hash, canonical_json
from flowcraft.graph import BlueprintExecutor, GraphBuilder

from .conftest import Space


def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


@pytest.mark.timeout(60)
def test_cancel_stops_running_nodes_on_two_workers(space: Space) -> None:
    started = space.tmp / "started"
    started.mkdir()
    graph = {
        "nodes": [
            d.node("a"),
            d.node("x", "blocker", started_dir=str(started)),
            d.node("y", "blocker", started_dir=str(started)),
            d.node("join", "collect"),
        ],
        "edges": [d.edge("a", "x"), d.edge("a", "y"), d.edge("x", "join"), d.edge("y", "join")],
    }
    space.start_workers(2, concurrency=1)

    async def main() -> tuple[Any, dict[str, Any]]:
        async with space.executor() as executor:
            handle = await executor.start(d.build(graph))

            def both_started() -> bool:
                return len([p for p in started.iterdir() if not p.name.endswith("aborted")]) == 2

            await asyncio.to_thread(wait_for, both_started)
            pids = {p.name.split(".")[1] for p in started.iterdir()}
            assert len(pids) == 2  # one blocker on each worker
            await handle.cancel("user pressed stop")
            with pytest.raises(AbortError, match="user pressed stop"):
                await handle.result(timeout=10)
            await asyncio.to_thread(
                wait_for, lambda: (started / "x.aborted").exists() and (started / "y.aborted").exists()
            )
            await asyncio.sleep(0.5)
            return await handle.status(), await handle.context()

    status, ctx = asyncio.run(main())
    assert status.state == "cancelled"
    assert "collected" not in ctx  # no further node started


@pytest.mark.timeout(60)
def test_abort_from_another_thread_cancels_a_redis_run(space: Space) -> None:
    from test_memory_backend import abort_from_a_thread_once_started, blocked_graph

    started = space.tmp / "started"
    started.mkdir()
    flow = BlueprintExecutor(d.build(blocked_graph(started)), d.REGISTRY).flow
    controller = AbortController()
    space.start_workers(1)

    async def main() -> tuple[float, Any]:
        async with space.executor(poll_interval=0.2) as executor:
            waiter = asyncio.ensure_future(controller.signal.wait())
            thread = abort_from_a_thread_once_started(started, controller)
            begun = time.monotonic()
            with pytest.raises(AbortError, match="from another thread"):
                await flow.run(TypedContext(), executor=executor, controller=controller)
            elapsed = time.monotonic() - begun
            reason = await asyncio.wait_for(waiter, 2)
            thread.join(5)
            return elapsed, reason

    elapsed, reason = asyncio.run(main())
    assert elapsed < 8  # the blocker sleeps 10 s unless the run is cancelled
    assert reason == "from another thread"


@pytest.mark.timeout(60)
def test_a_failing_node_fails_the_run_with_its_node_and_phase(space: Space) -> None:
    graph = {
        "nodes": [d.node("a"), d.node("f", "fail"), d.node("after")],
        "edges": [d.edge("a", "f"), d.edge("f", "after")],
    }
    space.start_workers(1)

    async def main() -> Any:
        async with space.executor() as executor:
            handle = await executor.start(d.build(graph))
            with pytest.raises(WorkflowError, match="boom in f") as info:
                await handle.result(timeout=20)
            return info.value, await handle.status(), await handle.context()

    error, status, ctx = asyncio.run(main())
    assert (error.node_name, error.phase) == ("f", "exec")
    assert isinstance(error.original_error, RemoteNodeError) and error.original_error.type_name == "ValueError"
    assert status.state == "failed" and status.error.node_id == "f"
    assert "mark:after" not in ctx


@pytest.mark.timeout(60)
def test_unknown_node_type_on_the_worker_fails_the_run_clearly(space: Space) -> None:
    registry = {**d.REGISTRY, "mystery": d.Noop}  # the client knows a type the worker does not
    bp = GraphBuilder(registry).build_blueprint({"nodes": [d.node("m", "mystery")], "edges": []}).blueprint
    space.start_workers(1, extra_args=("--unknown-type-grace", "0.5"))  # no worker knows it: fail after 0.5 s

    async def main() -> Any:
        async with space.executor() as executor:
            handle = await executor.start(bp)
            with pytest.raises(WorkflowError, match="mystery") as info:
                await handle.result(timeout=20)
            return info.value

    error = asyncio.run(main())
    assert error.phase == "hydrate" and error.original_error.type_name == "UnknownNodeTypeError"
    assert "No live worker on queue" in str(error)


@pytest.mark.timeout(60)
def test_unencodable_context_value_names_key_and_type(space: Space) -> None:
    graph = {"nodes": [d.node("a"), d.node("u", "unencodable")], "edges": [d.edge("a", "u")]}
    space.start_workers(1)

    async def main() -> Any:
        async with space.executor() as executor:
            with pytest.raises(CodecError, match=r"'early'.*builtins\.object"):
                await executor.start(d.build(graph), {"early": object()})
            handle = await executor.start(d.build(graph))
            with pytest.raises(WorkflowError, match=r"'handle' holds a builtins\.object") as info:
                await handle.result(timeout=20)
            return info.value

    error = asyncio.run(main())
    assert (error.node_name, error.phase, error.original_error.type_name) == ("u", "post", "CodecError")


@pytest.mark.timeout(60)
def test_missing_blueprint_fails_the_run_clearly(space: Space) -> None:
    bp = d.build(d.GRAPHS["linear"][0])

    async def main() -> Any:
        async with space.executor() as executor:
            handle = await executor.start(bp)
            client = redis.asyncio.Redis.from_url(space.url)
            await client.delete(Keys(space.prefix).blueprint(blueprint_hash(canonical_json(bp))))
            await client.aclose()
            await asyncio.to_thread(space.start_workers, 1)
            with pytest.raises(WorkflowError, match="is not stored in Redis") as info:
                await handle.result(timeout=20)
            return info.value

    error = asyncio.run(main())
    assert error.phase == "hydrate" and error.original_error.type_name == "BlueprintNotFoundError"


def test_unknown_run_id(space: Space) -> None:
    async def main() -> None:
        async with space.executor() as executor:
            await executor.handle("nope")

    with pytest.raises(RunNotFoundError, match="'nope' does not exist"):
        asyncio.run(main())


@pytest.mark.timeout(60)
def test_result_timeout_raises_run_timeout_error(space: Space) -> None:
    async def main() -> None:
        async with space.executor() as executor:
            handle = await executor.start(d.build(d.GRAPHS["linear"][0]))  # no worker runs it
            await handle.result(timeout=0.3)

    with pytest.raises(RunTimeoutError, match="did not finish within 0.3 s"):
        asyncio.run(main())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(port: int, workdir: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    wait_for(lambda: _pings(client), 10)
    client.close()
    return proc


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.mark.timeout(90)
def test_redis_restart_mid_run_never_hangs(space: Space) -> None:
    """A private redis-server is killed and restarted (empty) during a run: result()
    raises a clear error (or returns) within its timeout, and the worker survives."""
    port = free_port()
    workdir = tempfile.mkdtemp()
    server = start_redis(port, workdir)
    url = f"redis://127.0.0.1:{port}/0"
    chain = {
        "nodes": [d.node(f"n{i}", "busy", seconds=0.3) for i in range(20)],
        "edges": [d.edge(f"n{i}", f"n{i + 1}") for i in range(19)],
    }
    worker = space.start_worker(url=url)
    worker.wait_ready()
    try:

        async def main() -> tuple[str, float]:
            from flowcraft.distributed import DistributedExecutor

            executor = DistributedExecutor(url, queue=space.queue, prefix=space.prefix, poll_interval=0.2,
                                           connection_grace=3.0)  # fmt: skip
            try:
                handle = await executor.start(d.build(chain))
                await asyncio.sleep(0.8)
                server.send_signal(signal.SIGKILL)
                server.wait()
                await asyncio.sleep(1.0)
                restarted.append(await asyncio.to_thread(start_redis, port, workdir))
                t0 = time.monotonic()
                try:
                    await handle.result(timeout=15)
                    outcome = "completed"
                except (RunNotFoundError, RunTimeoutError, BackendConnectionError, WorkflowError) as error:
                    outcome = type(error).__name__
                return outcome, time.monotonic() - t0
            finally:
                await executor.aclose()

        restarted: list[subprocess.Popen[bytes]] = []
        outcome, elapsed = asyncio.run(main())
        assert outcome in {
            "completed",
            "RunNotFoundError",
            "RunTimeoutError",
            "BackendConnectionError",
            "WorkflowError",
        }
        assert elapsed < 20
        assert worker.proc.poll() is None, worker.output()  # the worker rode it out
    finally:
        worker.stop()
        for proc in [server, *restarted]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.timeout(60)
def test_worker_exits_0_on_sigterm_after_finishing_its_job(space: Space) -> None:
    graph = {"nodes": [d.node("a"), d.node("slow", "busy", seconds=1.0)], "edges": [d.edge("a", "slow")]}
    worker = space.start_workers(1)[0]

    async def main() -> Any:
        async with space.executor() as executor:
            handle = await executor.start(d.build(graph))
            # "running" once the first node completed: the slow one has been picked up
            await asyncio.to_thread(wait_for, lambda: asyncio.run(_state(space, handle.run_id)) == "running", 10)
            await asyncio.sleep(0.3)
            os.kill(worker.proc.pid, signal.SIGTERM)
            code = await asyncio.to_thread(worker.wait_exit, 20)
            return code, await handle.result(timeout=5)

    code, action = asyncio.run(main())
    assert code == 0, worker.output()
    assert repr(action) == "DEFAULT_ACTION"
    assert "flowcraft worker" in worker.output() and "stopped" in worker.output()


@pytest.mark.timeout(60)
def test_sigterm_releases_a_job_that_outlasts_the_grace_period(space: Space) -> None:
    graph = {"nodes": [d.node("a"), d.node("slow", "busy", seconds=4.0)], "edges": [d.edge("a", "slow")]}
    worker = space.start_workers(1, extra_args=("--shutdown-grace", "0.5"))[0]

    async def main() -> Any:
        async with space.executor() as executor:
            handle = await executor.start(d.build(graph))
            await asyncio.to_thread(wait_for, lambda: asyncio.run(_state(space, handle.run_id)) == "running", 10)
            await asyncio.sleep(0.3)
            stopped_at = time.monotonic()
            os.kill(worker.proc.pid, signal.SIGTERM)
            code = await asyncio.to_thread(worker.wait_exit, 20)
            exit_after = time.monotonic() - stopped_at
            space.start_workers(1)  # takes the released job over (stalled-job recovery)
            return code, exit_after, await handle.result(timeout=30)

    code, exit_after, action = asyncio.run(main())
    assert code == 0, worker.output()
    assert exit_after < 3.5, f"worker took {exit_after:.1f} s to stop; the slow job alone takes 4 s"
    assert "releasing them" in worker.output()
    assert repr(action) == "DEFAULT_ACTION"


@pytest.mark.timeout(60)
def test_worker_middleware_option_wraps_every_node(space: Space) -> None:
    graph = {"nodes": [d.node("a"), d.node("b")], "edges": [d.edge("a", "b")]}
    space.start_workers(1, extra_args=("--middleware", "dist_nodes:tag_middleware"))

    async def main() -> dict[str, Any]:
        async with space.executor() as executor:
            handle = await executor.start(d.build(graph))
            await handle.result(timeout=20)
            return await handle.context()

    context = asyncio.run(main())
    assert context["mw:a"] is True
    assert context["mw:b"] is True


def test_worker_middleware_option_rejects_a_non_callable(space: Space) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "flowcraft", "worker", "--registry", "dist_nodes:REGISTRY",
         "--redis", space.url, "--middleware", "dist_nodes:REGISTRY"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(Path(d.__file__).parent)},
    )  # fmt: skip
    assert proc.returncode != 0
    assert "--middleware 'dist_nodes:REGISTRY' is not callable" in proc.stderr


async def _state(space: Space, run_id: str) -> str:
    client = redis.asyncio.Redis.from_url(space.url, decode_responses=True)
    try:
        return str(await client.hget(Keys(space.prefix).run(run_id).meta, "status"))
    finally:
        await client.aclose()


@pytest.mark.timeout(60)
def test_every_run_key_gets_a_ttl_when_the_run_ends(space: Space) -> None:
    space.start_workers(1)
    graph = d.GRAPHS["fan_in"][0]

    async def main() -> str:
        async with space.executor(run_ttl=123) as executor:
            handle = await executor.start(d.build(graph), run_id="ttl")
            await handle.result(timeout=20)
            return handle.run_id

    asyncio.run(main())
    client = redis.Redis.from_url(space.url)
    try:
        keys = list(client.scan_iter(match=f"{space.prefix}:run:*"))
        assert keys
        for key in keys:
            assert 0 < client.ttl(key) <= 123, key
    finally:
        client.close()


def test_started_marker_helper(tmp_path: Path) -> None:
    d.touch(str(tmp_path / "x"))
    assert (tmp_path / "x").exists()
