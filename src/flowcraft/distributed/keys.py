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
flowcraft:run:{<id>}:memos            HASH    "<job id> <key>" -> memoised value (args.memo); TTL MEMO_TTL
flowcraft:run:{<id>}:stream           STREAM  run events (only for runs started with events=True;
                                              capped near EVENT_STREAM_MAXLEN entries)
```

BullMQ keeps its own keys under ``<prefix>:<queue>:*``. Every run key gets
the client's ``run_ttl`` (default `RUN_TTL`, stored in ``meta``) once the run ends.
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "BLUEPRINT_TTL",
    "DEFAULT_PREFIX",
    "DEFAULT_QUEUE",
    "EVENT_STREAM_MAXLEN",
    "MEMO_TTL",
    "RUN_TTL",
    "Keys",
    "RunKeys",
]

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
