"""``flowcraft worker``: the command line of a distributed worker.

Options are parsed here; the :class:`~.worker.Worker` does the work. A first SIGTERM or
SIGINT lets running jobs finish for ``--shutdown-grace`` seconds, then releases them to
stalled-job recovery; a second releases them at once. The process exits 0 either way.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..distributed.errors import BackendError
from ..distributed.keys import DEFAULT_PREFIX, DEFAULT_QUEUE
from ..distributed.worker import Worker, log
from .errors import CliError
from .loading import ensure_cwd_importable, load_object

__all__ = ["main", "worker_command"]


def _load(ref: str, what: str) -> Any:
    """Import ``package.module:NAME`` for the ``--registry`` / ``--dependencies`` options."""
    try:
        return load_object(ref, f"--{what}")
    except CliError as error:
        raise SystemExit(error.message) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flowcraft.distributed.worker", description="Run flowcraft node jobs from a Redis queue."
    )
    parser.add_argument("--registry", required=True, help="package.module:NAME of the node registry mapping")
    parser.add_argument("--redis", default=os.environ.get("FLOWCRAFT_REDIS_URL", "redis://localhost:6379/0"))
    parser.add_argument("--queue", default=DEFAULT_QUEUE)
    parser.add_argument("--prefix", default=DEFAULT_PREFIX)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--dependencies", help="package.module:factory returning the node constructor kwargs")
    parser.add_argument(
        "--middleware",
        action="append",
        default=[],
        metavar="package.module:NAME",
        help="middleware wrapping every node this worker runs (repeatable; the first is outermost)",
    )
    parser.add_argument("--lock-duration", type=float, default=30.0, help="seconds a job lock lasts (default 30)")
    parser.add_argument("--stalled-interval", type=float, default=30.0, help="seconds between stalled-job checks")
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=5.0,
        help="seconds to let running jobs finish after SIGTERM/SIGINT before releasing them (default 5)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


async def _serve(worker: Worker, announce: Callable[[], None], grace: float = 5.0) -> None:
    """Run ``worker`` until a signal: the first finishes running jobs (for ``grace`` seconds,
    then releases them to stalled-job recovery), a second releases them at once."""
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


def main(argv: Sequence[str] | None = None) -> int:
    """The worker command line; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    registry = _load(args.registry, "registry")
    if not isinstance(registry, Mapping):
        raise SystemExit(
            f"--registry {args.registry!r} must name a mapping of node types, got {type(registry).__name__}"
        )
    dependencies = _load(args.dependencies, "dependencies")() if args.dependencies else None
    middleware = [_load(ref, "middleware") for ref in args.middleware]
    for ref, item in zip(args.middleware, middleware, strict=True):
        if not callable(item):
            raise SystemExit(f"--middleware {ref!r} is not callable: it must be a function (args, next) -> action")
    worker = Worker(
        registry,
        args.redis,
        queue=args.queue,
        prefix=args.prefix,
        dependencies=dependencies,
        concurrency=args.concurrency,
        lock_duration=args.lock_duration,
        stalled_interval=args.stalled_interval,
        middleware=middleware,
    )

    def announce() -> None:
        log.info(
            "flowcraft worker ready: pid=%d queue=%s prefix=%s concurrency=%d redis=%s",
            os.getpid(), args.queue, args.prefix, args.concurrency, _redact(args.redis),
        )  # fmt: skip

    try:
        asyncio.run(_serve(worker, announce, args.shutdown_grace))
    except BackendError as error:
        log.error("flowcraft worker stopped: %s", error)
        return 1
    log.info("flowcraft worker %d stopped", os.getpid())
    return 0


def worker_command(argv: Sequence[str]) -> int:
    """``flowcraft worker ARGS``: run a worker (the options of :func:`main`)."""
    ensure_cwd_importable()  # `--registry` modules resolve from the current directory, as for `run`
    return main(list(argv))
