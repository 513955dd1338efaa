"""Fixtures for the distributed suite: a real Redis (FAILS, never skips, when it is not
reachable), a per-test key prefix and queue that are deleted afterwards, and real worker
subprocesses (``python -m flowcraft worker``) that are stopped afterwards."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REDIS_URL = os.environ.get("FLOWCRAFT_TEST_REDIS_URL", "redis://127.0.0.1:6399/0")
# a Redis Cluster (scripts/test starts one: start_test_cluster in scripts/_redis.sh)
CLUSTER_URL = os.environ.get(
    "FLOWCRAFT_TEST_CLUSTER_URL", f"redis://127.0.0.1:{os.environ.get('FLOWCRAFT_TEST_CLUSTER_PORT', '7001')}/0"
)
CLUSTER_SHARDS = 3  # queue shards in the cluster tests: one per master of the test cluster
# fast stalled-job recovery for kill -9 tests (production defaults are 30 s each)
LOCK_DURATION = 1.0
STALLED_INTERVAL = 0.5

if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if path.parent == HERE and path.name != "test_units.py":  # test_units needs no Redis
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(
            f"The distributed tests need a real Redis at {REDIS_URL} (set FLOWCRAFT_TEST_REDIS_URL, or run "
            f"scripts/test which starts one): {error}"
        )
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def cluster_url() -> str:
    """A reachable Redis Cluster whose every slot is served (FAILS, never skips, without one)."""
    try:
        client = redis.RedisCluster.from_url(CLUSTER_URL, socket_connect_timeout=2)
        try:
            info = client.cluster_info()
            masters = len(client.get_primaries())
        finally:
            client.close()
    except redis.RedisError as error:
        pytest.fail(
            f"The cluster tests need a real Redis Cluster at {CLUSTER_URL} (set FLOWCRAFT_TEST_CLUSTER_URL, or run "
            f"scripts/test which starts one with start_test_cluster from scripts/_redis.sh): {error}"
        )
    if info.get("cluster_state") != "ok" or masters < 2:
        pytest.fail(
            f"The Redis Cluster at {CLUSTER_URL} is not usable: state {info.get('cluster_state')}, {masters} master(s)"
        )
    return CLUSTER_URL


def delete_prefix(url: str, prefix: str, *, cluster: bool = False) -> None:
    client: Any = redis.RedisCluster.from_url(url) if cluster else redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    finally:
        client.close()


class Space:
    """One isolated namespace: a key prefix, a queue name, and the workers started in it."""

    def __init__(self, url: str, *, cluster: bool = False, shards: int = 1) -> None:
        self.url = url
        self.cluster = cluster
        self.shards = shards
        self.topology: dict[str, Any] = {"cluster": cluster, "queue_shards": shards} if cluster or shards > 1 else {}
        tag = uuid.uuid4().hex[:10]
        self.prefix = f"fct{tag}"
        self.queue = f"q{tag}"
        self.workers: list[WorkerProcess] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="fcdist"))

    def executor(self, **options: Any) -> Any:
        from flowcraft.distributed import DistributedExecutor

        options.setdefault("poll_interval", 0.5)
        return DistributedExecutor(self.url, queue=self.queue, prefix=self.prefix, **self.topology, **options)

    def start_worker(
        self,
        *,
        crash_at: str | None = None,
        concurrency: int = 8,
        url: str | None = None,
        extra_args: tuple[str, ...] = (),
        fast_recovery: bool = True,
    ) -> WorkerProcess:
        proc = WorkerProcess(
            self, url or self.url, crash_at=crash_at, concurrency=concurrency, extra_args=extra_args,
            fast_recovery=fast_recovery,
        )  # fmt: skip
        self.workers.append(proc)
        return proc

    def start_workers(self, count: int, **options: Any) -> list[WorkerProcess]:
        procs = [self.start_worker(**options) for _ in range(count)]
        for proc in procs:
            proc.wait_ready()
        return procs

    async def _run(self, graph: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        import dist_nodes as d

        async with self.executor() as executor:
            handle = await executor.start(d.build(graph), {})
            return await handle.result(timeout=60), await handle.context()

    def run(self, graph: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """Run ``graph`` (a description, built with the test registry) on this space's
        workers (started already); its final action and context."""
        return asyncio.run(self._run(graph))

    def run_in_process(self, graph: dict[str, Any], *, concurrency: int) -> tuple[Any, dict[str, Any]]:
        """``run``, on a worker in this process (so that a test can watch what it sends)."""
        import dist_nodes as d

        from flowcraft.distributed import Worker

        async def main() -> tuple[Any, dict[str, Any]]:
            worker = Worker(d.REGISTRY, self.url, queue=self.queue, prefix=self.prefix, concurrency=concurrency)
            await worker.connect()
            serving = asyncio.ensure_future(worker.run())
            try:
                return await self._run(graph)
            finally:
                await worker.close()
                await serving
                await worker.aclose()

        return asyncio.run(main())

    def close(self) -> None:
        for proc in self.workers:
            proc.stop()
        delete_prefix(self.url, self.prefix, cluster=self.cluster)
        shutil.rmtree(self.tmp, ignore_errors=True)


class WorkerProcess:
    """A worker subprocess; its output goes to a log file read for the ready line."""

    def __init__(
        self,
        space: Space,
        url: str,
        *,
        crash_at: str | None,
        concurrency: int,
        extra_args: tuple[str, ...] = (),
        fast_recovery: bool = True,
    ) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT / "src"), env.get("PYTHONPATH", "")])
        env.pop(CRASH_ENV, None)
        if crash_at:
            env[CRASH_ENV] = crash_at
        self.log_path = space.tmp / f"worker-{uuid.uuid4().hex[:6]}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115
        timing = ("--lock-duration", str(LOCK_DURATION), "--stalled-interval", str(STALLED_INTERVAL))
        topology = ("--cluster",) * space.cluster + (("--queue-shards", str(space.shards)) if space.shards > 1 else ())
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "flowcraft", "worker",
                "--registry", "dist_nodes:REGISTRY", "--redis", url,
                "--queue", space.queue, "--prefix", space.prefix, "--concurrency", str(concurrency),
                *(timing if fast_recovery else ()), *topology, *extra_args,
            ],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT),
        )  # fmt: skip

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "flowcraft worker ready" in self.output():
                return
            if self.proc.poll() is not None:
                pytest.fail(f"worker exited with {self.proc.returncode} before it was ready:\n{self.output()}")
            time.sleep(0.05)
        pytest.fail(f"worker not ready after {timeout} s:\n{self.output()}")

    def wait_exit(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {self.proc.pid} still running after {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self._log.close()
                pytest.fail(f"worker {self.proc.pid} ignored SIGTERM for 10 s:\n{self.output()}")
        self._log.close()


CRASH_ENV = "FLOWCRAFT_TEST_CRASH_AT"


@pytest.fixture
def space(redis_url: str) -> Iterator[Space]:
    s = Space(redis_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def cluster_space(cluster_url: str) -> Iterator[Space]:
    """A namespace on the test Redis Cluster, its queue split in `CLUSTER_SHARDS` shards."""
    s = Space(cluster_url, cluster=True, shards=CLUSTER_SHARDS)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def module_space(redis_url: str) -> Iterator[Space]:
    s = Space(redis_url)
    try:
        yield s
    finally:
        s.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)
