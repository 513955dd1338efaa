"""Errors of the job engine and distributed execution (all [`FlowcraftError`][flowcraft.FlowcraftError]):

```text
FlowcraftError
└── DistributedError
    ├── BackendError                      Redis / the queue failed (mapped by queue.py)
    │   ├── BackendConnectionError (ConnectionError)
    │   ├── BackendTimeoutError (TimeoutError)
    │   ├── BackendPoolExhaustedError     every connection of the client's pool stayed busy
    │   ├── BackendAuthenticationError
    │   └── BackendResponseError          Redis answered with an error
    ├── CodecError (TypeError)            a context value cannot cross processes (names key + type)
    ├── BlueprintNotFoundError (LookupError)  a run's stored graph is not in the store
    ├── GraphMismatchError                a worker's graph differs from the one the run pinned
    ├── RunNotFoundError (LookupError)     no such run (never started, expired, or Redis lost it)
    ├── EventsNotEnabledError              RunHandle.events() on a run started without events
    ├── NotABlueprintFlowError (TypeError) a job run needs a blueprint flow or a flow factory
    ├── RunConflictError                   a run id that exists with another graph
    ├── RunBlockedError                    the run's graph changed since it started (names what changed)
    └── StoreError                         a run store file that is corrupted, foreign, newer, or unwritable
```
"""

from __future__ import annotations

from ..errors import DurabilityNotSupportedError, FlowcraftError

__all__ = [
    "BackendAuthenticationError",
    "BackendConnectionError",
    "BackendError",
    "BackendPoolExhaustedError",
    "BackendResponseError",
    "BackendTimeoutError",
    "BlueprintNotFoundError",
    "CodecError",
    "DistributedError",
    "DurabilityNotSupportedError",
    "EventsNotEnabledError",
    "GraphMismatchError",
    "NotABlueprintFlowError",
    "RemoteNodeError",
    "RunBlockedError",
    "RunConflictError",
    "RunNotFoundError",
    "StoreError",
]


class DistributedError(FlowcraftError):
    """Root of the errors raised by [`flowcraft.distributed`][flowcraft.distributed]."""


class BackendError(DistributedError):
    """Redis or the job queue failed; the original error is ``__cause__``."""


class BackendConnectionError(BackendError, ConnectionError):
    """Redis cannot be reached (refused, reset, closed)."""


class BackendTimeoutError(BackendError, TimeoutError):
    """A Redis command or connection attempt timed out."""


class BackendPoolExhaustedError(BackendError):
    """Every connection of this client's pool stayed in use for the pool's timeout: too
    many concurrent calls for ``max_connections`` (Redis itself may be fine)."""


class BackendAuthenticationError(BackendError):
    """Redis rejected the credentials in the URL."""


class BackendResponseError(BackendError):
    """Redis answered a command with an error (e.g. a script or type error)."""


class CodecError(DistributedError, TypeError):
    """A value cannot be encoded for (or decoded from) Redis.

    ``key`` is the context key (or field) holding it and ``type_name`` its Python type.
    """

    def __init__(self, message: str, *, key: str, type_name: str) -> None:
        super().__init__(message)
        self.key = key
        self.type_name = type_name


class BlueprintNotFoundError(DistributedError, LookupError):
    """A run refers to a blueprint hash that is not stored in Redis."""

    def __init__(self, message: str, *, blueprint_hash: str) -> None:
        super().__init__(message)
        self.blueprint_hash = blueprint_hash


class RunNotFoundError(DistributedError, LookupError):
    """No run with this id exists (never started, expired, or Redis lost its data)."""

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class EventsNotEnabledError(DistributedError):
    """The run was started without events (``start(..., events=True)`` or ``on_event``)."""

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class NotABlueprintFlowError(DistributedError, TypeError):
    """A run of the job engine needs a flow another process can rebuild: one built from a
    blueprint (GraphBuilder / BlueprintExecutor), or one named by a factory
    (``"package.module:function"``)."""


class GraphMismatchError(DistributedError):
    """The graph a worker builds is not the graph the run pinned (another code version),
    or a flow's node ids are ambiguous."""


class RemoteNodeError(DistributedError):
    """Stands in for the exception a node raised on a worker (only its type name and
    message cross processes); the ``original_error`` of the [`WorkflowError`][flowcraft.WorkflowError] that
    ``RunHandle.result()`` raises."""

    names_its_type = True
    """Its message is ``"<remote type>: <remote message>"``: shown as is (not prefixed
    with ``RemoteNodeError``) where errors are described."""

    def __init__(self, message: str, *, type_name: str) -> None:
        super().__init__(message)
        self.type_name = type_name

    @property
    def remote_message(self) -> str:
        """The remote error's own message (without its type name)."""
        text, prefix = str(self), f"{self.type_name}: "
        return text[len(prefix) :] if text.startswith(prefix) else text


class RunConflictError(DistributedError):
    """``start(run_id=...)`` named a run that exists with another graph (the same graph
    returns the existing run's handle instead)."""

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class RunBlockedError(DistributedError):
    """The run cannot go on: the graph rebuilt on recovery is not the graph it started
    with. The message says which node ids were added, removed or changed."""

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class StoreError(DistributedError):
    """A run store that cannot be used: a corrupted or foreign file, one written by a
    newer schema, or a path that cannot be written (``path`` names it)."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path
