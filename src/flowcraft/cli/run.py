"""``flowcraft run``: build a graph file and run it, in memory, on Redis workers, or
durably in this process (``--store``, ``flowcraft.cli.durable``)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from ..budget import Budget
from ..context import TypedContext
from ..errors import AbortError, GraphError, WorkflowError
from ..graph import BuildResult
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from .loading import (
    BuilderOptions,
    RedisTarget,
    StoreTarget,
    load_builder,
    parse_context,
    parse_params,
    read_graph,
    user_node_ids,
)
from .output import print_result, progress_display
from .progress import ProgressDisplay
from .remote import run_distributed

__all__ = ["run_command"]


def run_command(
    path: str,
    registry: str | None,
    options: BuilderOptions,
    *,
    context: str | None,
    params: list[str] | None,
    executor: str,
    redis: RedisTarget,
    progress: str,
    detach: bool,
    as_json: bool = False,
    max_nodes: int | None = None,
    max_seconds: float | None = None,
    store: StoreTarget | None = None,
    run_id: str | None = None,
    timeout: float | None = None,
) -> int:
    """Build the graph file with the registry, run it, print the action and context as JSON.

    ``max_nodes`` / ``max_seconds`` give the run a [`Budget`][flowcraft.Budget]. With
    ``store`` the run is durable (``flowcraft.cli.durable.run_durable``).
    """
    budget = _budget(max_nodes, max_seconds)
    if store is not None:
        if executor == "redis":
            raise CliError("--store runs in this process: drop --executor redis (or --store, to run on workers)")
        if detach:
            raise CliError("--detach needs --executor redis (a --store run goes on in this process)")
        # local import: the durable module (SQLite) loads only for --store runs
        from .durable import run_durable

        return run_durable(
            path, registry, options, store=store, run_id=run_id, context=context, params=params, progress=progress,
            timeout=timeout, budget=budget,
        )  # fmt: skip
    if registry is None:
        raise CliError("flowcraft run: the following arguments are required: --registry (see `flowcraft run --help`)")
    graph = read_graph(path)
    initial = parse_context(context)
    run_params = parse_params(params)
    builder = load_builder(registry, options)
    try:
        result = builder.build(graph)
    except GraphError as error:
        raise CliError(f"graph file {path!r} is invalid: {error} (see `flowcraft validate {path}`)") from None
    if executor == "redis":
        blueprint = builder.build_blueprint(graph).blueprint
        return run_distributed(
            blueprint,
            initial,
            run_params,
            redis,
            progress=progress,
            detach=detach,
            as_json=as_json,
            node_ids=user_node_ids(result),
            budget=budget,
            timeout=timeout,
            run_id=run_id,
        )
    if detach:
        raise CliError("--detach needs --executor redis (an in-memory run lives in this process)")
    if run_id is not None or timeout is not None:
        option = "--run-id" if run_id is not None else "--timeout"
        raise CliError(f"{option} needs --store (a durable run) or --executor redis (an in-memory run has no id)")
    display = progress_display(progress, sys.stderr, user_node_ids(result))
    ctx = TypedContext(initial)
    try:
        action = asyncio.run(_run_in_memory(result, ctx, run_params, display, budget))
    except (WorkflowError, AbortError) as error:
        print_result(None, ctx.to_dict(), error)
        what = "cancelled" if isinstance(error, AbortError) else "failed"
        raise CliError(f"run {what}: {error}", EXIT_FAILED) from error
    print_result(action, ctx.to_dict())
    return EXIT_OK


def _budget(max_nodes: int | None, max_seconds: float | None) -> Budget | None:
    if max_nodes is None and max_seconds is None:
        return None
    try:
        return Budget(max_node_runs=max_nodes, max_seconds=max_seconds)
    except (TypeError, ValueError) as error:
        option = "--max-nodes" if "max_node_runs" in str(error) else "--max-seconds"
        raise CliError(f"{option}: {error}", EXIT_USAGE) from None


async def _run_in_memory(
    result: BuildResult,
    ctx: TypedContext,
    params: dict[str, Any],
    display: ProgressDisplay | None,
    budget: Budget | None = None,
) -> Any:
    stop = asyncio.Event()
    ticker = asyncio.ensure_future(display.tick(stop)) if display is not None and display.live else None
    try:
        return await result.flow.run(ctx, params=params, on_event=display, budget=budget)
    finally:
        if ticker is not None:
            stop.set()
            await ticker
