"""An agent loop: decide → search a local corpus → decide again … → answer.

Run it: ``python examples/agent/main.py ["your question"]``
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples._shared.llm import LLMClient, default_client  # noqa: E402
from examples._shared.text import TfIdfIndex, best_sentences, tokens  # noqa: E402
from flowcraft import Flow, Node, NodeArgs, TypedContext  # noqa: E402

HERE = Path(__file__).resolve().parent
MAX_SEARCHES = 3
MIN_SCORE = 0.1  # cosine similarity below which a document is not about the query


def load_corpus(directory: Path) -> TfIdfIndex:
    """Index every ``*.txt`` file of ``directory`` by its file name."""
    return TfIdfIndex((path.stem, path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.txt")))


class Decide(Node[dict[str, Any], dict[str, str], str]):
    """Chooses the next step: ``search`` (with a query) or ``answer``."""

    def __init__(self, llm: LLMClient) -> None:
        super().__init__()
        self.llm = llm

    async def prep(self, args: NodeArgs[Any, Any]) -> dict[str, Any]:
        ctx = args.ctx
        return {"question": await ctx.get("question"), "notes": await ctx.get("notes", []),
                "queries": await ctx.get("queries", [])}  # fmt: skip

    async def exec(self, args: NodeArgs[dict[str, Any], Any]) -> dict[str, str]:
        question, notes, queries = args.prep_res["question"], args.prep_res["notes"], args.prep_res["queries"]

        def local() -> str:
            # Rule: search for the question first; then follow up on a name the newest note
            # mentions that no search has used yet (a capitalized word inside a sentence);
            # answer when there is none, or two sources are in, or the budget is spent.
            if not queries:
                return f"search: {question}"
            if len(notes) >= 2 or len(queries) >= MAX_SEARCHES or not notes:
                return "answer"
            asked = {t for q in [question, *queries] for t in tokens(q)}
            names = [w.strip(".,;:") for w in notes[-1]["text"].split()[1:] if w[:1].isupper()]
            fresh = [n for n in names if n.lower() not in asked and len(n) > 3]
            return f"search: {fresh[0]}" if fresh else "answer"

        prompt = (
            f"Question: {question}\nNotes so far: {[n['text'] for n in notes]}\nSearches done: {queries}\n"
            f"Reply 'search: <query>' to search the corpus ({MAX_SEARCHES} searches at most) or 'answer'."
        )
        reply = (await self.llm.complete(prompt, system="You are a careful research agent.", local=local)).strip()
        if reply.lower().startswith("search:") and len(queries) < MAX_SEARCHES:
            return {"action": "search", "query": reply.split(":", 1)[1].strip()}
        return {"action": "answer", "query": ""}

    async def post(self, args: NodeArgs[Any, dict[str, str]]) -> str:
        decision = args.exec_res
        await args.ctx.set("query", decision["query"])
        trace = await args.ctx.get("trace", [])
        await args.ctx.set("trace", [*trace, f"decide -> {decision['action']} {decision['query']}".strip()])
        return decision["action"]


class Search(Node[tuple[str, list[dict[str, str]]], dict[str, str] | None, None]):
    """Finds the best document not read yet and notes its most relevant sentences."""

    def __init__(self, index: TfIdfIndex) -> None:
        super().__init__()
        self.index = index

    async def prep(self, args: NodeArgs[Any, Any]) -> tuple[str, list[dict[str, str]]]:
        return str(await args.ctx.get("query")), list(await args.ctx.get("notes", []))

    def exec(self, args: NodeArgs[tuple[str, list[dict[str, str]]], Any]) -> dict[str, str] | None:
        query, notes = args.prep_res
        read = {note["source"] for note in notes}
        for doc_id, score in self.index.search(query, k=5):
            if doc_id not in read and score >= MIN_SCORE:
                return {"source": doc_id, "text": " ".join(best_sentences(self.index.texts[doc_id], query, 2))}
        return None

    async def post(self, args: NodeArgs[tuple[str, list[dict[str, str]]], dict[str, str] | None]) -> None:
        query, notes = args.prep_res
        queries = await args.ctx.get("queries", [])
        await args.ctx.set("queries", [*queries, query])
        if args.exec_res is not None:
            await args.ctx.set("notes", [*notes, args.exec_res])
        found = args.exec_res["source"] if args.exec_res else "nothing new"
        await args.ctx.set("trace", [*(await args.ctx.get("trace")), f"search {query!r} -> {found}"])


class Answer(Node[tuple[str, list[dict[str, str]]], str, str]):
    """Writes the answer from the notes, citing the sources."""

    def __init__(self, llm: LLMClient) -> None:
        super().__init__()
        self.llm = llm

    async def prep(self, args: NodeArgs[Any, Any]) -> tuple[str, list[dict[str, str]]]:
        return str(await args.ctx.get("question")), list(await args.ctx.get("notes", []))

    async def exec(self, args: NodeArgs[tuple[str, list[dict[str, str]]], Any]) -> str:
        question, notes = args.prep_res

        def local() -> str:
            if not notes:
                return "I could not find anything about that in the corpus."
            return " ".join(f"{note['text']} [{note['source']}]" for note in notes)

        prompt = f"Answer from these notes only, citing [source]: {notes}\n\nQuestion: {question}"
        return await self.llm.complete(prompt, local=local)

    async def post(self, args: NodeArgs[Any, str]) -> str:
        await args.ctx.set("answer", args.exec_res)
        return "done"


def build_agent(llm: LLMClient, index: TfIdfIndex) -> Flow:
    """decide --search--> search --> decide (the loop);  decide --answer--> answer."""
    decide, search, answer = Decide(llm).with_id("decide"), Search(index).with_id("search"), Answer(llm)
    decide.next(search, "search")
    decide.next(answer.with_id("answer"), "answer")
    search.next(decide)
    return Flow(decide)


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default="Who invented the lens used in lighthouses, and when?")
    args = parser.parse_args(argv)
    llm = default_client()
    print(f"LLM: {llm.name}")
    ctx = TypedContext({"question": args.question})
    await build_agent(llm, load_corpus(HERE / "corpus")).run(ctx)
    print(f"question: {args.question}")
    for step in await ctx.get("trace"):
        print(f"  {step}")
    print(f"answer: {await ctx.get('answer')}")
    return ctx.to_dict()


if __name__ == "__main__":
    asyncio.run(main())
