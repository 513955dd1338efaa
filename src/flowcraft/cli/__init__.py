"""The ``flowcraft`` command line (also ``python -m flowcraft``).

Commands:

```bash
flowcraft run GRAPH.json --registry module:NAME [--context JSON|@file] [--param k=v ...]
                         [--executor memory|redis --redis URL] [--progress auto|live|plain|none]
                         [--detach [--json]] [--store FILE] [--run-id ID] [--timeout S]
                         [--max-nodes N] [--max-seconds S]
flowcraft validate GRAPH.json [--registry module:NAME] [--dag] [--concurrency] [--json]
flowcraft viz GRAPH.json [--format mermaid|dot|svg|png] [--output FILE] [--raw]
flowcraft worker --registry module:NAME [--redis URL] [--queue Q] [--prefix P] [--concurrency N]
                 [--dependencies module:NAME] [--middleware module:NAME ...] [--lock-duration S]
                 [--stalled-interval S] [--reconcile-interval S] [--unknown-type-grace S]
                 [--shutdown-grace S] [--log-level LEVEL] [--cluster] [--queue-shards N]
                 [--max-connections N]
flowcraft runs [--state STATE] [--limit N] [--json] [--store FILE | --redis URL]
flowcraft show RUN_ID [--store FILE | --redis URL]
flowcraft resume RUN_ID WAIT_ID [--store FILE | --redis URL] [--value JSON] [--action A]
flowcraft status RUN_ID [--store FILE | --redis URL] [--context]
flowcraft cancel RUN_ID [--store FILE | --redis URL] [--reason TEXT]
flowcraft ui [--store FILE | --redis URL] [--host 127.0.0.1] [--port 8600] [--token T]
             [--registry module:NAME] [--factories]
flowcraft --version
```

``--registry`` names a node registry (a mapping of node type to class), a configured
``GraphBuilder``, or a function of no arguments returning either; its module is imported
relative to the current directory first.

Exit codes (the full table, one case a row, is in ``docs/cli.md``): 0 success; 1 the run
failed or was cancelled, ``validate`` found errors, ``cancel`` of an ended run; 2 bad
invocation or input (arguments, registry, context, params, the graph file, an invalid
graph for ``run``/``viz``, an unknown run, a run id taken by another graph, a file that
is not a run store); 3 a service or tool is unavailable (Redis unreachable, Graphviz or
the redis extra missing); 124 ``run --timeout`` stopped waiting (the run goes on); 130
interrupted. Errors print one line on stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .. import __version__
from .errors import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, CliError
from .loading import DEFAULT_REDIS_URL

if TYPE_CHECKING:
    from .loading import RedisTarget

__all__ = [
    "EXIT_ENVIRONMENT",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "CliError",
    "build_parser",
    "main",
]

_DEFAULT_REDIS = DEFAULT_REDIS_URL
_STATES = ("pending", "running", "completed", "failed", "cancelled", "blocked")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(f"{self.prog}: {message} (see `{self.prog} --help`)", EXIT_USAGE)


def _builder_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("graph compilation (with a plain registry mapping)")
    group.add_argument(
        "--sub-workflow-type",
        action="append",
        default=[],
        metavar="TYPE",
        help="node type whose nodes are sub-workflows (repeatable)",
    )
    group.add_argument(
        "--conditional-type",
        action="append",
        default=[],
        metavar="TYPE",
        help="node type whose outgoing edges are exclusive branches (repeatable)",
    )
    group.add_argument("--workflows", metavar="DIR", help="directory holding sub-workflow graphs as <workflowId>.json")


def _redis_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis",
        default=os.environ.get("FLOWCRAFT_REDIS_URL", _DEFAULT_REDIS),
        metavar="URL",
        help=f"Redis URL (default: $FLOWCRAFT_REDIS_URL or {_DEFAULT_REDIS})",
    )
    parser.add_argument(
        "--queue", default="flowcraft", help="job queue name (default flowcraft); clients and workers must agree"
    )
    parser.add_argument(
        "--prefix", default="flowcraft", help="Redis key prefix (default flowcraft); clients and workers must agree"
    )
    _topology_options(parser)


def _topology_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="the Redis URL names a node of a Redis Cluster (docs/scaling.md); clients and workers must agree",
    )
    parser.add_argument(
        "--queue-shards",
        type=_positive(int),
        default=1,
        metavar="N",
        help="split the job queue into N BullMQ queues (default 1); clients and workers must agree",
    )


def _run_source(parser: argparse.ArgumentParser) -> None:
    """``--store FILE`` or ``--redis URL`` (with ``--queue``/``--prefix``): where the runs are."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--store", metavar="FILE", help="the run store file of `flowcraft run --store` (SQLite)")
    where.add_argument(
        "--redis",
        default=None,
        metavar="URL",
        help=f"Redis URL (the default without --store: $FLOWCRAFT_REDIS_URL or {_DEFAULT_REDIS})",
    )
    parser.add_argument("--queue", default="flowcraft", help="with Redis: the job queue name (default flowcraft)")
    parser.add_argument("--prefix", default="flowcraft", help="with Redis: the key prefix (default flowcraft)")
    _topology_options(parser)


def _redis_target(args: argparse.Namespace, url: str) -> RedisTarget:
    from .loading import RedisTarget  # local import: startup speed

    return RedisTarget(url, args.queue, args.prefix, cluster=args.cluster, queue_shards=args.queue_shards)


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if kind is int and value < 1:
            raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _worker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry",
        required=True,
        metavar="module:NAME",
        help="node registry (type -> node class), GraphBuilder, or a function returning either, as for `run`",
    )
    _redis_option(parser)
    parser.add_argument(
        "--concurrency", type=_positive(int), default=10, metavar="N", help="jobs this worker runs at once (default 10)"
    )
    parser.add_argument(
        "--dependencies",
        metavar="module:NAME",
        help="function of no arguments returning the keyword arguments (services) given to every node constructor; "
        "they add to and override a GraphBuilder's own dependencies",
    )
    parser.add_argument(
        "--middleware",
        action="append",
        default=[],
        metavar="module:NAME",
        help="middleware (args, next) -> action wrapping every node this worker runs (repeatable; first is outermost)",
    )
    parser.add_argument(
        "--lock-duration",
        type=_positive(float),
        default=8.0,  # flowcraft.distributed.queue.LOCK_DURATION (not imported: startup speed)
        metavar="S",
        help="seconds a job's lock lasts unless renewed (every half of it); a job of a worker that died "
        "(kill -9) goes to another after at most about --lock-duration + --stalled-interval (default 8); "
        "keep it above the longest time a node blocks the event loop",
    )
    parser.add_argument(
        "--stalled-interval",
        type=_positive(float),
        default=5.0,  # flowcraft.distributed.queue.STALLED_INTERVAL
        metavar="S",
        help="seconds between checks for jobs whose worker died (default 5)",
    )
    parser.add_argument(
        "--reconcile-interval",
        type=_positive(float),
        default=60.0,
        metavar="S",
        help="seconds between reconciler passes, which enqueue again the pending jobs of active runs the queue "
        "lost (one worker at a time; default 60)",
    )
    parser.add_argument(
        "--unknown-type-grace",
        type=_positive(float),
        default=60.0,
        metavar="S",
        help="a job whose node types this worker's registry lacks goes back to the queue for a worker that has "
        "them; a run no live worker can run fails this many seconds after it started (default 60)",
    )
    parser.add_argument(
        "--max-connections",
        type=_positive(int),
        default=None,
        metavar="N",
        help="size of the worker's Redis connection pool for run state (default: the larger of 50 and twice "
        "--concurrency + 4); with --cluster, per cluster node",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=_positive(float),
        default=5.0,
        metavar="S",
        help="seconds running jobs may finish after SIGTERM/SIGINT before they are released (default 5)",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=_LOG_LEVELS,
        default="INFO",
        help="the worker's log level on stderr (default INFO)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``flowcraft`` command."""
    parser = _Parser(
        prog="flowcraft",
        description="Run, check and draw Flowcraft workflow graphs; run and follow distributed runs.",
        epilog="exit codes: 0 ok · 1 run failed or cancelled, validate found errors · 2 bad input (including "
        "an invalid graph for run and viz) · 3 Redis, Graphviz or an extra unavailable · 124 run --timeout "
        "stopped waiting · 130 interrupted",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--version", action="version", version=f"flowcraft {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="build a graph file and run it",
        description="Build GRAPH with the registry, run it, and print the final action and context as JSON on stdout.",
    )
    run.add_argument("graph", metavar="GRAPH.json")
    run.add_argument(
        "--registry",
        metavar="module:NAME",
        help="node registry or GraphBuilder (required, except to re-attach to a --store run: it is stored with it)",
    )
    run.add_argument("--context", metavar="JSON|@FILE", help="initial context: a JSON object or @file.json")
    run.add_argument("--param", action="append", metavar="KEY=VALUE", help="run param (JSON value or string)")
    run.add_argument("--executor", choices=("memory", "redis"), default="memory")
    _redis_option(run)
    run.add_argument(
        "--progress",
        choices=("auto", "live", "plain", "none"),
        default="auto",
        help="progress on stderr: a live line on a terminal, plain lines otherwise (default: auto)",
    )
    run.add_argument(
        "--detach", action="store_true", help="with --executor redis: print the run id (a bare line) and exit"
    )
    run.add_argument("--json", action="store_true", help='with --detach: print {"run_id": ...} instead')
    run.add_argument(
        "--max-nodes", type=int, metavar="N", help="run budget: stop the run (failed) when node N+1 would start"
    )
    run.add_argument("--max-seconds", type=float, metavar="S", help="run budget: stop the run after S seconds")
    run.add_argument(
        "--store",
        metavar="FILE",
        help="run durably in this process, every node's result kept in this SQLite file: a run whose process "
        "died goes on where it stopped when the command is run again with its --run-id",
    )
    run.add_argument(
        "--run-id",
        metavar="ID",
        help="the run's id (with --store or --executor redis); with --store, an existing run is re-attached to "
        "(and recovered if its process died)",
    )
    run.add_argument(
        "--timeout",
        type=_positive(float),
        metavar="S",
        help="with --executor redis or --store: stop waiting after S seconds (exit 124); the run goes on",
    )
    _builder_options(run)

    validate = commands.add_parser("validate", help="check a graph file and list every error and warning")
    validate.add_argument("graph", metavar="GRAPH.json")
    validate.add_argument("--registry", metavar="module:NAME", help="also check node types against a registry")
    validate.add_argument("--dag", action="store_true", help="treat cycles (loops) as errors")
    validate.add_argument("--json", action="store_true", help="print the report as JSON")
    validate.add_argument(
        "--concurrency", action="store_true", help="also check parallel branches for races (declared reads/writes)"
    )
    _builder_options(validate)

    viz = commands.add_parser("viz", help="draw a graph file (Mermaid, DOT, or SVG/PNG through Graphviz)")
    viz.add_argument("graph", metavar="GRAPH.json")
    viz.add_argument("--format", choices=("mermaid", "dot", "svg", "png"), default="mermaid")
    viz.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    viz.add_argument("--registry", metavar="module:NAME", help="compile with this registry or GraphBuilder")
    viz.add_argument("--raw", action="store_true", help="draw the graph as written, without compiling it")
    _builder_options(viz)

    worker = commands.add_parser(
        "worker",
        help="run a distributed worker: node jobs from a Redis queue",
        description="Run node jobs of distributed runs from a Redis queue until SIGTERM/SIGINT. The first signal "
        "stops taking jobs and lets running ones finish for --shutdown-grace seconds, then releases them to "
        "another worker; a second releases them at once. Exits 0 either way.",
    )
    _worker_options(worker)

    runs = commands.add_parser(
        "runs", help="list runs, newest first", description="List the runs of a store file or on Redis, newest first."
    )
    runs.add_argument("--state", choices=_STATES, help="only the runs in this state")
    runs.add_argument("--limit", type=_positive(int), default=100, metavar="N", help="at most N runs (default 100)")
    runs.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    _run_source(runs)

    show = commands.add_parser("show", help="show a run as JSON: state, error, times, context")
    show.add_argument("run_id", metavar="RUN_ID")
    _run_source(show)

    resume = commands.add_parser(
        "resume",
        help="resume a run parked on a wait, and wait until it ends or pauses again",
        description="Resolve the open wait WAIT_ID (node_id#visit, listed by `flowcraft show`) of run RUN_ID with "
        "a value and an action; the run goes on in this process (--store) or on the workers (--redis). Prints "
        "its outcome like `run`; a run that pauses again prints its open waits and exits 4.",
    )
    resume.add_argument("run_id", metavar="RUN_ID")
    resume.add_argument("wait_id", metavar="WAIT_ID")
    resume.add_argument("--value", metavar="JSON", help="the value for the wait node's post (JSON; default null)")
    resume.add_argument("--action", metavar="ACTION", help="the action to go on with (one the wait allows)")
    resume.add_argument("--idempotency-key", metavar="KEY", help="a repeat with the same key returns the first result")
    resume.add_argument("--registry", metavar="module:NAME", help="override the registry the run was started with")
    resume.add_argument("--timeout", type=_positive(float), metavar="S", help="stop waiting after S seconds (exit 124)")
    resume.add_argument(
        "--progress", choices=("auto", "live", "plain", "none"), default="auto", help="progress on stderr"
    )
    _run_source(resume)

    status = commands.add_parser("status", help="show a run's status as JSON")
    status.add_argument("run_id", metavar="RUN_ID")
    _run_source(status)
    status.add_argument("--context", action="store_true", help="include the run's context")

    cancel = commands.add_parser("cancel", help="cancel a run")
    cancel.add_argument("run_id", metavar="RUN_ID")
    _run_source(cancel)
    cancel.add_argument("--reason", default="cancelled from the command line")

    ui = commands.add_parser(
        "ui",
        help="serve the run dashboard in the browser (the ui extra)",
        description="Serve a web dashboard of the runs of a store file or on Redis: runs list, each run's graph "
        "coloured live, its timeline, context and error; approve waits (store files) and cancel runs. Binds "
        "loopback by default; any other host needs --token.",
    )
    _run_source(ui)
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    ui.add_argument("--port", type=_positive(int), default=8600, help="port (default 8600)")
    ui.add_argument(
        "--token",
        metavar="T",
        help="access token every request must carry (header or cookie; required off loopback; default "
        "$FLOWCRAFT_UI_TOKEN)",
    )
    ui.add_argument(
        "--registry",
        metavar="module:NAME",
        help="node registry runs resumed from the dashboard go on with (default: the one `flowcraft run` stored)",
    )
    ui.add_argument("--factories", action="store_true", help="draw factory flows' edges by importing their factory")
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    # The commands' modules are imported when used (local imports), so `flowcraft --help`
    # and each command load only what they need.
    from .loading import BuilderOptions, StoreTarget  # local import: startup speed (see above)

    options = BuilderOptions(
        getattr(args, "sub_workflow_type", ()), getattr(args, "conditional_type", ()), getattr(args, "workflows", None)
    )
    if args.command == "run":
        from .run import run_command  # local import: startup speed

        return run_command(
            args.graph, args.registry, options, context=args.context, params=args.param, executor=args.executor,
            redis=_redis_target(args, args.redis), progress=args.progress, detach=args.detach,
            as_json=args.json, max_nodes=args.max_nodes, max_seconds=args.max_seconds,
            store=StoreTarget(args.store) if args.store else None, run_id=args.run_id, timeout=args.timeout,
        )  # fmt: skip
    if args.command == "validate":
        from .graphs import validate_command  # local import: startup speed

        return validate_command(
            args.graph, args.registry, options, as_json=args.json, dag=args.dag, concurrency=args.concurrency
        )
    if args.command == "viz":
        from .graphs import viz_command  # local import: startup speed

        return viz_command(args.graph, args.registry, options, fmt=args.format, output=args.output, raw=args.raw)
    if args.command == "resume":
        if not args.store:
            import json  # local import: startup speed (only this command parses --value here)

            from .remote import resume_on_redis  # local import: startup speed

            try:
                value = json.loads(args.value) if args.value is not None else None
            except json.JSONDecodeError as error:
                raise CliError(f"--value is not JSON ({error}): quote a string as '\"text\"'") from None
            redis = _redis_target(args, args.redis or os.environ.get("FLOWCRAFT_REDIS_URL", _DEFAULT_REDIS))
            return resume_on_redis(
                redis, args.run_id, args.wait_id, value=value, action=args.action,
                idempotency_key=args.idempotency_key, timeout=args.timeout, progress=args.progress,
            )  # fmt: skip
        from .durable import resume_durable  # local import: the durable module loads only for this command

        return resume_durable(
            StoreTarget(args.store), args.run_id, args.wait_id, value=args.value, action=args.action,
            idempotency_key=args.idempotency_key, registry=args.registry, progress=args.progress, timeout=args.timeout,
        )  # fmt: skip
    if args.command in ("status", "cancel", "show", "runs"):
        # local import: startup speed
        from .remote import cancel_command, runs_command, show_command, status_command

        target = (
            StoreTarget(args.store)
            if args.store
            else _redis_target(args, args.redis or os.environ.get("FLOWCRAFT_REDIS_URL", _DEFAULT_REDIS))
        )  # fmt: skip
        if args.command == "status":
            return status_command(args.run_id, target, with_context=args.context)
        if args.command == "show":
            return show_command(args.run_id, target)
        if args.command == "runs":
            return runs_command(target, state=args.state, limit=args.limit, as_json=args.json)
        return cancel_command(args.run_id, target, args.reason)
    if args.command == "ui":
        from .ui import ui_command  # local import: startup speed; the ui extra is checked there

        where = (
            StoreTarget(args.store)
            if args.store
            else _redis_target(args, args.redis or os.environ.get("FLOWCRAFT_REDIS_URL", _DEFAULT_REDIS))
        )  # fmt: skip
        return ui_command(
            where, host=args.host, port=args.port, token=args.token, registry=args.registry, factories=args.factories
        )
    if args.command == "worker":
        # local import: the worker needs the redis extra, checked first for a clear error
        from .remote import require_distributed

        require_distributed()
        # local import: loads the distributed package, only for this command
        from .worker import WorkerOptions, worker_command

        return worker_command(
            WorkerOptions(
                registry=args.registry, redis=_redis_target(args, args.redis),
                concurrency=args.concurrency, dependencies=args.dependencies, middleware=tuple(args.middleware),
                lock_duration=args.lock_duration, stalled_interval=args.stalled_interval,
                reconcile_interval=args.reconcile_interval, unknown_type_grace=args.unknown_type_grace,
                shutdown_grace=args.shutdown_grace, max_connections=args.max_connections,
                log_level=args.log_level,
            )
        )  # fmt: skip
    raise CliError(
        "a command is required: run, validate, viz, worker, runs, show, status, cancel or ui (see `flowcraft --help`)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``flowcraft`` command with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        return _dispatch(args)
    except CliError as error:
        if debug:
            traceback.print_exc()
        print(f"flowcraft: error: {error.message}", file=sys.stderr)
        return error.code
    except BrokenPipeError:
        # stdout was closed early (e.g. `| head`): stop quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("flowcraft: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            traceback.print_exc()
        print(f"flowcraft: error: {type(error).__name__}: {error} (rerun with --debug for the traceback)",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
