"""Run state in Redis: context hash, delta write-back, done records, join sets, pending
set, status, cancellation and pub/sub.

Every step that must be atomic is one Lua script (`COMPLETE`, `FAIL`,
`CANCEL`, `CREATE`); reads are single pipelined round trips. Values are
codec-encoded text (`codec`) — never pickles. Redis errors leave this module as
our own [`BackendError`][flowcraft.distributed.BackendError] subclasses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

import redis
import redis.asyncio as aioredis

from ..engine.jobs import (
    Charge,
    Commit,
    Completion,
    Failure,
    Job,
    JobState,
    NewRun,
    Park,
    Resolution,
    Resolved,
    RunSummary,
    Usage,
    WaitRecord,
    job_id_prefix,
)
from ..engine.topics import TopicSubscription
from .connection import MAX_CONNECTIONS, POOL_TIMEOUT, connect
from .keys import BLUEPRINT_TTL, EVENT_STREAM_MAXLEN, MEMO_TTL, Keys, RunKeys
from .loading import LOAD, preloaded
from .queue import finishing_queue, map_backend_errors, map_backend_errors_async

__all__ = ["CHARGE", "COMPLETE", "COMPLETE_HOLD", "RedisRunStore", "connect", "parse_done"]

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
# ARGV: ttl join_prefix job_id node action now nexpects (k expected)* nsets (k v)* ndels k*
#       nsucc (node prefix count)*
#       njoins (join prefix nreach reacher*)* event*
# The fan-in counts and the release facts (who can reach each join) come from the caller
# (flowcraft.topology.fan_in); this script applies them and derives nothing. Returns
# {outcome, action, final, node1, job1, node2, job2, ...}, or {'conflict', '', '', key1,
# value1, ...} when an expected key changed (nothing written). njoins = -1: the caller
# left the release facts out (they can be long: every node that reaches a join); when this
# commit may release a waiting join, the script changes nothing and returns
# {'joins', '', ''}, and the caller sends the commit again with them.
COMPLETE = (
    _FINISH
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending' and status ~= 'running' and status ~= 'awaiting' then return {'skip', '', ''} end
local job = ARGV[3]
local prev = redis.call('HGET', KEYS[4], job)
if prev then
  local rec = cjson.decode(prev)
  local out = {'dup', rec.a, ''}
  for _, pair in ipairs(rec.j) do out[#out + 1] = pair[1]; out[#out + 1] = pair[2] end
  return out
end
-- optimistic concurrency (ctx.update, merge policies): refuse, changing nothing, when a
-- key changed since the node read it ('' = not set); answer the keys' values now
local n = tonumber(ARGV[7])
local i = 8
if n > 0 then
  local stale = {'conflict', '', ''}
  for _ = 1, n do
    local now = redis.call('HGET', KEYS[2], ARGV[i]) or ''
    if now ~= ARGV[i + 1] then stale[#stale + 1] = ARGV[i]; stale[#stale + 1] = now end
    i = i + 2
  end
  if #stale > 3 then return stale end
end
local function joins_needed(i)
  i = i + 1 + 2 * tonumber(ARGV[i])
  i = i + 1 + tonumber(ARGV[i])
  local n = tonumber(ARGV[i]); i = i + 1
  local fanin = false
  for _ = 1, n do
    if tonumber(ARGV[i + 2]) > 1 then fanin = true end
    i = i + 3
  end
  if tonumber(ARGV[i]) >= 0 then return false end
  local open = redis.call('HLEN', KEYS[6]) > 0
  if n == 0 then return open end
  -- the release step below runs when nothing is left pending: at most this job is now
  return (open or fanin) and redis.call('HLEN', KEYS[3]) <= 1
end
if joins_needed(i) then return {'joins', '', ''} end
if status == 'pending' then redis.call('HSET', KEYS[1], 'status', 'running') end
local node, action = ARGV[4], ARGV[5]
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2 end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HDEL', KEYS[2], ARGV[i]); i = i + 1 end
n = tonumber(ARGV[i]); i = i + 1
local ended = n == 0
local out = {}
for _ = 1, n do
  local succ, prefix, count = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]); i = i + 3
  if count <= 1 then
    out[#out + 1] = {succ, prefix .. redis.call('HINCRBY', KEYS[5], succ, 1)}
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
      out[#out + 1] = {succ, prefix .. v}
    end
  end
end
local joins = {}
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local join, prefix, m = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]); i = i + 3
  local reach = {}
  for _ = 1, m do reach[ARGV[i]] = true; i = i + 1 end
  joins[join] = {prefix = prefix, reach = reach}
end
for x = i, #ARGV do redis.call('XADD', KEYS[8], 'MAXLEN', '~', @MAXLEN@, '*', 'e', ARGV[x]) end
for _, pair in ipairs(out) do redis.call('HSET', KEYS[3], pair[2], pair[1]) end
redis.call('HDEL', KEYS[3], job)
local open = redis.call('HGETALL', KEYS[6])
if #open > 0 and (ended or redis.call('HLEN', KEYS[3]) == 0) then
  -- a branch ended (or nothing runs): release the waiting joins that no pending job and
  -- no other waiting join can reach
  local running = redis.call('HVALS', KEYS[3])
  local ready = {}
  for x = 1, #open, 2 do
    local info = joins[open[x]]
    local blocked = #running > 0
    if info then
      blocked = false
      for _, r in ipairs(running) do if info.reach[r] then blocked = true; break end end
      if not blocked then
        for y = 1, #open, 2 do
          if y ~= x and info.reach[open[y]] then blocked = true; break end
        end
      end
    end
    if not blocked then ready[#ready + 1] = x end
  end
  if #ready == 0 and #running == 0 then
    for x = 1, #open, 2 do ready[#ready + 1] = x end
  end
  for _, x in ipairs(ready) do
    local succ, v = open[x], open[x + 1]
    redis.call('DEL', ARGV[2] .. succ .. ':' .. v)
    redis.call('HDEL', KEYS[6], succ)
    local info = joins[succ]
    local prefix = info and info.prefix or ''
    local id = prefix .. v
    out[#out + 1] = {succ, id}
    redis.call('HSET', KEYS[3], id, succ)
  end
end
redis.call('HSET', KEYS[4], job, cjson.encode({a = action, j = out}))
local final = ''
local left = redis.call('HLEN', KEYS[3])
if left == 0 then
  redis.call('HSET', KEYS[1], 'status', 'completed', 'last_action', action, 'ended_at', ARGV[6])
  finish(tonumber(ARGV[1]), KEYS[8], 'completed')
  redis.call('PUBLISH', KEYS[7], 'completed')
  final = 'completed'
elseif #out == 0 and tonumber(redis.call('HGET', KEYS[1], 'parked') or '0') >= left then
  -- what is left waits for input or a timer
  redis.call('HSET', KEYS[1], 'status', 'awaiting')
  redis.call('PUBLISH', KEYS[7], 'awaiting')
  final = 'awaiting'
end
local result = {'ok', action, final}
for _, pair in ipairs(out) do result[#result + 1] = pair[1]; result[#result + 1] = pair[2] end
return result
""".replace("@MAXLEN@", str(EVENT_STREAM_MAXLEN))
)

# KEYS: COMPLETE's, then the BullMQ lock of the job (<prefix>:<queue>:<queue id>:lock)
# ARGV: COMPLETE's
# COMPLETE for a commit sent in one MULTI/EXEC with BullMQ's completion of its job (a single
# Redis only: the lock is in the queue's slot), by sha, right after ``GUARD`` (in
# flowcraft.distributed.queue), which set the lock to 'hold:' .. token: BullMQ's completion
# after it fails, changing nothing, unless this script sets the lock back, which it does
# only when it ran to its end (so a NOSCRIPT, as after a Redis restart, never lets the
# completion go without the commit). A commit that decides no successor runs as COMPLETE;
# one that may decide or release a successor (or is a redelivery's, or must compare keys)
# changes nothing (the lock stays held) and returns {'hold', '', ''}; the worker sets the
# lock back and commits the usual way.
_HOLD = """
local function hold() return {'hold', '', ''} end
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'pending' or st == 'running' or st == 'awaiting' then
  if tonumber(ARGV[7]) > 0 or redis.call('HEXISTS', KEYS[4], ARGV[3]) == 1 then return hold() end
  if redis.call('HLEN', KEYS[3]) <= 1 then return hold() end
  local i = 8
  i = i + 1 + 2 * tonumber(ARGV[i])
  i = i + 1 + tonumber(ARGV[i])
  local n = tonumber(ARGV[i]); i = i + 1
  if n == 0 and redis.call('HLEN', KEYS[6]) > 0 then return hold() end
  for _ = 1, n do
    local succ, count = ARGV[i], tonumber(ARGV[i + 2]); i = i + 3
    if count <= 1 then return hold() end
    local v = redis.call('HGET', KEYS[6], succ)
    if v then
      local jk = ARGV[2] .. succ .. ':' .. v
      if redis.call('SCARD', jk) + 1 - redis.call('SISMEMBER', jk, ARGV[4]) >= count then return hold() end
    end
  end
end
local function commit()
"""
_UNHOLD_AFTER = """
end
local result = commit()
local lock = redis.call('GET', KEYS[9])
if lock and string.sub(lock, 1, 5) == 'hold:' then redis.call('SET', KEYS[9], string.sub(lock, 6), 'KEEPTTL') end
return result
"""
COMPLETE_HOLD = _FINISH + _HOLD + COMPLETE[len(_FINISH) :] + _UNHOLD_AFTER

# KEYS: meta waits events(channel) pending
# ARGV: job_id wait_id record(json) now
# Stores the wait (once) and counts its job as parked; the run is awaiting when every
# pending job is parked. Returns the run's state.
PARK = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending' and status ~= 'running' and status ~= 'awaiting' then return status or '' end
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'parked', 1)
end
local pending = redis.call('HLEN', KEYS[4])
if tonumber(redis.call('HGET', KEYS[1], 'parked') or '0') >= pending then
  redis.call('HSET', KEYS[1], 'status', 'awaiting')
  redis.call('PUBLISH', KEYS[3], 'awaiting')
  return 'awaiting'
end
return status
"""

# KEYS: meta waits pending
# ARGV: wait_id value action key now
# Compare-and-set on the wait being open. Returns {outcome, state, record-json-or-'', node}.
RESOLVE = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'unknown', '', '', ''} end
local text = redis.call('HGET', KEYS[2], ARGV[1])
if not text then return {'unknown', status, '', ''} end
local rec = cjson.decode(text)
if status ~= 'pending' and status ~= 'running' and status ~= 'awaiting' then return {'ended', status, text, ''} end
if rec.state ~= 'open' then
  if ARGV[4] ~= '' and rec.key == ARGV[4] and rec.value == ARGV[2] and rec.action == ARGV[3] then
    return {'same', status, text, ''}
  end
  return {'taken', status, text, ''}
end
rec.state = 'resolved'; rec.value = ARGV[2]; rec.action = ARGV[3]; rec.resolved_at = ARGV[5]
if ARGV[4] ~= '' then rec.key = ARGV[4] end
local updated = cjson.encode(rec)
redis.call('HSET', KEYS[2], ARGV[1], updated)
redis.call('HINCRBY', KEYS[1], 'parked', -1)
redis.call('HSET', KEYS[1], 'status', 'running')
return {'ok', 'running', updated, redis.call('HGET', KEYS[3], rec.job) or ''}
"""

# KEYS: meta ctx pending done visits open events stream
# ARGV: ttl join_prefix node phase error_type message now run_id control state ndetails (k v)* event*
# (control: the channel told to abort the run's running nodes, '' = none; an argument, not a
# key: it is no run key, and a Redis Cluster wants every key of a script in one slot)
FAIL = (
    _FINISH
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending' and status ~= 'running' and status ~= 'awaiting' then return 0 end
local i = 12
local n = tonumber(ARGV[11])
for _ = 1, n do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
for x = i, #ARGV do redis.call('XADD', KEYS[8], 'MAXLEN', '~', @MAXLEN@, '*', 'e', ARGV[x]) end
redis.call('HSET', KEYS[1], 'status', ARGV[10], 'error_node', ARGV[3], 'error_phase', ARGV[4],
  'error_type', ARGV[5], 'error_message', ARGV[6], 'ended_at', ARGV[7])
finish(tonumber(ARGV[1]), KEYS[8], ARGV[10])
redis.call('PUBLISH', KEYS[7], ARGV[10])
if ARGV[9] ~= '' then redis.call('PUBLISH', ARGV[9], 'cancel ' .. ARGV[8]) end
return 1
""".replace("@MAXLEN@", str(EVENT_STREAM_MAXLEN))
)

# KEYS: meta done
# ARGV: kind amount limit ('' = none) admit ('1'/'0') key ('' = none)
# The steps of RunStore.charge: usage is a JSON object in meta's "usage" field; a keyed
# charge leaves the mark "charge:<key>:<kind>" in the done hash (expires with the run).
CHARGE = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending' and status ~= 'running' and status ~= 'awaiting' then return {'inactive', '0'} end
local kind, amount, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local raw = redis.call('HGET', KEYS[1], 'usage')
local usage = {}
if raw then usage = cjson.decode(raw) end
local used = tonumber(usage[kind]) or 0
local mark = nil
if ARGV[5] ~= '' then
  mark = 'charge:' .. ARGV[5] .. ':' .. kind
  if redis.call('HEXISTS', KEYS[2], mark) == 1 then return {'ok', tostring(used)} end
end
if ARGV[4] == '1' and limit and used + amount > limit then return {'exceeded', tostring(used)} end
used = used + amount
usage[kind] = used
redis.call('HSET', KEYS[1], 'usage', cjson.encode(usage))
if mark then redis.call('HSET', KEYS[2], mark, '1') end
if limit and used > limit then return {'exceeded', tostring(used)} end
return {'ok', tostring(used)}
"""

# KEYS: meta ctx pending done visits open events stream
# ARGV: ttl join_prefix reason now run_id control (the control channel: see FAIL)
CANCEL = (
    _FINISH
    + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return '' end
if status ~= 'pending' and status ~= 'running' and status ~= 'awaiting' then return status end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'cancel_reason', ARGV[3], 'ended_at', ARGV[4])
finish(tonumber(ARGV[1]), KEYS[8], 'cancelled')
redis.call('PUBLISH', KEYS[7], 'cancelled')
redis.call('PUBLISH', ARGV[6], 'cancel ' .. ARGV[5])
return 'cancelled'
"""
)

# KEYS: meta ctx pending visits stream
# ARGV: blueprint_hash params now ttl nctx (k v)* nstart (node job)* budget ('' = none) [run_started_event]
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
  redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i])
  i = i + 2
end
if ARGV[i] ~= '' then redis.call('HSET', KEYS[1], 'budget', ARGV[i]) end
i = i + 1
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


CONTEXT_INLINE_BYTES = 64 * 1024
"""Context values longer than this (encoded, in bytes) are not sent with a job's state:
a node that reads one fetches it then (``HMGET``), so a job does not move the large
values its node does not read."""

JOINS_INLINE = 64
"""A commit sends the fan-in release facts only when they are this short (in node ids);
longer ones only when the script asks for them (the commit may release a join)."""


def parse_done(record: str) -> Completion:
    """The [`Completion`][flowcraft.engine.Completion] a stored done record stands for (outcome ``"dup"``)."""
    data = json.loads(record)
    pairs = data.get("j") or []
    successors = tuple((str(p[0]), str(p[1])) for p in pairs) if isinstance(pairs, list) else ()
    return Completion("dup", str(data["a"]), successors)


def _completion(result: Sequence[Any]) -> Completion:
    items = [str(x) for x in result]
    pairs = tuple((items[i], items[i + 1]) for i in range(3, len(items) - 1, 2))
    return Completion(items[0], items[1], pairs, items[2])


log = logging.getLogger("flowcraft.distributed.store")

RUNS_KEPT = 1024
"""Runs whose keys and commit arguments a store keeps built (all are dropped past it)."""


class _Hub:
    """Every pub/sub subscription of one store on one connection: a reader task routes
    each message to the listeners of its channel (so a thousand clients waiting for their
    runs hold one connection, not a thousand)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._pubsub: aioredis.client.PubSub | None = None
        self._listeners: dict[str, set[asyncio.Queue[str]]] = {}
        self._subscribed: set[str] = set()
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[TopicSubscription]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._listeners.setdefault(channel, set()).add(queue)
        try:
            await self._sync(channel)
            yield TopicSubscription(queue)
        finally:
            listeners = self._listeners.get(channel)
            if listeners is not None:
                listeners.discard(queue)
                if not listeners:
                    del self._listeners[channel]
            with contextlib.suppress(Exception):
                await self._sync(channel)

    async def _sync(self, channel: str) -> None:
        """(Un)subscribe ``channel`` so that Redis sends it exactly while it has listeners."""
        async with self._lock:
            wanted = channel in self._listeners
            if wanted == (channel in self._subscribed):
                return
            if self._pubsub is None:
                self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            async with map_backend_errors_async():
                if wanted:
                    await self._pubsub.subscribe(channel)
                    self._subscribed.add(channel)
                else:
                    self._subscribed.discard(channel)
                    await self._pubsub.unsubscribe(channel)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        """Route messages until closed; connection errors are ridden out (redis-py
        subscribes again on reconnect, and waiting clients poll meanwhile)."""
        while True:
            pubsub = self._pubsub
            if pubsub is None:
                return
            try:
                message = await pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.debug("pub/sub connection: %s; reconnecting", error)
                await asyncio.sleep(0.5)
                continue
            if not message:
                continue
            channel, data = message.get("channel"), message.get("data")
            if isinstance(channel, str) and isinstance(data, str):
                for queue in self._listeners.get(channel, ()):
                    queue.put_nowait(data)

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        self._subscribed.clear()


class RedisRunStore:
    """The [`RunStore`][flowcraft.engine.RunStore] on Redis: every write step one Lua script.

    A job's state is one script too (`load`); context values longer than
    ``inline_limit`` bytes are left out of it and fetched when the node reads them
    ([`context_values`][flowcraft.distributed.RedisRunStore.context_values]).
    """

    def __init__(
        self,
        redis_url: str,
        *,
        prefix: str,
        run_ttl: int,
        blueprint_ttl: int = BLUEPRINT_TTL,
        max_connections: int = MAX_CONNECTIONS,
        pool_timeout: float | None = POOL_TIMEOUT,
        cluster: bool = False,
        inline_limit: int = CONTEXT_INLINE_BYTES,
        announce_queue: str | None = None,
    ) -> None:
        self.keys = Keys(prefix)
        self.cluster = cluster
        self.announce_queue = announce_queue
        """The queue whose workers `create` tells about the run's graph (``None``: none)."""
        self.run_ttl = run_ttl
        self.blueprint_ttl = blueprint_ttl
        self.redis_url = redis_url
        self.client = connect(redis_url, max_connections=max_connections, pool_timeout=pool_timeout, cluster=cluster)
        self._hub = _Hub(self.client)
        self._complete = self.client.register_script(COMPLETE)
        self._load = self.client.register_script(LOAD)
        self.inline_limit = inline_limit
        self._sync_client: Any = None
        self._fail = self.client.register_script(FAIL)
        self._cancel = self.client.register_script(CANCEL)
        self._create = self.client.register_script(CREATE)
        self._add_events = self.client.register_script(ADD_EVENTS)
        self._charge = self.client.register_script(CHARGE)
        self._park = self.client.register_script(PARK)
        self._resolve = self.client.register_script(RESOLVE)
        self._keys_of: dict[str, tuple[RunKeys, list[str]]] = {}
        self._joins_of: dict[str, tuple[Mapping[str, frozenset[str]], list[Any]]] = {}

    def __repr__(self) -> str:
        host = self.redis_url.rsplit("@", 1)[-1]  # never show a password
        return f"Redis ({host}, prefix {self.keys.prefix!r})"

    async def aclose(self) -> None:
        """Close the pub/sub connection and the connection pool."""
        await self._hub.aclose()
        with contextlib.suppress(Exception):
            await self.client.aclose()
        if self._sync_client is not None:
            with contextlib.suppress(Exception):
                self._sync_client.close()
            self._sync_client = None

    @staticmethod
    def _fixed(rk: RunKeys) -> list[str]:
        return [rk.meta, rk.ctx, rk.pending, rk.done, rk.visits, rk.open, rk.events, rk.stream]

    def _run_keys(self, run_id: str) -> tuple[RunKeys, list[str]]:
        """The run's keys and the fixed keys of its commit (kept for the runs in use)."""
        found = self._keys_of.get(run_id)
        if found is None:
            if len(self._keys_of) >= RUNS_KEPT:
                self._keys_of.clear()
            rk = self.keys.run(run_id)
            found = self._keys_of[run_id] = (rk, self._fixed(rk))
        return found

    def _joins(self, run_id: str, joins: Mapping[str, frozenset[str]]) -> list[Any]:
        """A commit's release-facts arguments: the same for every job of a run (its graph's
        joins), so built once per run and graph (``joins`` is the graph's plan's own mapping)."""
        found = self._joins_of.get(run_id)
        if found is not None and found[0] is joins:
            return found[1]
        built: list[Any] = [len(joins)]
        for join, reachers in joins.items():
            built += [join, job_id_prefix(run_id, join), len(reachers), *reachers]
        if len(self._joins_of) >= RUNS_KEPT:
            self._joins_of.clear()
        self._joins_of[run_id] = (joins, built)  # holding joins keeps the identity check sound
        return built

    # ---- client side ---------------------------------------------------------------------

    async def create(self, run: NewRun) -> bool:
        """Store the graph and a new run with its start job pending; ``False`` if it exists.

        With ``announce_queue`` (standalone Redis), the same round trip publishes
        ``"graph <key> <queue>"`` on the control channel: that queue's workers that do not
        hold the graph yet hydrate it then, not when the first of its jobs reaches each.

        With ``run.started_event`` the run records events: the ``events`` flag is set in
        its meta and the event opens the run's event stream.
        """
        rk = self.keys.run(run.run_id)
        args: list[Any] = [run.graph, run.params, _now(), self.run_ttl, len(run.context)]
        for key, value in run.context.items():
            args += [key, value]
        args += [1, run.start.node_id, run.start.id, run.budget or ""]
        if run.started_event is not None:
            args.append(run.started_event)
        async with map_backend_errors_async():
            if self.cluster:  # redis-py runs no script in a cluster pipeline
                return await self._create_apart(run, rk, args)
            pipe = self.client.pipeline(transaction=False)
            pipe.set(self.keys.blueprint(run.graph), run.graph_text, ex=self.blueprint_ttl)
            await self._create(keys=[rk.meta, rk.ctx, rk.pending, rk.visits, rk.stream], args=args, client=pipe)
            pipe.zadd(self.keys.runs, {run.run_id: time.time()}, nx=True)  # for the reconciler
            if self.announce_queue is not None:  # the queue's workers hydrate the graph while its first job runs
                pipe.publish(self.keys.control, f"graph {run.graph} {self.announce_queue}")
            created = (await pipe.execute())[1]
        return bool(created)

    async def _create_apart(self, run: NewRun, rk: RunKeys, args: list[Any]) -> bool:
        """`create`'s three steps one after another (keys in three cluster slots)."""
        await self.client.set(self.keys.blueprint(run.graph), run.graph_text, ex=self.blueprint_ttl)
        created = await self._create(keys=[rk.meta, rk.ctx, rk.pending, rk.visits, rk.stream], args=args)
        await self.client.zadd(self.keys.runs, {run.run_id: time.time()}, nx=True)
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
                keys=self._fixed(rk), args=[self.run_ttl, rk.join_prefix, reason, _now(), run_id, self.keys.control]
            )
        return str(result or "")

    def subscription(self, channel: str) -> contextlib.AbstractAsyncContextManager[TopicSubscription]:
        """Messages on ``channel`` (all subscriptions share one pub/sub connection)."""
        return self._hub.subscribe(channel)

    def subscribe_run(self, run_id: str) -> contextlib.AbstractAsyncContextManager[TopicSubscription]:
        """Notifications when the run ends (its ``events`` channel)."""
        return self.subscription(self.keys.run(run_id).events)

    def subscribe_control(self) -> contextlib.AbstractAsyncContextManager[TopicSubscription]:
        """``"cancel <run id>"`` messages (the control channel)."""
        return self.subscription(self.keys.control)

    async def ping(self) -> None:
        """Raise a [`BackendError`][flowcraft.distributed.BackendError] if Redis cannot be reached."""
        async with map_backend_errors_async():
            await self.client.ping()

    async def runs(self, state: str | None = None, limit: int = 100) -> list[RunSummary]:
        """The runs under this prefix, newest first (``state``: only those in it).

        Reads every run's ``meta`` (``SCAN``, then one pipelined ``HMGET`` per batch): its
        cost grows with the runs Redis holds (finished ones expire after ``run_ttl``).
        ``updated_at`` is when the run ended, else when it started.
        """
        prefix = "".join(f"\\{c}" if c in "*?[]\\" else c for c in self.keys.prefix)
        pattern = f"{prefix}:run:{{*}}:meta"
        found: list[RunSummary] = []
        async with map_backend_errors_async():
            batch: list[str] = []
            async for key in self.client.scan_iter(match=pattern, count=1000):
                batch.append(str(key))
                if len(batch) >= 500:
                    found += await self._summaries(batch, state)
                    batch = []
            if batch:
                found += await self._summaries(batch, state)
        found.sort(key=lambda run: run.created_at, reverse=True)
        return found[:limit]

    async def _summaries(self, keys: list[str], state: str | None) -> list[RunSummary]:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, "status", "created_at", "ended_at")
        out: list[RunSummary] = []
        for key, (status, created, ended) in zip(keys, await pipe.execute(), strict=True):
            if status is None or (state is not None and status != state):
                continue
            run_id = key[key.index("{") + 1 : key.rindex("}")]
            created_at = float(created or 0)
            out.append(RunSummary(run_id, str(status), created_at, float(ended) if ended else created_at))
        return out

    # ---- worker side ---------------------------------------------------------------------

    async def graph(self, key: str) -> str | None:
        """The stored graph text (blueprint JSON or factory record), or ``None``.

        Reading it renews its TTL: a graph expires ``blueprint_ttl`` seconds after the last
        worker read it, not after its run started (workers re-read the graphs they use
        hourly), so a long run never loses its graph.
        """
        async with map_backend_errors_async():
            result = await self.client.getex(self.keys.blueprint(key), ex=self.blueprint_ttl)
        return cast("str | None", result)

    async def load(self, run_id: str, job_id: str) -> JobState:
        """Status, params, context and done record of a job, in one step (``LOAD``).

        Context values longer than ``inline_limit`` bytes are left out (their names are
        in ``JobState.remote``): [`context_values`][flowcraft.distributed.RedisRunStore.context_values]
        fetches them when the node reads them.

        A job that a BullMQ completion fetched on standalone Redis had its state read in
        that round trip (``LOAD_NEXT``, in `flowcraft.distributed.loading`): its first
        ``load`` takes that state instead of reading again.
        """
        pre = preloaded.get()
        if pre is not None and pre[0] == job_id and pre[1] == run_id:  # read with the job's fetch (LOAD_NEXT)
            preloaded.set(None)  # once: a later read of this job reads again
            result = pre[2]
        else:
            rk = self._run_keys(run_id)[0]
            async with map_backend_errors_async():
                result = await self._load(keys=[rk.meta, rk.ctx, rk.done], args=[job_id, self.inline_limit])
        status, params, events, budget, usage, done = (result + [None] * 6)[:6]
        context: dict[str, str] = {}
        remote: list[str] = []
        for x in range(6, len(result) - 1, 2):
            name, value = str(result[x]), result[x + 1]
            if value is None:
                remote.append(name)
            else:
                context[name] = str(value)
        return JobState(status, params, context, parse_done(done) if done else None, bool(events), budget, usage,
                        remote=frozenset(remote))  # fmt: skip

    async def context_values(self, run_id: str, names: Sequence[str]) -> dict[str, str | None]:
        """The encoded context values of ``names`` (``None``: not set), in one round trip."""
        if not names:
            return {}
        async with map_backend_errors_async():
            values = await self.client.hmget(self.keys.run(run_id).ctx, list(names))
        return dict(zip(names, cast("list[str | None]", values), strict=True))

    def context_values_now(self, run_id: str, names: Sequence[str]) -> dict[str, str | None]:
        """`context_values`, blocking: for a node that lists the whole context (``to_dict``,
        ``entries``, ``values``) while values it has not read are left in Redis."""
        if not names:
            return {}
        with map_backend_errors():
            if self._sync_client is None:
                client_class = redis.cluster.RedisCluster if self.cluster else redis.Redis
                self._sync_client = client_class.from_url(
                    self.redis_url, decode_responses=True, socket_connect_timeout=5
                )  # fmt: skip
            values = self._sync_client.hmget(self.keys.run(run_id).ctx, list(names))
        return dict(zip(names, values, strict=True))

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

    # ---- waits and timers --------------------------------------------------------------

    async def park(self, run_id: str, park: Park) -> str:
        """Store the wait (once), count its job as parked, arm its timer; the run's state after it."""
        rk = self.keys.run(run_id)
        record = json.dumps({**_park_fields(park), "state": "open"})
        async with map_backend_errors_async():
            state = await self._park(keys=[rk.meta, rk.waits, rk.events, rk.pending],
                                     args=[park.job_id, park.wait_id, record, _now()])  # fmt: skip
            if park.fire_at is not None and state in ("pending", "running", "awaiting"):
                await self.client.zadd(self.keys.timers, {_timer_member(run_id, park.wait_id): park.fire_at})
        return str(state)

    async def wait(self, run_id: str, wait_id: str) -> WaitRecord | None:
        """The stored wait, or ``None``."""
        async with map_backend_errors_async():
            text = await self.client.hget(self.keys.run(run_id).waits, wait_id)
        return None if text is None else _wait_record(json.loads(text))

    async def waits(self, run_id: str, *, open_only: bool = True) -> list[WaitRecord]:
        """The run's waits (the open ones: none once the run has stopped), oldest first."""
        rk = self.keys.run(run_id)
        async with map_backend_errors_async():
            status = await self.client.hget(rk.meta, "status")
            found = await self.client.hgetall(rk.waits)
        records = sorted((json.loads(text) for text in found.values()), key=lambda r: float(r.get("created", 0)))
        if open_only:
            if status not in ("pending", "running", "awaiting"):
                return []
            records = [r for r in records if r.get("state") == "open"]
        return [_wait_record(r) for r in records]

    async def resolve(self, run_id: str, wait_id: str, resolution: Resolution) -> Resolved:
        """Compare-and-set on the wait being open (one Lua step): resolve it, run the run."""
        rk = self.keys.run(run_id)
        async with map_backend_errors_async():
            outcome, state, text, node = await self._resolve(
                keys=[rk.meta, rk.waits, rk.pending],
                args=[wait_id, resolution.value, resolution.action, resolution.key or "", _now()],
            )
            if outcome in ("ok", "ended"):
                await self.client.zrem(self.keys.timers, _timer_member(run_id, wait_id))
        record = _wait_record(json.loads(text)) if text else None
        job = None
        if outcome == "ok" and record is not None and node:
            graph = await self.client.hget(rk.meta, "blueprint")
            job = Job(record.park.job_id, run_id, str(node), str(graph), record.park.incoming, resumed=True,
                      wait=wait_id)  # fmt: skip
        return Resolved(str(outcome), job, str(state), record)

    async def due(self, now: float, limit: int = 100) -> list[tuple[str, str]]:
        """Waits whose timer is due (``fire_at <= now``), earliest first."""
        async with map_backend_errors_async():
            members = await self.client.zrangebyscore(self.keys.timers, "-inf", now, start=0, num=limit)
        return [_timer_of(str(member)) for member in members]

    async def next_fire_at(self) -> float | None:
        """The earliest armed timer, or ``None``."""
        async with map_backend_errors_async():
            found = await self.client.zrange(self.keys.timers, 0, 0, withscores=True)
        return float(found[0][1]) if found else None

    async def memo(self, run_id: str, job_id: str, key: str, value: str | None) -> str | None:
        """The value memoised for ``(job, key)``; with ``value``, store it first unless one exists."""
        memos, field = self.keys.run(run_id).memos, f"{job_id} {key}"
        async with map_backend_errors_async():
            if value is not None:
                async with self.client.pipeline(transaction=True) as pipe:
                    pipe.hsetnx(memos, field, value)
                    pipe.expire(memos, MEMO_TTL)
                    await pipe.execute()
            found = await self.client.hget(memos, field)
        return None if found is None else str(found)

    async def still_pending(self, run_id: str, job_ids: Sequence[str]) -> list[bool]:
        """Which of ``job_ids`` are still in the run's pending set."""
        if not job_ids:
            return []
        async with map_backend_errors_async():
            values = await self.client.hmget(self.keys.run(run_id).pending, list(job_ids))
        return [value is not None for value in values]

    # ---- the reconciler (flowcraft.distributed.worker) ------------------------------------

    async def runs_to_check(self, checked_before: float, limit: int) -> list[str]:
        """Ids of indexed runs last checked (or created) before ``checked_before`` (epoch s)."""
        async with map_backend_errors_async():
            found = await self.client.zrangebyscore(self.keys.runs, "-inf", checked_before, start=0, num=limit)
        return [str(run_id) for run_id in found]

    async def parked_jobs(self, run_id: str) -> set[str]:
        """The jobs of the run parked on open waits; their timers are armed again (``ZADD NX``:
        a park whose timer was not written, e.g. a worker killed between the two steps)."""
        return (await self.wait_jobs(run_id))[0]

    async def wait_jobs(self, run_id: str) -> tuple[set[str], dict[str, str]]:
        """The jobs of the run parked on open waits (see
        [`parked_jobs`][flowcraft.distributed.RedisRunStore.parked_jobs]), and, for each
        other job whose latest wait was resolved, that wait's id: such a job, while it is
        pending, is on the queue as the delivery resumed after that wait."""
        rk = self.keys.run(run_id)
        async with map_backend_errors_async():
            found = await self.client.hgetall(rk.waits)
            parked: set[str] = set()
            latest: dict[str, tuple[float, str]] = {}
            timers: dict[str, float] = {}
            for text in found.values():
                record = json.loads(text)
                job = str(record["job"])
                if record.get("state") == "resolved":
                    created = float(record.get("created") or 0)
                    if job not in latest or created >= latest[job][0]:
                        latest[job] = (created, str(record["wait"]))
                if record.get("state") != "open":
                    continue
                parked.add(job)
                if record.get("fire_at") is not None:
                    timers[_timer_member(run_id, str(record["wait"]))] = float(record["fire_at"])
            if timers:
                await self.client.zadd(self.keys.timers, timers, nx=True)
        return parked, {job: wait for job, (_, wait) in latest.items() if job not in parked}

    async def pending_jobs(self, run_id: str) -> tuple[str | None, str | None, dict[str, str]]:
        """The run's status, graph key and pending jobs (job id -> node id), in one round trip."""
        rk = self.keys.run(run_id)
        async with map_backend_errors_async():
            pipe = self.client.pipeline(transaction=False)
            pipe.hmget(rk.meta, "status", "blueprint")
            pipe.hgetall(rk.pending)
            (status, graph), pending = await pipe.execute()
        return status, graph, cast(dict[str, str], pending)

    async def incoming_actions(self, run_id: str, job_ids: Sequence[str]) -> dict[str, str]:
        """The encoded action each of ``job_ids`` was decided with (from its decider's done
        record); a start job has none."""
        wanted = set(job_ids)
        found: dict[str, str] = {}
        async with map_backend_errors_async():
            async for field, record in self.client.hscan_iter(self.keys.run(run_id).done, count=500):
                if str(field).startswith("charge:"):
                    continue
                done = parse_done(str(record))
                for _node, successor in done.successors:
                    if successor in wanted:
                        found[successor] = done.action
        return found

    async def checked(self, run_id: str, *, active: bool) -> None:
        """Record a reconciler check of the run: again later if ``active``, else never."""
        async with map_backend_errors_async():
            if active:
                await self.client.zadd(self.keys.runs, {run_id: time.time()}, xx=True)
            else:
                await self.client.zrem(self.keys.runs, run_id)

    async def commit(self, run_id: str, commit: Commit) -> Completion:
        """The atomic per-node step (`COMPLETE`): delta, done record, arrivals,
        releases, pending set, end of run; ``commit.events`` are appended to the stream."""
        rk, fixed = self._run_keys(run_id)
        args: list[Any] = [
            self.run_ttl, rk.join_prefix, commit.job_id, commit.node_id, commit.action, _now(), len(commit.expects)
        ]  # fmt: skip
        for key, value in commit.expects.items():
            args += [key, value]
        args.append(len(commit.sets))
        for key, value in commit.sets.items():
            args += [key, value]
        args.append(len(commit.deletes))
        args += list(commit.deletes)
        args.append(len(commit.arrivals))
        for arrival in commit.arrivals:
            args += [arrival.node_id, job_id_prefix(run_id, arrival.node_id), arrival.count]
        joins = self._joins(run_id, commit.joins)
        inline = len(joins) <= JOINS_INLINE
        async with map_backend_errors_async():
            sent = [*args, *(joins if inline else [-1]), *commit.events]
            result = None
            queue = finishing_queue() if not self.cluster and not commit.expects else None
            if queue is not None and all(arrival.count > 1 for arrival in commit.arrivals):
                # no successor but a fan-in's: commit and complete the job in one MULTI (COMPLETE_HOLD)
                result = await queue.commit_and_finish(COMPLETE_HOLD, fixed, sent)
            if result is None:
                result = await self._complete(keys=fixed, args=sent)
            if str(result[0]) == "joins":  # this commit may release a join: again, with the release facts
                result = await self._complete(keys=fixed, args=[*args, *joins, *commit.events])
        if str(result[0]) == "skip":
            return Completion("skip", commit.action, ())
        if str(result[0]) == "conflict":
            items = [str(item) for item in result[3:]]
            return Completion("conflict", commit.action, (), current=dict(zip(items[::2], items[1::2], strict=True)))
        return _completion(result)

    async def fail(self, run_id: str, failure: Failure) -> bool:
        """Mark the run failed (or ``failure.state``) if it is still active, and wake its clients."""
        rk = self.keys.run(run_id)
        details: list[str] = []
        for key, value in failure.details.items():
            details += [key, value]
        async with map_backend_errors_async():
            result = await self._fail(
                keys=self._fixed(rk),
                args=[
                    self.run_ttl, rk.join_prefix, failure.node_id, failure.phase, failure.error_type,
                    failure.message, _now(), run_id, self.keys.control if failure.abort_running else "", failure.state,
                    len(failure.details), *details, *failure.events,
                ],
            )  # fmt: skip
        return bool(result)

    async def charge(self, run_id: str, charge: Charge) -> Usage:
        """Atomically add to the run's usage of a kind (``CHARGE``; see ``RunStore.charge``)."""
        rk = self.keys.run(run_id)
        limit = "" if charge.limit is None else repr(float(charge.limit))
        async with map_backend_errors_async():
            state, used = await self._charge(
                keys=[rk.meta, rk.done],
                args=[charge.kind, repr(float(charge.amount)), limit, "1" if charge.admit else "0", charge.key or ""],
            )
        return Usage(str(state), float(used))


def _park_fields(park: Park) -> dict[str, Any]:
    return {
        "job": park.job_id, "wait": park.wait_id, "node": park.node_id, "kind": park.kind, "request": park.request,
        "actions": list(park.actions), "fire_at": park.fire_at, "on_timeout": park.on_timeout,
        "incoming": park.incoming, "created": time.time(),
    }  # fmt: skip


def _wait_record(data: dict[str, Any]) -> WaitRecord:
    park = Park(
        str(data["job"]), str(data["wait"]), str(data["node"]), str(data["kind"]), str(data["request"]),
        tuple(data.get("actions") or ()), data.get("fire_at"), data.get("on_timeout"), data.get("incoming"),
    )  # fmt: skip
    return WaitRecord(park, str(data.get("state", "open")), data.get("value"), data.get("action"), data.get("key"))


def _timer_member(run_id: str, wait_id: str) -> str:
    return f"{run_id}\x1f{wait_id}"


def _timer_of(member: str) -> tuple[str, str]:
    run_id, _, wait_id = member.partition("\x1f")
    return run_id, wait_id


def _now() -> str:
    return f"{time.time():.6f}"
