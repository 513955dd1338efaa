"""Run state in Redis: context hash, delta write-back, done records, join sets, pending
set, status, cancellation and pub/sub.

Every step that must be atomic is one Lua script (:data:`COMPLETE`, :data:`FAIL`,
:data:`CANCEL`, :data:`CREATE`); reads are single pipelined round trips. Values are
codec-encoded text (:mod:`.codec`) — never pickles. Redis errors leave this module as
our own :class:`~flowcraft.distributed.errors.BackendError` subclasses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .keys import EVENT_STREAM_MAXLEN, Keys, RunKeys
from .queue import map_backend_errors_async

__all__ = ["COMPLETE", "Completion", "JobState", "RunStore"]

_FINISH = """
local function finish(default_ttl, stream, state)
  local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl')) or default_ttl
  local open = redis.call('HGETALL', KEYS[6])
  for x = 1, #open, 2 do
    redis.call('EXPIRE', ARGV[2] .. open[x] .. ':' .. open[x + 1], ttl)
  end
  for k = 1, 6 do redis.call('EXPIRE', KEYS[k], ttl) end
  if redis.call('HGET', KEYS[1], 'events') then
    redis.call('XADD', stream, 'MAXLEN', '~', @MAXLEN@, '*', 'end', state)
    redis.call('EXPIRE', stream, ttl)
  end
end
""".replace("@MAXLEN@", str(EVENT_STREAM_MAXLEN))

# KEYS: meta ctx pending done visits open events stream
# ARGV: ttl join_prefix job_id node action now run_id nsets (k v)* ndels k* nsucc (node count)* event*
COMPLETE = (
    _FINISH
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending' and status ~= 'running' then return {'skip', status or ''} end
local job = ARGV[3]
local prev = redis.call('HGET', KEYS[4], job)
if prev then return {'dup', prev, ''} end
if status == 'pending' then redis.call('HSET', KEYS[1], 'status', 'running') end
local node, action, run = ARGV[4], ARGV[5], ARGV[7]
local i = 8
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HDEL', KEYS[2], ARGV[i]); i = i + 1 end
n = tonumber(ARGV[i]); i = i + 1
local ids = {}
for _ = 1, n do
  local succ, count = ARGV[i], tonumber(ARGV[i + 1]); i = i + 2
  if count <= 1 then
    ids[#ids + 1] = run .. ':' .. succ .. ':' .. redis.call('HINCRBY', KEYS[5], succ, 1)
  else
    local v = redis.call('HGET', KEYS[6], succ)
    if not v then
      v = redis.call('HINCRBY', KEYS[5], succ, 1)
      redis.call('HSET', KEYS[6], succ, v)
    end
    local jk = ARGV[2] .. succ .. ':' .. v
    redis.call('SADD', jk, node)
    if redis.call('SCARD', jk) >= count then
      redis.call('DEL', jk)
      redis.call('HDEL', KEYS[6], succ)
      ids[#ids + 1] = run .. ':' .. succ .. ':' .. v
    end
  end
end
for x = i, #ARGV do redis.call('XADD', KEYS[8], 'MAXLEN', '~', @MAXLEN@, '*', 'e', ARGV[x]) end
for _, id in ipairs(ids) do redis.call('SADD', KEYS[3], id) end
redis.call('SREM', KEYS[3], job)
if redis.call('SCARD', KEYS[3]) == 0 then
  -- nothing runs any more: joins still waiting can get no further arrivals
  local open = redis.call('HGETALL', KEYS[6])
  for x = 1, #open, 2 do
    redis.call('DEL', ARGV[2] .. open[x] .. ':' .. open[x + 1])
    local id = run .. ':' .. open[x] .. ':' .. open[x + 1]
    ids[#ids + 1] = id
    redis.call('SADD', KEYS[3], id)
  end
  redis.call('DEL', KEYS[6])
end
local record = cjson.encode({a = action, j = ids})
redis.call('HSET', KEYS[4], job, record)
local final = ''
if redis.call('SCARD', KEYS[3]) == 0 then
  redis.call('HSET', KEYS[1], 'status', 'completed', 'last_action', action, 'ended_at', ARGV[6])
  finish(tonumber(ARGV[1]), KEYS[8], 'completed')
  redis.call('PUBLISH', KEYS[7], 'completed')
  final = 'completed'
end
return {'ok', record, final}
""".replace("@MAXLEN@", str(EVENT_STREAM_MAXLEN))
)

# KEYS: meta ctx pending done visits open events stream
# ARGV: ttl join_prefix node phase error_type message now event*
FAIL = (
    _FINISH
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending' and status ~= 'running' then return 0 end
for x = 8, #ARGV do redis.call('XADD', KEYS[8], 'MAXLEN', '~', @MAXLEN@, '*', 'e', ARGV[x]) end
redis.call('HSET', KEYS[1], 'status', 'failed', 'error_node', ARGV[3], 'error_phase', ARGV[4],
  'error_type', ARGV[5], 'error_message', ARGV[6], 'ended_at', ARGV[7])
finish(tonumber(ARGV[1]), KEYS[8], 'failed')
redis.call('PUBLISH', KEYS[7], 'failed')
return 1
""".replace("@MAXLEN@", str(EVENT_STREAM_MAXLEN))
)

# KEYS: meta ctx pending done visits open events stream control
# ARGV: ttl join_prefix reason now run_id
CANCEL = (
    _FINISH
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return '' end
if status ~= 'pending' and status ~= 'running' then return status end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'cancel_reason', ARGV[3], 'ended_at', ARGV[4])
finish(tonumber(ARGV[1]), KEYS[8], 'cancelled')
redis.call('PUBLISH', KEYS[7], 'cancelled')
redis.call('PUBLISH', KEYS[9], 'cancel ' .. ARGV[5])
return 'cancelled'
"""
)

# KEYS: meta ctx pending visits stream
# ARGV: blueprint_hash params now ttl nctx (k v)* nstart (node job)* [run_started_event]
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'pending', 'blueprint', ARGV[1], 'params', ARGV[2], 'created_at', ARGV[3],
  'ttl', ARGV[4])
local i = 5
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  redis.call('HSET', KEYS[4], ARGV[i], 1)
  redis.call('SADD', KEYS[3], ARGV[i + 1])
  i = i + 2
end
if ARGV[i] then
  redis.call('HSET', KEYS[1], 'events', '1')
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', @MAXLEN@, '*', 'e', ARGV[i])
end
return 1
""".replace("@MAXLEN@", str(EVENT_STREAM_MAXLEN))

# KEYS: stream
# ARGV: event*  (only while the stream exists: a late event never recreates an expired stream)
ADD_EVENTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for x = 1, #ARGV do redis.call('XADD', KEYS[1], 'MAXLEN', '~', @MAXLEN@, '*', 'e', ARGV[x]) end
return #ARGV
""".replace("@MAXLEN@", str(EVENT_STREAM_MAXLEN))


@dataclasses.dataclass(frozen=True, slots=True)
class JobState:
    """What a worker reads before running a job (one round trip)."""

    status: str | None
    params: str | None
    context: dict[str, str]
    done: str | None
    events: bool = False
    """Whether the run was started with events (workers then write node events)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Completion:
    """The result of the atomic completion step.

    ``outcome`` is ``"ok"`` (recorded now), ``"dup"`` (recorded before: a redelivery)
    or ``"skip"`` (the run had already ended). ``successors`` are the job ids to enqueue;
    ``action`` the encoded action they receive; ``final`` is ``"completed"`` when this
    step ended the run.
    """

    outcome: str
    action: str
    successors: list[str]
    final: str = ""


def parse_done(record: str) -> tuple[str, list[str]]:
    """``(encoded action, successor job ids)`` of a done record."""
    data = json.loads(record)
    ids = data.get("j") or []
    return str(data["a"]), [str(x) for x in ids] if isinstance(ids, list) else []


def connect(redis_url: str, *, single: bool = False) -> aioredis.Redis:
    """A redis-py asyncio client for ``redis_url`` (``redis://``, ``rediss://``, with auth)."""
    return aioredis.Redis.from_url(
        redis_url,
        decode_responses=True,
        single_connection_client=single,
        socket_connect_timeout=5,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, BusyLoadingError],
    )


class RunStore:
    """All reads and writes of run state, for clients and workers."""

    def __init__(self, redis_url: str, *, prefix: str, run_ttl: int) -> None:
        self.keys = Keys(prefix)
        self.run_ttl = run_ttl
        self.redis_url = redis_url
        self.client = connect(redis_url)
        self._complete = self.client.register_script(COMPLETE)
        self._fail = self.client.register_script(FAIL)
        self._cancel = self.client.register_script(CANCEL)
        self._create = self.client.register_script(CREATE)
        self._add_events = self.client.register_script(ADD_EVENTS)

    async def aclose(self) -> None:
        """Close the connection pool."""
        with contextlib.suppress(Exception):
            await self.client.aclose()

    @staticmethod
    def _fixed(rk: RunKeys) -> list[str]:
        return [rk.meta, rk.ctx, rk.pending, rk.done, rk.visits, rk.open, rk.events, rk.stream]

    # ---- client side ---------------------------------------------------------------------

    async def create_run(
        self,
        run_id: str,
        *,
        blueprint_hash: str,
        blueprint_json: str,
        blueprint_ttl: int,
        params: str,
        context: Mapping[str, str],
        starts: Sequence[tuple[str, str]],
        started_event: str | None = None,
    ) -> bool:
        """Store the blueprint and a new run (``starts``: ``(node id, job id)``); ``False`` if it exists.

        With ``started_event`` (an encoded ``RunStarted``) the run records events: the
        ``events`` flag is set in its meta and the event opens the run's event stream.
        """
        rk = self.keys.run(run_id)
        args: list[Any] = [blueprint_hash, params, _now(), self.run_ttl, len(context)]
        for key, value in context.items():
            args += [key, value]
        args.append(len(starts))
        for node, job in starts:
            args += [node, job]
        if started_event is not None:
            args.append(started_event)
        async with map_backend_errors_async():
            pipe = self.client.pipeline(transaction=False)
            pipe.set(self.keys.blueprint(blueprint_hash), blueprint_json, ex=blueprint_ttl)
            await self._create(keys=[rk.meta, rk.ctx, rk.pending, rk.visits, rk.stream], args=args, client=pipe)
            _, created = await pipe.execute()
        return bool(created)

    async def meta(self, run_id: str) -> dict[str, str]:
        """The run's meta hash (empty when the run does not exist)."""
        async with map_backend_errors_async():
            result = await self.client.hgetall(self.keys.run(run_id).meta)
        return cast(dict[str, str], result)

    async def context(self, run_id: str) -> dict[str, str]:
        """The run's encoded context."""
        async with map_backend_errors_async():
            result = await self.client.hgetall(self.keys.run(run_id).ctx)
        return cast(dict[str, str], result)

    async def cancel(self, run_id: str, reason: str) -> str:
        """Mark the run cancelled and tell every worker; returns the state it ends in ('' = unknown run)."""
        rk = self.keys.run(run_id)
        async with map_backend_errors_async():
            result = await self._cancel(
                keys=[*self._fixed(rk), self.keys.control],
                args=[self.run_ttl, rk.join_prefix, reason, _now(), run_id],
            )
        return str(result or "")

    @contextlib.asynccontextmanager
    async def subscription(self, channel: str) -> AsyncIterator[aioredis.client.PubSub]:
        """A pub/sub connection subscribed to ``channel``, closed on exit."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            async with map_backend_errors_async():
                await pubsub.subscribe(channel)
            yield pubsub
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    # ---- worker side ---------------------------------------------------------------------

    async def blueprint(self, blueprint_hash: str) -> str | None:
        """The stored blueprint JSON, or ``None``."""
        async with map_backend_errors_async():
            result = await self.client.get(self.keys.blueprint(blueprint_hash))
        return cast("str | None", result)

    async def load(self, run_id: str, job_id: str) -> JobState:
        """Status, params, context and done record of a job, in one round trip."""
        rk = self.keys.run(run_id)
        async with map_backend_errors_async():
            pipe = self.client.pipeline(transaction=False)
            pipe.hmget(rk.meta, "status", "params", "events")
            pipe.hgetall(rk.ctx)
            pipe.hget(rk.done, job_id)
            (status, params, events), context, done = await pipe.execute()
        return JobState(status, params, context, done, bool(events))

    async def add_events(self, run_id: str, events: Sequence[str]) -> None:
        """Append encoded events to the run's event stream (if it still exists)."""
        if not events:
            return
        async with map_backend_errors_async():
            await self._add_events(keys=[self.keys.run(run_id).stream], args=list(events))

    async def read_events(
        self, run_id: str, after: str, *, block: float | None, count: int = 500
    ) -> list[tuple[str, dict[str, str]]]:
        """Entries of the run's event stream after id ``after`` (waiting up to ``block`` s for one)."""
        key = self.keys.run(run_id).stream
        async with map_backend_errors_async():
            result = await self.client.xread(
                {key: after}, count=count, block=None if block is None else max(1, int(block * 1000))
            )
        entries: list[tuple[str, dict[str, str]]] = []
        streams = cast("list[tuple[str, list[tuple[str, dict[str, str]]]]] | None", result)
        for _stream, items in streams or ():
            entries.extend((str(entry_id), dict(fields)) for entry_id, fields in items)
        return entries

    async def still_pending(self, run_id: str, job_ids: Sequence[str]) -> list[bool]:
        """Which of ``job_ids`` are still in the run's pending set."""
        if not job_ids:
            return []
        async with map_backend_errors_async():
            flags = await self.client.smismember(self.keys.run(run_id).pending, list(job_ids))
        return [bool(f) for f in flags]

    async def complete(
        self,
        run_id: str,
        job_id: str,
        node_id: str,
        action: str,
        *,
        sets: Mapping[str, str],
        deletes: Sequence[str],
        successors: Sequence[tuple[str, int]],
        events: Sequence[str] = (),
    ) -> Completion:
        """The atomic completion step: delta, done record, joins, pending set, end of run.

        ``events`` (encoded) are appended to the run's event stream when the step records.
        """
        rk = self.keys.run(run_id)
        args: list[Any] = [self.run_ttl, rk.join_prefix, job_id, node_id, action, _now(), run_id, len(sets)]
        for key, value in sets.items():
            args += [key, value]
        args.append(len(deletes))
        args += list(deletes)
        args.append(len(successors))
        for node, count in successors:
            args += [node, count]
        args += events
        async with map_backend_errors_async():
            result = await self._complete(keys=self._fixed(rk), args=args)
        outcome = str(result[0])
        if outcome == "skip":
            return Completion("skip", action, [])
        encoded_action, ids = parse_done(str(result[1]))
        return Completion(outcome, encoded_action, ids, str(result[2] or ""))

    async def fail(
        self, run_id: str, *, node_id: str, phase: str, error_type: str, message: str, events: Sequence[str] = ()
    ) -> bool:
        """Mark the run failed (if it is still active) and wake its clients (``events``: as for :meth:`complete`)."""
        rk = self.keys.run(run_id)
        async with map_backend_errors_async():
            result = await self._fail(
                keys=self._fixed(rk),
                args=[self.run_ttl, rk.join_prefix, node_id, phase, error_type, message, _now(), *events],
            )
        return bool(result)


def _now() -> str:
    return f"{time.time():.6f}"
