"""Distributed execution: the same blueprint and node registry, one queue job per node,
run by any number of worker processes, with Redis holding each run's state.

Needs the optional extra: ``pip install 'flowcraft-py[redis]'`` (BullMQ and redis-py).

Example::

    from flowcraft.distributed import DistributedExecutor

    async with DistributedExecutor("redis://localhost:6379/0") as executor:
        action = await flow.run(ctx, executor=executor)   # flow built by GraphBuilder

and, on each worker host::

    flowcraft worker --registry myapp.nodes:REGISTRY --redis redis://host:6379/0
"""

from __future__ import annotations

from typing import Any

from . import _extra  # noqa: F401  (raises ImportError naming the extra when it is missing)
from .codec import decode, encode
from .errors import (
    BackendAuthenticationError,
    BackendConnectionError,
    BackendError,
    BackendResponseError,
    BackendTimeoutError,
    BlueprintNotFoundError,
    CodecError,
    DistributedError,
    EventsNotEnabledError,
    NotABlueprintFlowError,
    RemoteNodeError,
    RunNotFoundError,
)
from .executor import DistributedExecutor, RunError, RunHandle, RunStatus, blueprint_of
from .keys import Keys

__all__ = [
    "BackendAuthenticationError",
    "BackendConnectionError",
    "BackendError",
    "BackendResponseError",
    "BackendTimeoutError",
    "BlueprintNotFoundError",
    "CodecError",
    "DistributedError",
    "DistributedExecutor",
    "EventsNotEnabledError",
    "Keys",
    "NotABlueprintFlowError",
    "RemoteNodeError",
    "RunError",
    "RunHandle",
    "RunNotFoundError",
    "RunStatus",
    "Worker",
    "blueprint_of",
    "decode",
    "encode",
]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `python -m flowcraft.distributed.worker` runs the module once.
    if name == "Worker":
        from .worker import Worker

        return Worker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
