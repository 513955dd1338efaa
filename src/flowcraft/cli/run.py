"""``flowcraft run``: build a graph file and run it, in memory or on Redis workers."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from ..budget import Budget
from ..context import TypedContext
from ..errors import AbortError, GraphError, WorkflowError
from ..graph import BuildResult
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from .loading import BuilderOptions, RedisTarget, load_builder, parse_context, parse_params, read_graph
from .output import print_result, progress_display
from .progress import ProgressDisplay
from .remote import run_distributed

__all__ = ["run_command"]


def _user_node_ids(result: BuildResult) -> list[str]:
    return [
        node_id
        for node_id, node in result.node_map.items()
        if not str(getattr(node.graph_data, "type", "")).startswith("__internal")
    ]


def run_command(
    path: str,
    registry: str,
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
) -> int:
    """Build the graph file with the registry, run it, print the action and context as JSON.

    ``max_nodes`` / ``max_seconds`` give the run a [`Budget`][flowcraft.Budget].
    """
    budget = _budget(max_nodes, max_seconds)
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
            node_ids=_user_node_ids(result),
            budget=budget,
        )
    if detach:
        raise CliError("--detach needs --executor redis (an in-memory run lives in this process)")
    display = progress_display(progress, sys.stderr, _user_node_ids(result))
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
