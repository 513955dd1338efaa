"""Four reviewers score one draft in parallel and tally into shared context keys.

``Careless`` reads the tally, thinks, and writes it back (loses votes when reviewers
overlap); ``Reviewer`` changes the keys atomically: ``ctx.update`` for the score, and
keys with merge policies for the notes (``append``) and the tags (``union``).
"""

from __future__ import annotations

from flowcraft import ContextKey, Flow, Node, NodeArgs, ParallelFlow, sleep

NOTES = ContextKey[list[str]]("notes", merge="append")
TAGS = ContextKey[list[str]]("tags", merge="union")
REVIEWERS = {"ada": 3, "grace": 5, "alan": 4, "edsger": 2}


class Reviewer(Node):
    updates = ("score",)
    writes = (NOTES, TAGS)

    def __init__(self, name: str, score: int) -> None:
        super().__init__()
        self.reviewer, self.score = name, score

    async def post(self, args: NodeArgs) -> None:
        await sleep(0.05)  # reading the draft: the reviewers overlap
        await args.ctx.update("score", lambda total: total + self.score, 0)
        await args.ctx.set(NOTES, [f"{self.reviewer}: {self.score}/5"])
        await args.ctx.set(TAGS, ["reviewed", "good" if self.score >= 4 else "weak"])


class Careless(Reviewer):
    reads, writes, updates = ("score",), ("score",), ()

    async def post(self, args: NodeArgs) -> None:
        total = await args.ctx.get("score", 0)
        await sleep(0.05)
        await args.ctx.set("score", total + self.score)


def make_flow() -> Flow:
    """The atomic version (a factory, so durable runs can rebuild it)."""
    return Flow(ParallelFlow([Reviewer(n, s).with_id(n) for n, s in REVIEWERS.items()]).with_id("reviews"))


def make_careless_flow() -> Flow:
    """The read-modify-write version."""
    block = ParallelFlow([Careless(n, s).with_id(n) for n, s in REVIEWERS.items()])
    return Flow(block.with_id("careless-reviews"))
