"""Run a fan-out/fan-in workflow on two worker processes.

    python examples/distributed/run.py [--redis redis://127.0.0.1:6379/0]

Without ``--redis`` it starts a private ``redis-server`` on a free loopback port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fanout_nodes import GRAPH, REGISTRY  # noqa: E402

from flowcraft.distributed import DistributedExecutor  # noqa: E402
from flowcraft.graph import GraphBuilder  # noqa: E402


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir = tempfile.mkdtemp()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait()


def start_worker(url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "flowcraft", "worker", "--registry", "fanout_nodes:REGISTRY",
               "--redis", url, "--concurrency", "4"]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # wait for the "ready" line
        if "flowcraft worker ready" in line:
            print("  " + line.strip())
            return proc
    raise SystemExit(f"worker exited early with {proc.wait()}")


async def client(url: str) -> None:
    blueprint = GraphBuilder(REGISTRY).build_blueprint(GRAPH).blueprint
    async with DistributedExecutor(url) as executor:
        started = time.perf_counter()
        handle = await executor.start(blueprint, {"requested_by": "example"})
        print(f"run {handle.run_id} started")
        action = await handle.result(timeout=60)
        context = await handle.context()
    elapsed = time.perf_counter() - started
    workers = sorted({value for key, value in context.items() if key.startswith("worker:")})
    print(f"final action: {action!r}; total = {context['total']}; {elapsed:.2f} s")
    print(f"fetches ran on worker pids {workers} (6 x 0.2 s of work)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", help="use this Redis instead of starting a private one")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.redis or stack.enter_context(private_redis())
        workers = [start_worker(url) for _ in range(2)]
        try:
            asyncio.run(client(url))
        finally:
            for proc in workers:
                proc.terminate()
            codes = [proc.wait(15) for proc in workers]
            print(f"workers stopped with exit codes {codes}")


if __name__ == "__main__":
    main()
