"""A job's state read from Redis: the ``LOAD`` script, and ``LOAD_NEXT``, which reads the
state of the job a BullMQ completion has just fetched, in the same round trip.

Shared by `distributed/store.py` (which parses the states) and `distributed/queue.py`
(which sends ``LOAD_NEXT`` after BullMQ's complete-and-fetch-next); `preloaded` carries a
state read that way to the store's ``load`` of that job.
"""

from __future__ import annotations

import contextvars
from typing import Any

__all__ = ["LOAD", "LOAD_NEXT", "preloaded"]

# load_state(meta, ctx, done, job id, inline limit): {status, params, events, budget, usage,
# done record, then (name, value)* of the context}; value is false (nil) for a value longer
# than the limit (fetched on demand). No context when the job has a done record or the run
# has stopped.
_LOAD_STATE = """
local function load_state(meta, ctx, done, job, limit)
  local out = redis.call('HMGET', meta, 'status', 'params', 'events', 'budget', 'usage')
  local status = out[1]
  out[6] = redis.call('HGET', done, job)
  if out[6] or (status ~= 'pending' and status ~= 'running' and status ~= 'awaiting') then return out end
  local names = redis.call('HKEYS', ctx)
  local small = {}
  for _, name in ipairs(names) do
    if redis.call('HSTRLEN', ctx, name) > limit then
      out[#out + 1] = name; out[#out + 1] = false
    else
      small[#small + 1] = name
    end
  end
  for x = 1, #small, 4000 do
    local part = {}
    for y = x, math.min(x + 3999, #small) do part[#part + 1] = small[y] end
    local values = redis.call('HMGET', ctx, unpack(part))
    for y, name in ipairs(part) do out[#out + 1] = name; out[#out + 1] = values[y] end
  end
  return out
end
"""

# KEYS: meta ctx done   ARGV: job_id inline_limit
# A job's state in one step (see load_state above).
LOAD = _LOAD_STATE + "return load_state(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]))\n"

# KEYS: active (a BullMQ queue's)
# ARGV: job key prefix (BullMQ's, "<prefix>:<queue>:"), lock token, run key prefix
#       ("<prefix>:run:{"), inline_limit, skip* (queue ids whose state the worker has)
# (a resumed job's queue id ends in '|w' and its wait: not part of the engine job id)
# Sent right after BullMQ's moveToFinished with fetch-next, in the same pipeline: the job
# that call moved to active (the head of the active list, locked with this token) gets its
# state read now. Returns {queue id, run id, load_state(...)}, or false (no job fetched,
# another's job at the head, a job in ``skip``, unreadable job data). The run's keys are
# derived from the job's data, not declared: standalone Redis only (never on a cluster).
LOAD_NEXT = (
    _LOAD_STATE
    + """
local id = redis.call('LINDEX', KEYS[1], 0)
if not id then return false end
for x = 5, #ARGV do if ARGV[x] == id then return false end end
local key = ARGV[1] .. id
if redis.call('GET', key .. ':lock') ~= ARGV[2] then return false end
local ok, data = pcall(cjson.decode, redis.call('HGET', key, 'data') or '')
if not ok or type(data) ~= 'table' or type(data.r) ~= 'string' then return false end
local job = string.gsub(id, '|w[^|]*$', '')
job = string.gsub(string.gsub(string.gsub(job, '|', ':'), '%%7C', '|'), '%%25', '%%')
local run = ARGV[3] .. data.r .. '}:'
return {id, data.r, load_state(run .. 'meta', run .. 'ctx', run .. 'done', job, tonumber(ARGV[4]))}
"""
)

preloaded: contextvars.ContextVar[tuple[str, str, Any] | None] = contextvars.ContextVar(
    "flowcraft_preloaded_state", default=None
)
"""``(engine job id, run id, raw state)``: the state ``LOAD_NEXT`` read for the job the
current processor task runs, taken (once) by the store's ``load`` of that job."""
