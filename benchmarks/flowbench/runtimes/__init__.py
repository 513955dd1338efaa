"""Runtime adapters: one module per Python runtime, plus the node runtimes.

Each Python adapter module defines ``ADAPTER`` (an :class:`Adapter`): its name, the
floor it is compared with, how to read its version, and the workloads it implements.
A timed implementation is a factory ``size -> async () -> None``: the factory builds
(untimed), the returned coroutine function is one timed run and must be re-runnable.

The node runtimes (``js`` — the plain JS floor — and ``flowcraft-ts``) live in
``benchmarks/ts/worker.mjs`` and speak the same worker protocol.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = [
    "NODE_RUNTIMES",
    "PYTHON_RUNTIMES",
    "Adapter",
    "RuntimeInfo",
    "Unavailable",
    "load_adapter",
    "runtime_info",
]

RunFn = Callable[[], Awaitable[Any]]
Factory = Callable[[int], RunFn]


class Unavailable(Exception):
    """Raised by a factory when the runtime cannot run the workload here (the report says why)."""


@dataclasses.dataclass
class Adapter:
    """What a Python runtime offers the worker."""

    name: str
    label: str
    version: Callable[[], str]
    import_statement: str
    """The statement whose cost is measured by ``startup.import``."""
    hello_source: str
    """A complete ``python -c`` program running a one-node hello-world workflow."""
    timed: dict[str, Factory] = dataclasses.field(default_factory=dict)
    memory: Callable[[int], tuple[Callable[[], Any], Callable[[Any], Awaitable[Any]]]] | None = None
    """``w5.memory``: ``size -> (build, run)``; ``build()`` returns what ``run`` awaits."""
    unsupported: dict[str, str] = dataclasses.field(default_factory=dict)
    """Workload id -> why this runtime cannot express it (shown in the report)."""

    def add(self, workload_id: str) -> Callable[[Factory], Factory]:
        """Decorator registering a timed implementation of ``workload_id``."""

        def register(factory: Factory) -> Factory:
            self.timed[workload_id] = factory
            return factory

        return register


@dataclasses.dataclass(frozen=True)
class RuntimeInfo:
    """A runtime as the orchestrator sees it."""

    name: str
    label: str
    lang: str  # "python" or "node"
    floor: str  # name of the floor runtime it is compared with
    module: str | None = None  # Python adapter module
    is_floor: bool = False


PYTHON_RUNTIMES: tuple[RuntimeInfo, ...] = (
    RuntimeInfo("asyncio", "plain asyncio (floor)", "python", "asyncio", "flowbench.runtimes.floor", is_floor=True),
    RuntimeInfo("flowcraft", "Flowcraft for Python", "python", "asyncio", "flowbench.runtimes.flowcraft_py"),
    RuntimeInfo("handwritten", "hand-written engine floor", "python", "asyncio", "flowbench.runtimes.handwritten"),
    RuntimeInfo("pocketflow", "PocketFlow", "python", "asyncio", "flowbench.runtimes.pocketflow_rt"),
    RuntimeInfo("langgraph", "LangGraph", "python", "asyncio", "flowbench.runtimes.langgraph_rt"),
)
NODE_RUNTIMES: tuple[RuntimeInfo, ...] = (
    RuntimeInfo("js", "plain JS on node (floor)", "node", "js", is_floor=True),
    RuntimeInfo("flowcraft-ts", "Flowcraft TS 1.0.0 (node)", "node", "js"),
)


def runtime_info(name: str) -> RuntimeInfo:
    """The :class:`RuntimeInfo` called ``name``."""
    for info in PYTHON_RUNTIMES + NODE_RUNTIMES:
        if info.name == name:
            return info
    raise KeyError(f"unknown runtime {name!r}")


def load_adapter(name: str) -> Adapter:
    """Import the Python adapter of runtime ``name`` (raises ``ImportError`` when its library is missing)."""
    info = runtime_info(name)
    if info.module is None:
        raise KeyError(f"{name!r} is not a Python runtime")
    adapter: Adapter = importlib.import_module(info.module).ADAPTER
    return adapter
