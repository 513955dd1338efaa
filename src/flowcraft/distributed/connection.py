"""Redis clients for distributed runs: one bounded, blocking connection pool per client.

A client never opens more than ``max_connections`` connections; a call that finds them
all busy waits for one (up to ``pool_timeout`` seconds) instead of failing at once, and
an exhausted pool is reported as such
([`BackendPoolExhaustedError`][flowcraft.distributed.BackendPoolExhaustedError]), never as
Redis being unreachable. Pub/sub shares one connection per client (``store.py``), so any
number of waiting ``result()`` calls hold no pool connections.

With ``cluster=True`` the client is redis-py's cluster client over a Redis Cluster (the
URL names any one node; the others are discovered). It keeps up to ``max_connections``
connections per cluster node and fails a call at once, with
[`BackendPoolExhaustedError`][flowcraft.distributed.BackendPoolExhaustedError], when all of
one node's are busy (it has no blocking pool).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ExecAbortError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "MAX_CONNECTIONS",
    "POOL_TIMEOUT",
    "BoundedPool",
    "PoolExhausted",
    "connect",
    "connect_cluster",
    "is_cluster",
    "open_connections",
    "transaction",
]

MAX_CONNECTIONS = 50
"""Default size of a client's connection pool (per executor, per worker process)."""

POOL_TIMEOUT = 30.0
"""Default seconds a call waits for a free pooled connection before
[`BackendPoolExhaustedError`][flowcraft.distributed.BackendPoolExhaustedError]."""


def _driver_info() -> dict[str, Any]:
    """The pool's connections share one redis-py ``DriverInfo`` (where redis-py has it): else each
    new connection looks redis-py's version up in the installed packages' metadata (about
    0.5 ms of CPU per connection)."""
    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # an older redis-py: no such lookup
        return {}
    return {"driver_info": DriverInfo()}


class PoolExhausted(RedisError):
    """redis-py level: no pooled connection became free in time (mapped to
    [`BackendPoolExhaustedError`][flowcraft.distributed.BackendPoolExhaustedError]; not a
    ``ConnectionError``, so redis-py's retries leave it alone)."""


class BoundedPool(BlockingConnectionPool):
    """A blocking pool whose timeout raises `PoolExhausted` (redis-py raises a plain
    ``ConnectionError``, indistinguishable from Redis being down)."""

    # The fast paths below skip the condition, the timeout and the pool's optional metrics
    # when a free connection is at hand and nobody waits (every job's load and commit: a
    # measurable share of a worker's CPU per job); otherwise redis-py's own path runs.

    def _quiet(self) -> bool:
        """No task waits for a connection and the pool is not being rewritten."""
        return not getattr(self, "_in_maintenance", True) and not getattr(self._condition, "_waiters", True)

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        available = self._available_connections
        if available and not args and not kwargs and self._quiet():
            connection = available.pop()
            self._in_use_connections.add(connection)
            try:
                await self.ensure_connection(connection)  # connected, nothing unread
            except BaseException:
                await self.release(connection)
                raise
            return connection
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except RedisConnectionError as error:
            if isinstance(error.__cause__, asyncio.TimeoutError):
                raise PoolExhausted(
                    f"all {self.max_connections} pooled Redis connections stayed busy for {self.timeout} s; "
                    "raise max_connections (or lower the number of concurrent calls)"
                ) from error
            raise

    async def release(self, connection: Any) -> None:
        if (
            self._quiet()
            and connection in self._in_use_connections
            and not connection.should_reconnect()
            and self.connection_kwargs.get("credential_provider") is None  # no re-auth on release
        ):
            self._in_use_connections.remove(connection)
            self._available_connections.append(connection)
            return
        await super().release(connection)


def connect(
    redis_url: str,
    *,
    max_connections: int = MAX_CONNECTIONS,
    pool_timeout: float | None = POOL_TIMEOUT,
    cluster: bool = False,
) -> aioredis.Redis:
    """A redis-py asyncio client for ``redis_url`` (``redis://``, ``rediss://``, with auth)
    over a `BoundedPool` of ``max_connections``; with ``cluster``, a cluster client
    (`connect_cluster`; typed as the plain client, whose commands it shares)."""
    if max_connections < 1:
        raise ValueError(f"max_connections must be >= 1, got {max_connections!r}")
    if cluster:
        return cast(aioredis.Redis, connect_cluster(redis_url, max_connections=max_connections))
    pool = BoundedPool.from_url(
        redis_url,
        max_connections=max_connections,
        timeout=pool_timeout,
        decode_responses=True,
        socket_connect_timeout=5,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, BusyLoadingError],
        **_driver_info(),
    )
    return aioredis.Redis.from_pool(pool)


async def open_connections(client: aioredis.Redis, count: int) -> None:
    """Open up to ``count`` connections of ``client``'s pool now, so that the first calls
    that need them at once (a worker's first jobs) find them open; a connection that
    cannot be opened is left to the call that needs it."""
    pool = client.connection_pool
    taken: list[Any] = []
    try:
        for _ in range(min(count, pool.max_connections)):
            taken.append(await pool.get_connection())  # type: ignore[no-untyped-call]
    except RedisError:
        pass
    finally:
        for connection in taken:
            await pool.release(connection)


def connect_cluster(redis_url: str, *, max_connections: int = MAX_CONNECTIONS) -> RedisCluster:
    """A redis-py asyncio Redis Cluster client: ``redis_url`` names one node (database 0),
    the client discovers the others; at most ``max_connections`` connections per node."""
    if max_connections < 1:
        raise ValueError(f"max_connections must be >= 1, got {max_connections!r}")
    return RedisCluster.from_url(
        redis_url,
        max_connections=max_connections,
        decode_responses=True,
        socket_connect_timeout=5,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
    )


def is_cluster(client: Any) -> bool:
    """Whether ``client`` is a Redis Cluster client."""
    return isinstance(client, RedisCluster)


def _pack(commands: Sequence[Sequence[Any]], encode: Callable[[Any], Any]) -> bytes:
    """``commands`` in the Redis protocol, as one buffer (``encode``: the connection's, for
    any argument that is not a plain ``str``, ``bytes`` or ``int``)."""
    out: list[bytes] = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        for arg in command:
            kind = type(arg)
            if kind is str:
                data = arg.encode()
            elif kind is bytes:
                data = arg
            else:
                data = b"%d" % arg if kind is int else encode(arg)
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def transaction(client: aioredis.Redis, commands: Sequence[Sequence[Any]]) -> list[Any]:
    """``commands`` (each ``(name, *args)``) in one MULTI/EXEC on a connection of
    ``client``'s pool (standalone Redis): their answers, an error as its exception in its
    place, as redis-py's transaction pipeline gives them with ``raise_on_error=False``
    (no response callbacks: for scripts' answers), retried as it retries one.

    Packed here in one pass: redis-py packs argument by argument, re-joining the buffer
    each time (about 30 µs of a worker's CPU per node job for its commit's MULTI, of
    some 60 arguments; this: about 10 µs); answers read as below (50 commands: about
    0.1 ms instead of 0.4)."""
    pool = client.connection_pool
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]

    async def run() -> list[Any]:
        encode = connection.encoder.encode
        await connection.send_packed_command(_pack([("MULTI",), *commands, ("EXEC",)], encode))
        # hiredis' reader (inside redis-py's parser, of this connection as it is now): the
        # answers after the first are mostly received with it, taken here without
        # redis-py's read path and its timer (about 5 µs each; a commit's MULTI has 6
        # answers); without hiredis, all through read_response
        gets = getattr(getattr(getattr(connection, "_parser", None), "_reader", None), "gets", None)

        async def answer() -> Any:
            while gets is not None:
                got = gets()
                if got is False or type(got) is object:  # not received yet (hiredis', redis-py's sentinel)
                    break
                if isinstance(got, ResponseError):
                    raise got
                if isinstance(got, list) and type(got) is not list:  # a RESP3 push (none on these connections)
                    continue
                return got
            return await connection.read_response()

        errors: list[tuple[int, ResponseError]] = []
        for i in range(len(commands) + 1):  # OK, then QUEUED (or why a command was refused)
            try:
                await answer()
            except ResponseError as error:
                errors.append((i, error))
        try:
            answers = await answer()
        except ExecAbortError as error:
            raise errors[-1][1] if errors else error from error
        if not isinstance(answers, list) or len(answers) != len(commands):
            await connection.disconnect()
            raise ResponseError(f"MULTI/EXEC of {len(commands)} commands answered {answers!r}")
        return answers

    async def failed(error: BaseException) -> None:
        await connection.disconnect()

    try:
        return cast(list[Any], await connection.retry.call_with_retry(run, failed))
    except BaseException:
        await connection.disconnect()  # an answer may be left unread
        raise
    finally:
        await pool.release(connection)
