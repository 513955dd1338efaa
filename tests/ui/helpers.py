"""Runs for the dashboard's tests, and a dashboard served in a thread on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import uvicorn
from wait_nodes import PARALLEL_WAITS, REGISTRY

from flowcraft import RunSuspended
from flowcraft.durable import DurableExecutor
from flowcraft.graph import GraphBuilder
from flowcraft.ui import Guard, create_app
from flowcraft.ui.backend import Backend

REGISTRY_REF = "wait_nodes:REGISTRY"


def park_runs(path: str, run_ids: list[str], graph: dict[str, Any] = PARALLEL_WAITS) -> None:
    """Start each run (with events) and wait until it is parked on its waits."""

    async def main() -> None:
        blueprint = GraphBuilder(REGISTRY).build_blueprint(graph).blueprint
        async with DurableExecutor(path, registry=REGISTRY) as executor:
            for run_id in run_ids:
                handle = await executor.start(blueprint, {"order": 42, "note": "<b>not bold</b>"}, run_id=run_id,
                                              events=True)  # fmt: skip
                with contextlib.suppress(RunSuspended):
                    await handle.result(timeout=10)

    asyncio.run(main())


def resume_elsewhere(path: str, run_id: str, wait_id: str, value: Any, action: str | None = None) -> str:
    """Resume a wait from another executor (as another process would) and return the final state."""

    async def main() -> str:
        async with DurableExecutor(path, registry=REGISTRY) as executor:
            handle = await executor.resume(run_id, wait_id, value, action=action)
            with contextlib.suppress(RunSuspended):
                await handle.result(timeout=10)
            return (await handle.status()).state

    return asyncio.run(main())


class Served:
    """A dashboard served by uvicorn in a thread; ``url`` is its address."""

    def __init__(self, backend: Backend, guard: Guard, *, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(create_app(backend, guard), log_level="error", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the dashboard did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


@contextlib.contextmanager
def served(backend: Backend, guard: Guard | None = None) -> Iterator[Served]:
    with Served(backend, guard or Guard("127.0.0.1")) as server:
        yield server


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    """GET ``url``: status, body, headers (an error status is returned, not raised)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode(), dict(error.headers)
