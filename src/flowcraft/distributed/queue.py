"""The job-queue seam: the only module that imports BullMQ.

:class:`JobQueue` adds node jobs, :class:`JobConsumer` runs a processor over them, and
:func:`map_backend_errors` turns BullMQ's and redis-py's exceptions into our own
:class:`~flowcraft.distributed.errors.BackendError` subclasses at the boundary
(:data:`ERROR_MAP` lists every mapping; a test proves each one). Another engine can be
put behind the same small surface later.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import bullmq  # type: ignore[import-untyped]
import redis.exceptions as redis_errors
from bullmq.custom_errors import UnrecoverableError  # type: ignore[import-untyped]

from .errors import (
    BackendAuthenticationError,
    BackendConnectionError,
    BackendError,
    BackendResponseError,
    BackendTimeoutError,
)

__all__ = [
    "ERROR_MAP",
    "JobConsumer",
    "JobQueue",
    "QueuedJob",
    "map_backend_error",
    "map_backend_errors",
    "map_backend_errors_async",
]

ERROR_MAP: tuple[tuple[type[BaseException], type[BackendError]], ...] = (
    # most specific first: redis' AuthenticationError is a ConnectionError
    (redis_errors.AuthenticationError, BackendAuthenticationError),
    (redis_errors.AuthenticationWrongNumberOfArgsError, BackendAuthenticationError),
    (redis_errors.AuthorizationError, BackendAuthenticationError),
    (redis_errors.NoPermissionError, BackendAuthenticationError),
    (redis_errors.BusyLoadingError, BackendConnectionError),
    (redis_errors.ConnectionError, BackendConnectionError),
    (redis_errors.TimeoutError, BackendTimeoutError),
    (redis_errors.ReadOnlyError, BackendResponseError),
    (redis_errors.ResponseError, BackendResponseError),
    (redis_errors.DataError, BackendResponseError),
    (redis_errors.RedisError, BackendError),
    (redis_errors.RedisClusterException, BackendError),
    (UnrecoverableError, BackendError),
    (ConnectionRefusedError, BackendConnectionError),
    (ConnectionResetError, BackendConnectionError),
)
"""``(third-party exception, our exception)`` pairs, checked in order."""


def map_backend_error(error: BaseException) -> BaseException:
    """Our :class:`BackendError` for a BullMQ / redis-py error; anything else unchanged."""
    if isinstance(error, BackendError):
        return error
    for source, target in ERROR_MAP:
        if isinstance(error, source):
            mapped = target(f"Redis/queue error ({type(error).__name__}): {error}")
            mapped.__cause__ = error
            return mapped
    return error


@contextlib.contextmanager
def map_backend_errors() -> Iterator[None]:
    """Re-raise BullMQ / redis-py errors raised inside the block as our own."""
    try:
        yield
    except Exception as error:
        mapped = map_backend_error(error)
        if mapped is error:
            raise
        raise mapped from error


@contextlib.asynccontextmanager
async def map_backend_errors_async() -> AsyncIterator[None]:
    """``async with`` form of :func:`map_backend_errors`."""
    with map_backend_errors():
        yield


class QueuedJob:
    """One job handed to a processor: its ``id``, ``data`` and delivery count."""

    __slots__ = ("attempts_made", "data", "id")

    def __init__(self, job_id: str, data: dict[str, Any], attempts_made: int) -> None:
        self.id = job_id
        self.data = data
        self.attempts_made = attempts_made


def _connection(redis_url: str) -> str:
    return redis_url


class JobQueue:
    """Adds jobs with deterministic ids: adding an id that exists is a no-op.

    Jobs are retried ``attempts`` times (with backoff) when their processor raises —
    which our workers only do for infrastructure errors; node failures are recorded on
    the run instead.
    """

    def __init__(self, redis_url: str, *, name: str, prefix: str, attempts: int = 5, keep_finished: bool = False):
        self.name = name
        self._attempts = attempts
        self._keep = keep_finished
        with map_backend_errors():
            self._queue = bullmq.Queue(name, {"connection": _connection(redis_url), "prefix": prefix})

    def _opts(self, job_id: str) -> dict[str, Any]:
        return {
            "jobId": job_id,
            "attempts": self._attempts,
            "backoff": {"type": "exponential", "delay": 200},
            "removeOnComplete": not self._keep,
            "removeOnFail": 1000,
        }

    async def add(self, jobs: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Add ``(job id, data)`` pairs in one round trip."""
        if not jobs:
            return
        async with map_backend_errors_async():
            if len(jobs) == 1:
                job_id, data = jobs[0]
                await self._queue.add("node", data, self._opts(job_id))
            else:
                await self._queue.addBulk(
                    [{"name": "node", "data": data, "opts": self._opts(jid)} for jid, data in jobs]
                )

    async def counts(self) -> dict[str, int]:
        """How many jobs are waiting, active, delayed, completed, failed."""
        states = ["waiting", "active", "delayed", "completed", "failed"]
        async with map_backend_errors_async():
            values = await self._queue.getJobCounts(*states)
        return {state: int(values.get(state, 0)) for state in states}

    async def obliterate(self) -> None:
        """Delete the queue and all its jobs (tests, benchmarks)."""
        async with map_backend_errors_async():
            await self._queue.obliterate(force=True)

    async def aclose(self) -> None:
        """Close the queue's connection."""
        with contextlib.suppress(Exception):
            await self._queue.close()


Processor = Callable[[QueuedJob], Awaitable[None]]


class JobConsumer:
    """Runs ``processor`` over the queue's jobs, ``concurrency`` at a time.

    ``lock_duration`` and ``stalled_interval`` (seconds) decide how fast a job held by
    a dead worker (``kill -9``) is handed to another one: after at most about
    ``lock_duration + stalled_interval``. ``max_stalled`` is how often a job may be
    recovered before it is failed.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        name: str,
        prefix: str,
        processor: Processor,
        concurrency: int = 10,
        lock_duration: float = 30.0,
        stalled_interval: float = 30.0,
        max_stalled: int = 3,
        on_failed: Callable[[QueuedJob, BaseException], Awaitable[None]] | None = None,
    ) -> None:
        self._processor = processor
        self._on_failed = on_failed
        self._tasks: set[asyncio.Future[Any]] = set()
        opts: dict[str, Any] = {
            "connection": _connection(redis_url),
            "prefix": prefix,
            "concurrency": concurrency,
            "lockDuration": int(lock_duration * 1000),
            "stalledInterval": int(stalled_interval * 1000),
            "maxStalledCount": max_stalled,
            "autorun": False,
            # Seconds an idle fetch blocks; short so close() never waits long on one.
            "drainDelay": 1,
            "runRetryDelay": 500,
        }
        with map_backend_errors():
            self._worker = bullmq.Worker(name, self._process, opts)
        self._worker.on("failed", self._failed)
        self._worker.on("error", lambda *args: None)

    async def _process(self, job: Any, token: str) -> None:
        data = job.data if isinstance(job.data, dict) else {}
        await self._processor(QueuedJob(str(job.id), data, int(job.attemptsMade or 0)))

    def _failed(self, job: Any, error: BaseException) -> None:
        if self._on_failed is None or job is None:
            return
        attempts = int((job.opts or {}).get("attempts", 1) or 1)
        if int(job.attemptsMade or 0) + 1 < attempts and not isinstance(error, UnrecoverableError):
            return  # BullMQ retries it
        data = job.data if isinstance(job.data, dict) else {}
        result = self._on_failed(QueuedJob(str(job.id), data, int(job.attemptsMade or 0)), map_backend_error(error))
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        """Process jobs until :meth:`close` is called."""
        await self._worker.run()

    async def close(self, *, force: bool = False) -> None:
        """Stop taking jobs; wait for running ones (``force``: abandon them to stalled recovery)."""
        with contextlib.suppress(Exception):
            await self._worker.close(force=force)
