"""Every Redis key, channel and TTL used by distributed runs — in one place.

All run keys share the hash tag ``{<run id>}`` so that one run lives in one Redis
Cluster slot (the Lua steps touch several of them atomically). Layout, with the default
prefix ``flowcraft``:

```text
flowcraft:blueprint:<sha256>          STRING  the run's graph: blueprint JSON (content hash) or a factory
                                              record (structural hash); TTL BLUEPRINT_TTL
flowcraft:control                     CHANNEL "cancel <run id>" messages for every worker
flowcraft:runs                        ZSET    run id -> when the reconciler last checked it (its creation
                                              at first); entries of ended runs are removed by the reconciler
flowcraft:workers:<queue>             HASH    worker id -> {"types": node types it can run, "seen": time}
                                              (each live worker renews its entry every few seconds)
flowcraft:reconciler                  STRING  the worker running the reconciler's current pass (a lock
                                              with a TTL)
flowcraft:timers                      ZSET    "<run id>\\x1f<wait id>" -> when the wait's timer fires
flowcraft:run:{<id>}:meta             HASH    status, blueprint hash, params, ttl, last action, error,
                                              budget (JSON) and usage (JSON kind -> amount, CHARGE)
flowcraft:run:{<id>}:ctx              HASH    context: key name -> codec-encoded value
flowcraft:run:{<id>}:pending          HASH    job id -> node id of jobs decided on but not finished yet
flowcraft:run:{<id>}:done             HASH    job id -> {"a": action, "j": [[node id, job id], ...]};
                                              "charge:<job id>:<kind>" marks of deduplicated charges
flowcraft:run:{<id>}:visits           HASH    node id -> last visit number handed out
flowcraft:run:{<id>}:open             HASH    fan-in node id -> visit currently collecting arrivals
flowcraft:run:{<id>}:join:<node>:<v>  SET     predecessors that reached visit <v> of a fan-in node
flowcraft:run:{<id>}:events           CHANNEL published once when the run ends
flowcraft:run:{<id>}:waits            HASH    wait id -> JSON record of the wait (open or resolved)
flowcraft:run:{<id>}:memos            HASH    "<job id> <key>" -> memoised value (args.memo); TTL MEMO_TTL
flowcraft:run:{<id>}:stream           STREAM  run events (only for runs started with events=True;
                                              capped near EVENT_STREAM_MAXLEN entries)
```

BullMQ keeps its own keys under ``<prefix>:<queue name>:*``, where the queue name is
the queue itself, or, on a Redis Cluster or with ``queue_shards`` > 1, one hash-tagged
name per shard ([`queue_names`][flowcraft.distributed.keys.queue_names]). Every run key
gets the client's ``run_ttl`` (default `RUN_TTL`, stored in ``meta``) once the run ends.

Job ids on the queue never contain ``:`` (Node BullMQ 5 refuses such custom ids):
[`wire_job_id`][flowcraft.distributed.keys.wire_job_id] maps the engine's job id
(``run:node:visit``, also a node's ``idempotency_key``) to its queue form and
[`engine_job_id`][flowcraft.distributed.keys.engine_job_id] back. ``docs/wire-protocol.md``
describes all of it as a versioned protocol (`WIRE_VERSION`).
"""

from __future__ import annotations

import dataclasses
import zlib

__all__ = [
    "BLUEPRINT_TTL",
    "DEFAULT_PREFIX",
    "DEFAULT_QUEUE",
    "EVENT_STREAM_MAXLEN",
    "MEMO_TTL",
    "RUN_TTL",
    "WIRE_VERSION",
    "Keys",
    "RunKeys",
    "engine_job_id",
    "queue_names",
    "shard_of",
    "wire_job_id",
]

WIRE_VERSION = 1
"""Version of the job and key format (``docs/wire-protocol.md``)."""

DEFAULT_PREFIX = "flowcraft"
"""Prefix of every key (ours and BullMQ's)."""

DEFAULT_QUEUE = "flowcraft"
"""Name of the BullMQ queue node jobs go through."""

RUN_TTL = 24 * 3600
"""Seconds a finished run's keys are kept (status, context, bookkeeping)."""

BLUEPRINT_TTL = 7 * 24 * 3600
"""Seconds a stored blueprint is kept after the last run that used it was started."""

MEMO_TTL = 30 * 24 * 3600
"""Seconds a run's memos are kept after the last one was written."""

EVENT_STREAM_MAXLEN = 10_000
"""Approximate cap (``XADD MAXLEN ~``) on the entries of a run's event stream."""


@dataclasses.dataclass(frozen=True, slots=True)
class RunKeys:
    """The keys of one run (see the module docstring for what each holds)."""

    run_id: str
    meta: str
    ctx: str
    pending: str
    done: str
    visits: str
    open: str
    join_prefix: str
    events: str
    stream: str
    memos: str
    waits: str

    def join(self, node_id: str, visit: int) -> str:
        """The join set of visit ``visit`` of fan-in node ``node_id``."""
        return f"{self.join_prefix}{node_id}:{visit}"

    @property
    def all_fixed(self) -> tuple[str, ...]:
        """Every key of the run except the (dynamic) join sets."""
        return (self.meta, self.ctx, self.pending, self.done, self.visits, self.open)


@dataclasses.dataclass(frozen=True, slots=True)
class Keys:
    """Key factory for one prefix."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not self.prefix or any(c in self.prefix for c in "{} \n"):
            raise ValueError(f"Redis key prefix must be non-empty without braces or whitespace, got {self.prefix!r}")

    @property
    def timers(self) -> str:
        """The sorted set of armed timers: ``<run id>\\x1f<wait id>`` scored by ``fire_at``."""
        return f"{self.prefix}:timers"

    @property
    def control(self) -> str:
        """The channel every worker listens on for cancellations."""
        return f"{self.prefix}:control"

    @property
    def runs(self) -> str:
        """The index of runs the reconciler checks (run id -> when last checked)."""
        return f"{self.prefix}:runs"

    def workers(self, queue: str) -> str:
        """The live workers of ``queue`` and the node types each can run."""
        return f"{self.prefix}:workers:{queue}"

    @property
    def reconciler(self) -> str:
        """The lock of the reconciler's pass (one worker at a time)."""
        return f"{self.prefix}:reconciler"

    def blueprint(self, blueprint_hash: str) -> str:
        """Where the blueprint with this content hash is stored."""
        return f"{self.prefix}:blueprint:{blueprint_hash}"

    def run(self, run_id: str) -> RunKeys:
        """The keys of run ``run_id``."""
        base = f"{self.prefix}:run:{{{run_id}}}:"
        return RunKeys(
            run_id=run_id,
            meta=base + "meta",
            ctx=base + "ctx",
            pending=base + "pending",
            done=base + "done",
            visits=base + "visits",
            open=base + "open",
            join_prefix=base + "join:",
            events=base + "events",
            stream=base + "stream",
            memos=base + "memos",
            waits=base + "waits",
        )


def queue_names(queue: str, shards: int = 1, *, cluster: bool = False) -> list[str]:
    """The BullMQ queue names of logical queue ``queue`` split into ``shards`` queues.

    One unsharded queue on one Redis keeps its plain name (``flowcraft``). On a Redis
    Cluster, or with more than one shard, every name is a hash tag (``{flowcraft}``, or
    ``{flowcraft.0}`` .. ``{flowcraft.<shards-1>}``): all of one queue's BullMQ keys then
    live in one cluster slot, as its Lua scripts need, and the shards spread over the
    cluster's masters.

    Examples:
        ```python
        from flowcraft.distributed.keys import queue_names

        assert queue_names("flowcraft") == ["flowcraft"]
        assert queue_names("flowcraft", cluster=True) == ["{flowcraft}"]
        assert queue_names("q", 2) == ["{q.0}", "{q.1}"]
        ```
    """
    if shards < 1:
        raise ValueError(f"queue_shards must be >= 1, got {shards!r}")
    if shards == 1 and not cluster:
        return [queue]
    if not queue or any(c in queue for c in ":{} \n"):
        raise ValueError(
            f"a sharded or cluster queue's name must be non-empty without ':', braces or whitespace, got {queue!r}"
        )
    if shards == 1:
        return [f"{{{queue}}}"]
    return [f"{{{queue}.{i}}}" for i in range(shards)]


def shard_of(job_id: str, shards: int) -> int:
    """The queue shard of a job: CRC-32 (IEEE) of its engine id's UTF-8 bytes, modulo
    ``shards``. Deterministic, so that a job added twice lands in the same queue and is
    deduplicated there."""
    return zlib.crc32(job_id.encode()) % shards if shards > 1 else 0


def wire_job_id(job_id: str, wait: str | None = None) -> str:
    """The queue's id of engine job ``job_id``: ``%`` -> ``%25``, ``|`` -> ``%7C``, then
    ``:`` -> ``|`` (``run|node|visit``). Injective, so deduplication by id is kept, and
    free of ``:``, which Node BullMQ 5 refuses in custom job ids.

    With ``wait``, the id of the job's delivery that continues after that wait was
    resolved: ``|w`` and the wait id (``%`` -> ``%25``, ``|`` -> ``%7C``, ``:`` -> ``%3A``)
    appended, e.g. ``run|review|1|wreview#1``. It never equals the id of the delivery that
    parked on the wait, which may still be on the queue (running, or kept as completed)
    when the resume comes: a resume under the same id would be dropped as a duplicate.
    """
    wire = job_id.replace("%", "%25").replace("|", "%7C").replace(":", "|")
    if wait is None:
        return wire
    return f"{wire}|w{wait.replace('%', '%25').replace('|', '%7C').replace(':', '%3A')}"


def engine_job_id(wire_id: str) -> str:
    """The engine job id behind a queue job id (the inverse of
    [`wire_job_id`][flowcraft.distributed.keys.wire_job_id], without the wait of a resumed
    delivery: its last ``|`` part starts with ``w``, where a visit is a number)."""
    head, bar, last = wire_id.rpartition("|")
    if bar and last.startswith("w"):
        wire_id = head
    return wire_id.replace("|", ":").replace("%7C", "|").replace("%25", "%")
