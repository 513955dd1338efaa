"""The BullMQ job queue: the only module that imports BullMQ.

[`BullMQJobQueue`][flowcraft.distributed.BullMQJobQueue] adds node jobs and runs a processor over them, and
`map_backend_errors` turns BullMQ's and redis-py's exceptions into our own
[`BackendError`][flowcraft.distributed.BackendError] subclasses at the boundary
(`ERROR_MAP` lists every mapping; a test proves each one). Another engine can be
put behind the same small surface later.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import bullmq  # type: ignore[import-untyped]
import redis.exceptions as redis_errors
from bullmq.custom_errors import DelayedError, UnrecoverableError  # type: ignore[import-untyped]
from bullmq.scripts import raw2NextJobData  # type: ignore[import-untyped]

from ..engine.errors import (
    BackendAuthenticationError,
    BackendConnectionError,
    BackendError,
    BackendPoolExhaustedError,
    BackendResponseError,
    BackendTimeoutError,
)
from ..engine.jobs import Job
from ..engine.protocols import JobFailed, JobProcessor
from .connection import PoolExhausted, connect_cluster, transaction
from .keys import engine_job_id, wire_job_id
from .loading import LOAD_NEXT, preloaded

__all__ = [
    "ERROR_MAP",
    "JobDeferred",
    "LOCK_DURATION",
    "STALLED_INTERVAL",
    "BullMQJobQueue",
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
    # a pool with no free connection is not Redis being down (MaxConnectionsError is a ConnectionError)
    (PoolExhausted, BackendPoolExhaustedError),
    (getattr(redis_errors, "MaxConnectionsError", PoolExhausted), BackendPoolExhaustedError),  # redis-py >= 6
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
    """Our [`BackendError`][flowcraft.distributed.BackendError] for a BullMQ / redis-py error;
    anything else unchanged."""
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


class _MapErrorsAsync(contextlib.AbstractAsyncContextManager[None]):
    """`map_backend_errors` as an ``async with`` block, without a generator per use (every
    Redis call of a job goes through one)."""

    __slots__ = ()

    async def __aexit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        if isinstance(error, Exception):
            mapped = map_backend_error(error)
            if mapped is not error:
                raise mapped from error


_MAP_ERRORS_ASYNC = _MapErrorsAsync()


def map_backend_errors_async() -> contextlib.AbstractAsyncContextManager[None]:
    """``async with`` form of `map_backend_errors`."""
    return _MAP_ERRORS_ASYNC


log = logging.getLogger("flowcraft.distributed.queue")

LOCK_DURATION = 8.0
"""Default seconds a job's lock lasts without renewal (a worker renews the locks of its
running jobs every half of it, in one command)."""
STALLED_INTERVAL = 5.0
"""Default seconds between checks for jobs whose worker died. A job held by a dead worker
(``kill -9``) goes to another one after at most about ``LOCK_DURATION + STALLED_INTERVAL``
(13 s; about 9 s on average)."""
ADD_CHUNK = 128
"""Successors added per MULTI ahead of a wide fan-out's completion (see ``_add_leading``)."""


def _connection(redis_url: str, cluster: bool = False) -> Any:
    # a URL (BullMQ opens its own client), or a cluster client of our own (BullMQ takes it as is)
    return connect_cluster(redis_url) if cluster else redis_url


class JobDeferred(Exception):
    """Raised by a job processor: hand the job back to the queue, to be delivered again
    (to any worker) after ``delay`` seconds; not a failed attempt."""

    def __init__(self, delay: float, reason: str = "") -> None:
        super().__init__(reason or f"deferred by {delay} s")
        self.delay = delay


class ErrorLog:
    """Logs the queue library's errors, each kind at most once per ``every`` seconds
    (with a count of the ones held back), so that a failing Redis cannot flood the log."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last: dict[str, tuple[float, int]] = {}

    def __call__(self, error: Any = None, *_: Any) -> None:
        kind = type(error).__name__ if isinstance(error, BaseException) else "error"
        now = time.monotonic()
        last, held = self._last.get(kind, (float("-inf"), 0))
        if now - last < self.every:
            self._last[kind] = (last, held + 1)
            return
        self._last[kind] = (now, 0)
        more = f" ({held} more like it in the last {self.every:g} s)" if held else ""
        log.error("job queue error: %s: %s%s", kind, map_backend_error(error) if kind != "error" else error, more)


def _poison_data(job_id: str) -> dict[str, str]:
    """What a job with unreadable data stands for: its run and node, read from its id
    (``run:node:visit``; run ids have no ``:``), so that the run can be failed."""
    run_id, _, rest = job_id.partition(":")
    node_id = rest.rpartition(":")[0]
    return {"r": run_id, "n": node_id, "b": ""} if run_id and node_id else {}


# Hand a job this worker holds back to the queue at once (a worker that stops without
# finishing it), instead of leaving it locked until stalled-job recovery (lock duration +
# stalled interval): what BullMQ's moveStalledJobsToWait does for it, without the wait.
# KEYS: active wait stalled meta marker events   ARGV: job key prefix, job id, lock token, push
# (RPUSH: taken next, for a released job; LPUSH: after the jobs already waiting, for a deferred one)
RELEASE = """
local lock = ARGV[1] .. ARGV[2] .. ':lock'
if redis.call('GET', lock) ~= ARGV[3] then return 0 end
if redis.call('LREM', KEYS[1], 1, ARGV[2]) == 0 then return 0 end
redis.call('DEL', lock)
redis.call('SREM', KEYS[3], ARGV[2])
redis.call(ARGV[4], KEYS[2], ARGV[2])
if not redis.call('HGET', KEYS[4], 'paused') then redis.call('ZADD', KEYS[5], 0, '0') end
redis.call('XADD', KEYS[6], '*', 'event', 'waiting', 'jobId', ARGV[2], 'prev', 'active')
return 1
"""


def _failed(result: Any) -> bool:
    """Whether BullMQ's moveToFinished failed (an error, or one of its negative codes)."""
    return isinstance(result, BaseException) or (isinstance(result, int) and result < 0)


class _Held:
    """The BullMQ job a processor task is running, and whether it was finished already
    (together with the enqueue of its successors)."""

    __slots__ = ("finished", "job", "owner", "token")

    def __init__(self, owner: BullMQJobQueue, job: Any, token: str) -> None:
        self.owner, self.job, self.token = owner, job, token
        self.finished = False


_held: contextvars.ContextVar[_Held | None] = contextvars.ContextVar("flowcraft_bullmq_held", default=None)


def finishing_queue() -> BullMQJobQueue | None:
    """The queue whose job the current processor task runs, when it can complete that job
    together with its commit (`BullMQJobQueue.commit_and_finish`): a single Redis, the job
    not completed yet."""
    held = _held.get()
    if held is None or held.finished:
        return None
    owner = held.owner
    if owner._cluster or owner._worker is None or owner._preload is None:
        return None
    return owner


# KEYS: lock  ARGV: token
# First in the MULTI of a commit with its job's completion (`commit_and_finish`), by its text
# (short; never NOSCRIPT): the job's lock becomes 'hold:' .. token, so that BullMQ's
# completion after it fails, changing nothing, unless COMPLETE_HOLD (in store.py; by sha)
# ran to its end and set the lock back.
GUARD = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], 'hold:' .. ARGV[1], 'KEEPTTL') end"

# Sets a held job's lock back (see COMPLETE_HOLD in store.py). KEYS: lock  ARGV: token
UNHOLD = """
if redis.call('GET', KEYS[1]) == 'hold:' .. ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL') return 1 end
return 0
"""


class _Worker(bullmq.Worker):  # type: ignore[misc]
    """BullMQ's worker, failing jobs whose stored fields are not JSON instead of letting
    them cycle between active and waiting forever (BullMQ cannot even read them).

    Completing a job also takes the next one, in the same script call (BullMQ's
    ``fetchNext``, which its Python worker leaves unused), and the same slot runs it:
    one round trip per job instead of two (complete, then fetch). With ``preload`` set
    (standalone Redis), the same round trip also reads the next job's run state
    (``LOAD_NEXT``, pipelined after the completion), kept per lock token in ``next_states``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.next_jobs: dict[str, Any] = {}  # lock token -> the next job's raw data, fetched with a completion
        self.next_states: dict[str, Any] = {}  # lock token -> LOAD_NEXT's answer for that next job
        self.preload: list[Any] | None = None  # LOAD_NEXT's ARGV after the token (see preload_states)
        self.pooled: Any = None  # a client with a connection pool, for the combined round trips (see preload_states)
        self.load_next = self.client.register_script(LOAD_NEXT)
        complete = self.backend.moveToCompleted

        async def move_to_completed(job: Any, value: Any, remove: Any, token: str, fetch_next: bool = True) -> Any:
            fetch = self.fetches_next()
            if fetch and self.preload is not None:
                return await self.complete_and_load(job, value, remove, token)
            result = await complete(job, value, remove, token, fetch)
            if fetch:
                self.keep_next(token, result.get("result"))
            return result

        self.backend.moveToCompleted = move_to_completed

    def load_next_args(self, token: str, skip: Sequence[str] = ()) -> list[Any]:
        """``LOAD_NEXT``'s keys and arguments (after its key count) for a completion with ``token``."""
        assert self.preload is not None
        return [self.scripts.keys["active"], self.scripts.toKey(""), token, *self.preload, *skip]

    def keep_state(self, token: str, answer: Any) -> None:
        """Keep ``LOAD_NEXT``'s answer (``[queue id, run id, state]``) for the job the token runs next."""
        if isinstance(answer, list) and len(answer) == 3:
            self.next_states[token] = answer

    async def complete_and_load(self, job: Any, value: Any, remove: Any, token: str) -> dict[str, Any]:
        """BullMQ's moveToCompleted with fetch-next, and ``LOAD_NEXT``, in one pipeline."""
        finish = self.scripts.commands["moveToFinished"]
        keys, args = self.scripts.moveToCompletedArgs(job, value, remove, token, True)
        load_args = self.load_next_args(token)
        results: list[Any] = []
        client = self.pooled or self.client
        for attempt in (1, 2):
            async with client.pipeline(transaction=False) as pipe:
                pipe.evalsha(finish.sha, len(keys), *keys, *args)
                pipe.evalsha(self.load_next.sha, 1, *load_args)
                results = await pipe.execute(raise_on_error=False)
            if not isinstance(results[0], redis_errors.NoScriptError) or attempt == 2:
                break
            # Redis lost its script cache (a restart): load them, and complete again
            finish.sha = await client.script_load(finish.script)
            self.load_next.sha = await client.script_load(self.load_next.script)
        done = results[0]
        if isinstance(done, BaseException):
            raise done
        if isinstance(done, int) and done < 0:
            raise self.scripts.finishedErrors(
                {"code": done, "jobId": job.id, "command": "moveToFinished", "state": "active"}
            )  # fmt: skip
        if isinstance(results[1], redis_errors.NoScriptError):  # for the next completion
            self.load_next.sha = await client.script_load(self.load_next.script)
        nxt = raw2NextJobData(done) if done is not None else None
        self.keep_next(token, nxt)
        if self.next_jobs.get(token) is nxt:
            self.keep_state(token, results[1])
        return {"result": nxt, "finishedOn": args[1]}

    def fetches_next(self) -> bool:
        """Whether a completion may take the next job now (not while closing or paused)."""
        return not (self.closing or self.paused or self.forceClosing)

    def keep_next(self, token: str, data: Any) -> None:
        """Keep the next job a completion took (``[job data, id, limit until, delay until]``)."""
        if isinstance(data, list) and data and data[0]:
            self.next_jobs[token] = data

    async def processJob(self, job: Any, token: str) -> None:
        while True:
            await super().processJob(job, token)
            data = self.next_jobs.pop(token, None)
            if data is None:
                return
            job = await self.nextJobFromJobData(data[0], data[1], int(data[2] or 0), int(data[3] or 0), token)
            if job is None:
                return
            self.emit("active", job, "waiting")

    async def nextJobFromJobData(
        self,
        job_data: dict[str, Any] | None = None,
        job_id: str | None = None,
        limit_until: int = 0,
        delay_until: int = 0,
        token: str | None = None,
    ) -> Any:
        try:
            return await super().nextJobFromJobData(job_data, job_id, limit_until, delay_until, token)
        except ValueError as error:
            if not job_data or job_id is None:
                raise
            fixed = dict(job_data)
            for field, default in (("data", "{}"), ("opts", "{}"), ("progress", "0"), ("stacktrace", "[]")):
                try:
                    json.loads(fixed.get(field, default))
                except (TypeError, ValueError):
                    fixed[field] = default
            try:
                job = bullmq.Job.fromJSON(self, fixed, job_id)
            except Exception:
                raise error from None
            reason = f"job {job_id}: its data on the queue is not valid JSON ({error}); it cannot be run"
            log.error("%s; failing it", reason)
            job.token = token
            job.data = _poison_data(engine_job_id(str(job_id)))
            job.deferredFailure = reason  # BullMQ's own path: moved to failed, "failed" emitted
            return job


class BullMQJobQueue:
    """The [`JobQueue`][flowcraft.engine.JobQueue] on BullMQ: deterministic job ids (adding an
    id that exists is a no-op), stalled-job recovery for workers that die.

    Jobs are retried ``attempts`` times (with backoff) when their processor raises —
    which our workers only do for infrastructure errors; node failures are recorded on
    the run instead. ``lock_duration`` and ``stalled_interval`` (seconds) decide how
    fast a job held by a dead worker (``kill -9``) is handed to another one: after at
    most about ``lock_duration + stalled_interval``. ``max_stalled`` is how often a job
    may be recovered before it is failed. ``cluster``: ``redis_url`` is a node of a Redis
    Cluster, and ``name`` must then be a hash tag (see
    [`queue_names`][flowcraft.distributed.keys.queue_names]). Job ids on the queue are
    [`wire_job_id`][flowcraft.distributed.keys.wire_job_id]s (no ``:``).
    """

    def __init__(
        self,
        redis_url: str,
        *,
        name: str,
        prefix: str,
        attempts: int = 5,
        keep_finished: bool = False,
        lock_duration: float = LOCK_DURATION,
        stalled_interval: float = STALLED_INTERVAL,
        max_stalled: int = 3,
        cluster: bool = False,
    ) -> None:
        self.name = name
        self._cluster = cluster
        self._redis_url = redis_url
        self._prefix = prefix
        self._attempts = attempts
        self._keep = keep_finished
        self._lock_duration = lock_duration
        self._stalled_interval = stalled_interval
        self._max_stalled = max_stalled
        self._worker: Any = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._errors = ErrorLog()
        self._releasing: asyncio.Future[None] | None = None
        self._add_keys: list[str] | None = None  # addStandardJob's keys (see _add_and_finish)
        self._preload: list[Any] | None = None  # see preload_states
        self._hold: tuple[str, str] | None = None  # COMPLETE_HOLD and its sha, once loaded (see commit_and_finish)
        self._kept: Any = None
        self._pooled: Any = None
        with map_backend_errors():
            self._queue = bullmq.Queue(name, {"connection": _connection(redis_url, cluster), "prefix": prefix})

    def preload_states(self, run_key_prefix: str, inline_limit: int, kept: Any = None, pooled: Any = None) -> None:
        """Read the run state of every job a completion fetches in the completion's round
        trip (``LOAD_NEXT``; standalone Redis only: it reads keys it was not given), and
        let a commit that decides no successor go with it (`commit_and_finish`).

        ``run_key_prefix`` is ``<prefix>:run:{``; ``inline_limit`` the store's; ``kept``:
        engine job ids whose state the worker already has (not read again); ``pooled``: a
        redis-py client with a connection pool (the store's) for these round trips, so that
        the worker's jobs do not take turns on BullMQ's single connection.
        """
        if self._cluster:
            raise ValueError("preload_states needs a standalone Redis: LOAD_NEXT reads keys of other slots")
        self._preload = [run_key_prefix, inline_limit]
        self._kept = kept
        self._pooled = pooled
        if self._worker is not None:
            self._worker.preload, self._worker.pooled = self._preload, pooled

    def _opts(self, job: Job) -> dict[str, Any]:
        return {
            "jobId": wire_job_id(job.id, job.wait),  # a resumed job's own id: never the parked one's
            "attempts": self._attempts,
            "backoff": {"type": "exponential", "delay": 200},
            "removeOnComplete": not self._keep,
            "removeOnFail": 1000,
        }

    async def add(self, jobs: Sequence[Job]) -> None:
        """Add ``jobs`` in one round trip.

        Called by a job's processor (a node job enqueuing its successors), the same
        round trip also completes that job, in one transaction: the successors are all in
        the queue when the job that decided them is done (more than ``ADD_CHUNK`` of them:
        all but the last ``ADD_CHUNK`` go ahead, see ``_add_leading``).
        """
        if not jobs:
            return
        held = _held.get()
        # not on a cluster: redis-py runs no script in a cluster pipeline
        if (
            held is not None
            and held.owner is self
            and not held.finished
            and self._worker is not None
            and not self._cluster
        ):
            await self._add_and_finish(jobs, held)
            return
        async with map_backend_errors_async():
            if len(jobs) == 1:
                job = jobs[0]
                await self._queue.add("node", job.to_data(), self._opts(job))
            elif self._cluster:  # redis-py runs no script in a cluster pipeline: BullMQ's addBulk fails
                await asyncio.gather(*(self._queue.add("node", job.to_data(), self._opts(job)) for job in jobs))
            else:
                await self._queue.addBulk(
                    [{"name": "node", "data": job.to_data(), "opts": self._opts(job)} for job in jobs]
                )

    async def _add_and_finish(self, jobs: Sequence[Job], held: _Held) -> None:
        """``jobs`` added and the held job completed, in one MULTI/EXEC of BullMQ's own
        scripts (by sha: a pipeline that registers scripts spends a round trip on
        ``SCRIPT EXISTS``). If the held job cannot be completed (its lock was lost to
        stalled-job recovery), it is left to BullMQ as any other."""
        add, finish = self._queue.scripts.commands["addStandardJob"], self._worker.scripts.commands["moveToFinished"]
        job, token = held.job, held.token
        fetch = self._worker.fetches_next()  # and take the next job (often the successor just added)
        keys, args = self._worker.scripts.moveToCompletedArgs(
            job, None, job.opts.get("removeOnComplete", False), token, fetch
        )  # fmt: skip
        worker = self._worker
        load = fetch and worker.preload is not None  # and read the next job's state (LOAD_NEXT)
        load_args: list[Any] = []
        if load:  # not the successors whose state this worker keeps (a chain's)
            kept = self._kept or ()
            skip = [wire_job_id(item.id, item.wait) for item in jobs if item.id in kept]
            load_args = worker.load_next_args(token, skip)
        client = worker.pooled or self._queue.client
        async with map_backend_errors_async():
            jobs = await self._add_leading(client, add, jobs)  # those left go with the completion
            adds = self._add_args(jobs)
            for attempt in (1, 2):
                # packed in one pass (`transaction`): a fan-out's 1,000 adds are packed in about
                # 4 ms instead of 10 (redis-py's pipeline), while the other workers wait for them
                commands: list[Sequence[Any]] = [("EVALSHA", add.sha, 9, *add_args) for add_args in adds]
                commands.append(("EVALSHA", finish.sha, len(keys), *keys, *args))
                if load:
                    commands.append(("EVALSHA", worker.load_next.sha, 1, *load_args))
                results = await transaction(client, commands)
                state = results.pop() if load else None
                if isinstance(state, redis_errors.NoScriptError):  # for the next completion
                    worker.load_next.sha = await client.script_load(worker.load_next.script)
                if not any(isinstance(r, redis_errors.NoScriptError) for r in results) or attempt == 2:
                    break
                for script in (add, finish):  # Redis lost its script cache (a restart): load them, again
                    script.sha = await client.script_load(script.script)
                if not isinstance(results[-1], redis_errors.NoScriptError):  # the job was completed: add the rest
                    held.finished = not _failed(results[-1])
                    if fetch and isinstance(results[-1], list):
                        self._worker.keep_next(token, raw2NextJobData(results[-1]))
                        worker.keep_state(token, state)
                    missing = [item for item, r in zip(jobs, results, strict=False) if isinstance(r, BaseException)]
                    await self.add(missing)
                    return
        held.finished = not _failed(results[-1])
        if fetch and isinstance(results[-1], list):
            self._worker.keep_next(token, raw2NextJobData(results[-1]))
            worker.keep_state(token, state)
        for result in results[:-1]:
            if isinstance(result, BaseException):
                raise map_backend_error(result) from result

    def _add_args(self, jobs: Sequence[Job]) -> list[list[Any]]:
        """``addStandardJob``'s keys and arguments for each of ``jobs``."""
        add_keys = self._add_keys
        if add_keys is None:  # the same for every job of the queue
            add_keys = self._add_keys = self._queue.scripts.getKeys(
                ["wait", "paused", "meta", "id", "completed", "delayed", "active", "events", "marker"]
            )  # fmt: skip
        adds = []
        for item in jobs:
            queued = bullmq.Job(self._queue, "node", item.to_data(), {**self._queue.jobsOpts, **self._opts(item)})
            adds.append([*add_keys, *self._queue.scripts.addJobArgs(queued), queued.timestamp])
        return adds

    async def _add_leading(self, client: Any, add: Any, jobs: Sequence[Job]) -> Sequence[Job]:
        """Add all but the last ``ADD_CHUNK`` of a wide fan-out's ``jobs`` ahead, ``ADD_CHUNK``
        per MULTI, each packed as it goes; the rest (returned) go with the held job's
        completion. Other workers start on the first successors while the rest are
        packed and added: a fan-out of 1,000 has its first branch running about 40 ms
        sooner. The job is still completed only with its last successors, so a successor
        is missing from the queue only while the job that decided it is not done (a
        crash re-runs it, and it adds them again: BullMQ ignores an id it holds)."""
        while len(jobs) > ADD_CHUNK:
            commands = [("EVALSHA", add.sha, 9, *args) for args in self._add_args(jobs[:ADD_CHUNK])]
            jobs = jobs[ADD_CHUNK:]
            results = await transaction(client, commands)
            if any(isinstance(r, redis_errors.NoScriptError) for r in results):  # Redis lost its scripts
                add.sha = await client.script_load(add.script)
                results = await transaction(client, [("EVALSHA", add.sha, *command[2:]) for command in commands])
            for result in results:
                if isinstance(result, BaseException):
                    raise map_backend_error(result) from result
        return jobs

    async def commit_and_finish(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The held job's commit (``script``: ``COMPLETE_HOLD``, with ``keys`` and ``args``
        of ``COMPLETE``) and its completion (taking the next job, and that one's state), in
        one MULTI/EXEC: the commit's answer, or ``None`` when the job must be committed the
        usual way (the commit held the job, or could not run; the job is then completed
        only if it was, and its successors are enqueued on their own)."""
        held = _held.get()
        worker = self._worker
        assert held is not None
        assert worker is not None
        job, token = held.job, held.token
        lock = worker.scripts.toKey(job.id) + ":lock"
        fetch = worker.fetches_next()
        finish = worker.scripts.commands["moveToFinished"]
        fkeys, fargs = worker.scripts.moveToCompletedArgs(
            job, None, job.opts.get("removeOnComplete", False), token, fetch
        )
        load = fetch and worker.preload is not None
        client = worker.pooled or self._queue.client
        hold = self._hold
        if hold is None or hold[0] is not script:
            hold = self._hold = (script, await client.script_load(script))
        commands: list[Sequence[Any]] = [
            ("EVAL", GUARD, 1, lock, token),
            ("EVALSHA", hold[1], len(keys) + 1, *keys, lock, *args),  # the lock back only if it ran
            ("EVALSHA", finish.sha, len(fkeys), *fkeys, *fargs),
        ]
        if load:
            commands.append(("EVALSHA", worker.load_next.sha, 1, *worker.load_next_args(token)))
        results = await transaction(client, commands)
        guarded, committed, done = results[:3]
        if isinstance(done, redis_errors.NoScriptError):  # Redis lost its scripts: BullMQ loads its own again
            finish.sha = await client.script_load(finish.script)
        if load and isinstance(results[3], redis_errors.NoScriptError):  # for the next completion
            worker.load_next.sha = await client.script_load(worker.load_next.script)
        if isinstance(committed, redis_errors.NoScriptError):  # its lock held (GUARD): nothing changed
            self._hold = None  # loaded again at the next commit
            committed = ["hold", "", ""]
        failed = isinstance(guarded, BaseException) or isinstance(committed, BaseException)
        if not failed and str(committed[0]) == "hold":
            await client.eval(UNHOLD, 1, lock, token)
            return None
        held.finished = not _failed(done)  # after a failed commit, the job may be completed: the caller commits it
        if held.finished and fetch and isinstance(done, list):
            worker.keep_next(token, raw2NextJobData(done))
            if load:
                worker.keep_state(token, results[3])
        return None if failed else committed

    async def missing(self, job_ids: Sequence[str], waits: Mapping[str, str] | None = None) -> list[str]:
        """Which of ``job_ids`` the queue does not hold (in any state), in one round trip;
        ``waits``: job id -> the wait a job was resumed after (it is looked for under the
        queue id of that resumed delivery)."""
        if not job_ids:
            return []
        waits = waits or {}
        async with map_backend_errors_async():
            pipe = self._queue.client.pipeline(transaction=False)
            for job_id in job_ids:
                pipe.exists(self._queue.toKey(wire_job_id(job_id, waits.get(job_id))))
            found = await pipe.execute()
        return [job_id for job_id, exists in zip(job_ids, found, strict=True) if not exists]

    async def counts(self) -> dict[str, int]:
        """How many jobs are waiting, active, delayed, completed, failed."""
        states = ["waiting", "active", "delayed", "completed", "failed"]
        async with map_backend_errors_async():
            values = await self._queue.getJobCounts(*states)
        return {state: int(values.get(state, 0)) for state in states}

    async def state(self, job_id: str, wait: str | None = None) -> str:
        """The job's state in the queue: ``waiting`` (no worker took it yet), ``active``,
        ``delayed``, ``completed``, ``failed``, or ``unknown`` (removed or never added);
        ``wait``: of its delivery resumed after that wait."""
        async with map_backend_errors_async():
            return str(await self._queue.getJobState(wire_job_id(job_id, wait)))

    async def obliterate(self) -> None:
        """Delete the queue and all its jobs (tests, benchmarks)."""
        async with map_backend_errors_async():
            await self._queue.obliterate(force=True)

    async def serve(
        self,
        processor: JobProcessor,
        *,
        concurrency: int,
        on_failed: JobFailed | None = None,
    ) -> None:
        """Run ``processor`` over the queue's jobs, ``concurrency`` at a time, until
        [`close`][flowcraft.distributed.BullMQJobQueue.close]."""
        opts: dict[str, Any] = {
            "connection": _connection(self._redis_url, self._cluster),
            "prefix": self._prefix,
            "concurrency": concurrency,
            "lockDuration": int(self._lock_duration * 1000),
            "stalledInterval": int(self._stalled_interval * 1000),
            "maxStalledCount": self._max_stalled,
            "autorun": False,
            # Seconds an idle fetch blocks; short so close() never waits long on one.
            "drainDelay": 1,
            "runRetryDelay": 500,
        }

        async def process(job: Any, token: str) -> None:
            held = _Held(self, job, token)
            reset = _held.set(held)
            state = self._worker.next_states.pop(token, None) if self._worker.next_states else None
            pre = None
            if state is not None and str(state[0]) == str(job.id):  # read with its fetch: for this delivery only
                pre = preloaded.set((engine_job_id(str(job.id)), str(state[1]), state[2]))
            try:
                data = job.data if isinstance(job.data, dict) else {}
                await processor(Job.from_data(engine_job_id(str(job.id)), data))
            except JobDeferred as deferred:  # wait, then back to waiting, behind the jobs there
                await asyncio.sleep(deferred.delay)
                await self._release([(str(job.id), token)], push="LPUSH")
                raise DelayedError(str(deferred)) from None
            except Exception as error:
                if not held.finished:
                    raise
                log.warning("job %s failed after it was completed with its successors' enqueue: %s", job.id, error)
            finally:
                _held.reset(reset)
                if pre is not None:
                    preloaded.reset(pre)
            if held.finished:  # completed already: BullMQ must not complete it again
                raise DelayedError("completed with its successors' enqueue")

        def failed(job: Any, error: BaseException) -> None:
            if job is not None and isinstance(error, UnrecoverableError):
                log.error("job %s failed for good: %s", job.id, error)
            if on_failed is None or job is None:
                return
            attempts = int((job.opts or {}).get("attempts", 1) or 1)
            if int(job.attemptsMade or 0) + 1 < attempts and not isinstance(error, UnrecoverableError):
                return  # BullMQ retries it
            data = job.data if isinstance(job.data, dict) else {}
            if "r" not in data:
                return
            failed_job = Job.from_data(engine_job_id(str(job.id)), data)
            task = asyncio.ensure_future(on_failed(failed_job, map_backend_error(error)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        with map_backend_errors():
            self._worker = _Worker(self.name, process, opts)
        self._worker.preload, self._worker.pooled = self._preload, self._pooled
        self._worker.on("failed", failed)
        self._worker.on("error", self._errors)
        await self._worker.run()

    async def close(self, *, force: bool = False) -> None:
        """Stop taking jobs; wait for running ones (``force``: stop them and hand them back
        to the queue at once, for another worker)."""
        if self._worker is None:
            return
        if force and self._releasing is None:
            held = [(str(job.id), str(token)) for job, token in list(self._worker.jobs)]
            taken, self._worker.next_jobs = self._worker.next_jobs, {}  # taken by a completion, not started
            self._worker.next_states = {}
            held += [(str(data[1]), str(token)) for token, data in taken.items()]
            self._releasing = asyncio.ensure_future(self._force_close(held))
        if self._releasing is None:
            with contextlib.suppress(Exception):
                await self._worker.close()
        if self._releasing is not None:  # every close() returns only once the jobs are released
            await asyncio.shield(self._releasing)

    async def _force_close(self, held: Sequence[tuple[str, str]]) -> None:
        with contextlib.suppress(Exception):
            await self._worker.close(force=True)
        if held:
            await self._release(held)

    async def _release(self, held: Sequence[tuple[str, str]], *, push: str = "RPUSH") -> None:
        """Move jobs this worker stopped from active back to waiting (their lock token must
        still be ours: a job already taken over is left alone)."""
        keys = self._queue.keys
        names = ("active", "wait", "stalled", "meta", "marker", "events")
        script = self._queue.client.register_script(RELEASE)
        released = 0
        for job_id, token in held:
            try:
                args = [self._queue.toKey(""), job_id, token, push]
                released += int(await script(keys=[keys[name] for name in names], args=args))
            except Exception as error:  # it is left to stalled-job recovery
                log.warning("job %s not released (stalled-job recovery will hand it over): %s", job_id, error)
        if released and push == "RPUSH":
            log.info("released %d running job(s) to the queue", released)

    async def aclose(self) -> None:
        """Close the queue's connections."""
        with contextlib.suppress(Exception):
            await self._queue.close()
