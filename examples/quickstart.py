"""A small, real workflow run in memory: count words in a text, branch on the result.

Run: bash scripts/demo   (or: python examples/quickstart.py)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from flowcraft import ConsoleLogger, Flow, Node, NodeArgs, ParallelFlow, TypedContext

TEXT = """Flowcraft models a process as a graph of nodes. Each node prepares, executes and
posts its result; the action it returns picks the next node. Branches run concurrently
and join once all of them are done."""


class Tokenize(Node[str, list[str], Any]):
    """Split the text into lower-case words."""

    async def prep(self, args: NodeArgs[Any, Any]) -> str:
        return str(await args.ctx.get("text", ""))

    def exec(self, args: NodeArgs[str, Any]) -> list[str]:
        return [w.strip(".,;").lower() for w in args.prep_res.split() if w.strip(".,;")]

    async def post(self, args: NodeArgs[str, list[str]]) -> None:
        await args.ctx.set("words", args.exec_res)


class CountWords(Node[list[str], int, Any]):
    """Count all words."""

    async def prep(self, args: NodeArgs[Any, Any]) -> list[str]:
        return list(await args.ctx.get("words", []))

    def exec(self, args: NodeArgs[list[str], Any]) -> int:
        return len(args.prep_res)

    async def post(self, args: NodeArgs[list[str], int]) -> None:
        await args.ctx.set("count", args.exec_res)


class TopWords(Node[list[str], list[tuple[str, int]], Any]):
    """Find the three most frequent words longer than three letters."""

    async def prep(self, args: NodeArgs[Any, Any]) -> list[str]:
        return list(await args.ctx.get("words", []))

    def exec(self, args: NodeArgs[list[str], Any]) -> list[tuple[str, int]]:
        return Counter(w for w in args.prep_res if len(w) > 3).most_common(3)

    async def post(self, args: NodeArgs[list[str], list[tuple[str, int]]]) -> None:
        await args.ctx.set("top", args.exec_res)


class Classify(Node[int, str, str]):
    """Join point: runs once both analyses are done; branches on the length."""

    async def prep(self, args: NodeArgs[Any, Any]) -> int:
        return int(await args.ctx.get("count", 0))

    def exec(self, args: NodeArgs[int, Any]) -> str:
        return "long" if args.prep_res > args.params.get("threshold", 20) else "short"

    async def post(self, args: NodeArgs[int, str]) -> str:
        await args.ctx.set("verdict", args.exec_res)
        return args.exec_res


class Report(Node[Any, Any, Any]):
    """Print a summary."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    async def prep(self, args: NodeArgs[Any, Any]) -> dict[str, Any]:
        return args.ctx.to_dict()

    def exec(self, args: NodeArgs[dict[str, Any], Any]) -> None:
        data = args.prep_res
        print(f"{self.label}: {data['count']} words; top: {data['top']}")


def build() -> Flow:
    """Tokenize, then count and rank in parallel, then classify (fan-in) and report."""
    tokenize, count, top, classify = Tokenize(), CountWords(), TopWords(), Classify()
    count.next(classify)
    top.next(classify)
    classify.next(Report("a long text"), "long")
    classify.next(Report("a short text"), "short")
    flow = Flow(tokenize)
    tokenize.next(ParallelFlow([count, top]))
    return flow.with_params(threshold=20)  # type: ignore[return-value]


async def main() -> None:
    ctx = TypedContext({"text": TEXT})
    action = await build().run(ctx, logger=ConsoleLogger("warn"))
    print("final action:", action, "| verdict:", await ctx.get("verdict"))


if __name__ == "__main__":
    asyncio.run(main())
