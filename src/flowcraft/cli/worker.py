"""``flowcraft worker``: the command line of a distributed worker.

The options are parsed by the ``flowcraft`` parser ([`flowcraft.cli`][flowcraft.cli]); this module
loads what they name and runs a [`Worker`][flowcraft.distributed.Worker]. A first SIGTERM
or SIGINT lets running jobs finish for ``--shutdown-grace`` seconds, then releases them:
they go back to the queue at once, for another worker; a second releases them at once.
The process exits 0 either way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from collections.abc import Callable, Mapping
from typing import Any

from ..distributed.queue import LOCK_DURATION, STALLED_INTERVAL
from ..distributed.worker import Worker, log
from ..engine.errors import BackendError
from .errors import EXIT_ENVIRONMENT, EXIT_OK, EXIT_USAGE, CliError
from .loading import RedisTarget, load_builder, load_object

__all__ = ["WorkerOptions", "worker_command"]


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerOptions:
    """The options of ``flowcraft worker`` (see ``flowcraft worker --help``)."""

    registry: str
    redis: RedisTarget
    concurrency: int = 10
    dependencies: str | None = None
    middleware: tuple[str, ...] = ()
    lock_duration: float = LOCK_DURATION
    stalled_interval: float = STALLED_INTERVAL
    reconcile_interval: float = 60.0
    unknown_type_grace: float = 60.0
    shutdown_grace: float = 5.0
    max_connections: int | None = None
    log_level: str = "INFO"


def _dependencies(ref: str) -> dict[str, Any]:
    factory = load_object(ref, "--dependencies")
    if not callable(factory):
        raise CliError(
            f"--dependencies {ref!r} is a {type(factory).__name__}, not a function: point it at a function of no "
            "arguments returning the node constructors' keyword arguments (a dict)"
        )
    try:
        value = factory()
    except TypeError as error:
        raise CliError(f"--dependencies {ref!r}: calling it with no arguments failed: {error}") from None
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise CliError(
            f"--dependencies {ref!r} returned a {type(value).__name__}; it must return a dict of keyword "
            "arguments (name -> service) for the node constructors"
        )
    return dict(value)


def _middleware(refs: tuple[str, ...]) -> list[Any]:
    middleware = []
    for ref in refs:
        item = load_object(ref, "--middleware")
        if not callable(item):
            raise CliError(f"--middleware {ref!r} is not callable: it must be a function (args, next) -> action")
        middleware.append(item)
    return middleware


async def _serve(worker: Worker, announce: Callable[[], None], grace: float = 5.0) -> None:
    """Run ``worker`` until a signal: the first finishes running jobs (for ``grace`` seconds,
    then hands them back to the queue), a second releases them at once."""
    loop = asyncio.get_running_loop()
    stopping = {"count": 0}
    closing: set[asyncio.Future[None]] = set()
    task = asyncio.ensure_future(worker.run())

    def release() -> None:
        if not task.done():
            log.warning("jobs still running %.1f s after the stop signal; releasing them", grace)
            closing.add(asyncio.ensure_future(worker.close(force=True)))
            loop.call_later(grace, give_up)

    def give_up() -> None:  # pragma: no cover - only when the queue library itself hangs
        if not task.done():
            log.error("the queue did not close %.1f s after releasing its jobs; exiting", grace)
            logging.shutdown()
            os._exit(0)

    def on_signal() -> None:
        stopping["count"] += 1
        force = stopping["count"] > 1
        closing.add(asyncio.ensure_future(worker.close(force=force)))
        if not force:
            loop.call_later(grace, release)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    ready = asyncio.ensure_future(worker.ready.wait())
    await asyncio.wait([ready, task], return_when="FIRST_COMPLETED")
    if worker.ready.is_set():
        announce()
    ready.cancel()
    await task


def worker_command(options: WorkerOptions) -> int:
    """Run a worker until SIGTERM/SIGINT; the exit status.

    ``--registry`` is loaded as for ``run`` (a registry mapping, a ``GraphBuilder`` whose
    registry and dependencies the worker uses, or a function returning either).

    Raises:
        CliError: a bad option (exit 2), or Redis unreachable or lost (exit 3).
    """
    builder = load_builder(options.registry)
    dependencies = dict(builder.dependencies)
    if options.dependencies:
        dependencies.update(_dependencies(options.dependencies))
    middleware = _middleware(options.middleware)
    logging.basicConfig(level=options.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    redis = options.redis
    try:
        worker = Worker(
            builder.registry,
            redis.url,
            queue=redis.queue,
            prefix=redis.prefix,
            dependencies=dependencies,
            concurrency=options.concurrency,
            lock_duration=options.lock_duration,
            stalled_interval=options.stalled_interval,
            reconcile_interval=options.reconcile_interval,
            unknown_type_grace=options.unknown_type_grace,
            middleware=middleware,
            cluster=redis.cluster,
            queue_shards=redis.queue_shards,
            max_connections=options.max_connections,
        )
    except (TypeError, ValueError) as error:
        raise CliError(f"cannot start the worker: {error}", EXIT_USAGE) from None

    def announce() -> None:
        log.info(
            "flowcraft worker ready: pid=%d queue=%s prefix=%s concurrency=%d redis=%s%s",
            os.getpid(), redis.queue, redis.prefix, options.concurrency, redis.redacted(),
            " (cluster)" * redis.cluster + (f" shards={redis.queue_shards}" if redis.queue_shards > 1 else ""),
        )  # fmt: skip

    try:
        asyncio.run(_serve(worker, announce, options.shutdown_grace))
    except BackendError as error:
        if worker.ready.is_set():
            raise CliError(f"worker stopped: lost Redis at {redis.redacted()}: {error}", EXIT_ENVIRONMENT) from None
        raise CliError(f"cannot use Redis at {redis.redacted()}: {error}", EXIT_ENVIRONMENT) from None
    log.info("flowcraft worker %d stopped", os.getpid())
    return EXIT_OK
