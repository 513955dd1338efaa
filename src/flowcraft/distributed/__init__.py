"""Distributed execution: the same blueprint and node registry, one queue job per node,
run by any number of worker processes, with Redis holding each run's state.

Needs the optional extra: ``pip install 'flowcraft-py[redis]'`` (BullMQ and redis-py).

Examples:
    ```python
    from flowcraft.distributed import DistributedExecutor

    async with DistributedExecutor("redis://localhost:6379/0") as executor:
        action = await flow.run(ctx, executor=executor)   # flow built by GraphBuilder
    ```

and, on each worker host:

```bash
flowcraft worker --registry myapp.nodes:REGISTRY --redis redis://host:6379/0
```
"""

from __future__ import annotations

from ..engine.codec import decode, encode
from ..engine.errors import (
    BackendAuthenticationError,
    BackendConnectionError,
    BackendError,
    BackendPoolExhaustedError,
    BackendResponseError,
    BackendTimeoutError,
    BlueprintNotFoundError,
    CodecError,
    DistributedError,
    EventsNotEnabledError,
    GraphMismatchError,
    NotABlueprintFlowError,
    RemoteNodeError,
    RunNotFoundError,
)
from . import _extra  # noqa: F401  (raises ImportError naming the extra when it is missing)
from .executor import DistributedExecutor, RunError, RunHandle, RunStatus, blueprint_of
from .keys import Keys
from .queue import BullMQJobQueue
from .store import RedisRunStore
from .worker import Worker

__all__ = [
    "BackendAuthenticationError",
    "BackendConnectionError",
    "BackendError",
    "BackendPoolExhaustedError",
    "BackendResponseError",
    "BackendTimeoutError",
    "BlueprintNotFoundError",
    "BullMQJobQueue",
    "CodecError",
    "DistributedError",
    "DistributedExecutor",
    "EventsNotEnabledError",
    "GraphMismatchError",
    "Keys",
    "NotABlueprintFlowError",
    "RedisRunStore",
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
