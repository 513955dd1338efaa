"""Factory flows for the cluster tests (workers import them by name): batches, which run
inside one node job on the worker."""

from __future__ import annotations

from typing import Any

from flowcraft import BatchFlow, Flow, Node, NodeArgs, ParallelBatchFlow


class Square(Node):
    """Squares its ``n`` param into the context key ``sq<n>``."""

    def prep(self, args: NodeArgs[Any, Any]) -> int:
        return int(args.params["n"])

    def exec(self, args: NodeArgs[int, Any]) -> int:
        return args.prep_res * args.prep_res

    async def post(self, args: NodeArgs[int, int]) -> None:
        await args.ctx.set(f"sq{args.prep_res}", args.exec_res)


class Squares(ParallelBatchFlow):
    """``Square`` for n = 0..5, at most 2 at once."""

    concurrency = 2

    def prep(self, args: NodeArgs[Any, Any]) -> list[dict[str, int]]:
        return [{"n": n} for n in range(6)]


class Tail(BatchFlow):
    """``Square`` for n = 6, 7, in order."""

    def prep(self, args: NodeArgs[Any, Any]) -> list[dict[str, int]]:
        return [{"n": 6}, {"n": 7}]


class Total(Node):
    """Sums the squares."""

    async def prep(self, args: NodeArgs[Any, Any]) -> int:
        return sum(value for key, value in args.ctx.entries() if key.startswith("sq"))

    async def post(self, args: NodeArgs[int, Any]) -> None:
        await args.ctx.set("total", args.prep_res)


def make_batches() -> Flow:
    """A parallel batch, then a sequential batch, then a node reading what both wrote."""
    squares, tail, total = Squares(Square()), Tail(Square()), Total()
    squares.next(tail)
    tail.next(total)
    return Flow(squares)
