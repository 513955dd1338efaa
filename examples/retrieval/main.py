"""Retrieval over local documents: load → chunk → index (tf-idf) → retrieve → answer with citations.

Run it: ``python examples/retrieval/main.py ["your question"] [--docs DIR] [-k 3]``
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
from examples._shared.text import TfIdfIndex, best_sentences  # noqa: E402
from flowcraft import Node, NodeArgs, SequenceFlow, TypedContext  # noqa: E402

HERE = Path(__file__).resolve().parent


class LoadDocuments(Node[Path, dict[str, str], None]):
    """Reads every Markdown file of the ``docs`` param directory."""

    def prep(self, args: NodeArgs[Any, Any]) -> Path:
        return Path(args.params["docs"])

    async def exec(self, args: NodeArgs[Path, Any]) -> dict[str, str]:
        paths = sorted(args.prep_res.glob("*.md"))
        if not paths:
            raise FileNotFoundError(f"no *.md documents in {args.prep_res}")
        texts = await asyncio.gather(*(asyncio.to_thread(p.read_text, encoding="utf-8") for p in paths))
        return {p.stem: text for p, text in zip(paths, texts, strict=True)}

    async def post(self, args: NodeArgs[Path, dict[str, str]]) -> None:
        await args.ctx.set("documents", args.exec_res)


class Chunk(Node[dict[str, str], list[dict[str, str]], None]):
    """Splits documents into paragraph chunks with ids ``<doc>#<n>`` (headings dropped)."""

    async def prep(self, args: NodeArgs[Any, Any]) -> dict[str, str]:
        return dict(await args.ctx.get("documents"))

    def exec(self, args: NodeArgs[dict[str, str], Any]) -> list[dict[str, str]]:
        chunks = []
        for doc, text in args.prep_res.items():
            paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip() and not p.startswith("#")]
            chunks += [{"id": f"{doc}#{i}", "text": p} for i, p in enumerate(paragraphs, 1)]
        return chunks

    async def post(self, args: NodeArgs[Any, list[dict[str, str]]]) -> None:
        await args.ctx.set("chunks", args.exec_res)


class Index(Node[list[dict[str, str]], TfIdfIndex, None]):
    """Builds the tf-idf index over the chunks."""

    async def prep(self, args: NodeArgs[Any, Any]) -> list[dict[str, str]]:
        return list(await args.ctx.get("chunks"))

    def exec(self, args: NodeArgs[list[dict[str, str]], Any]) -> TfIdfIndex:
        return TfIdfIndex((c["id"], c["text"]) for c in args.prep_res)

    async def post(self, args: NodeArgs[Any, TfIdfIndex]) -> None:
        await args.ctx.set("index", args.exec_res)


class Retrieve(Node[tuple[str, TfIdfIndex], list[dict[str, Any]], str]):
    """The ``k`` best chunks for the question; branches to ``no_match`` when nothing scores."""

    async def prep(self, args: NodeArgs[Any, Any]) -> tuple[str, TfIdfIndex]:
        return str(await args.ctx.get("question")), await args.ctx.get("index")

    def exec(self, args: NodeArgs[tuple[str, TfIdfIndex], Any]) -> list[dict[str, Any]]:
        question, index = args.prep_res
        hits = index.search(question, k=int(args.params.get("k", 3)))
        return [{"id": doc_id, "score": score, "text": index.texts[doc_id]} for doc_id, score in hits]

    async def post(self, args: NodeArgs[Any, list[dict[str, Any]]]) -> str | None:
        await args.ctx.set("hits", args.exec_res)
        return None if args.exec_res else "no_match"


class Generate(Node[tuple[str, list[dict[str, Any]]], str, None]):
    """Answers from the retrieved chunks only, citing them as ``[doc#n]``."""

    def __init__(self, llm: LLMClient) -> None:
        super().__init__()
        self.llm = llm

    async def prep(self, args: NodeArgs[Any, Any]) -> tuple[str, list[dict[str, Any]]]:
        return str(await args.ctx.get("question")), list(await args.ctx.get("hits"))

    async def exec(self, args: NodeArgs[tuple[str, list[dict[str, Any]]], Any]) -> str:
        question, hits = args.prep_res

        def local() -> str:
            # Extractive: the most relevant sentence of each of the two best chunks.
            return " ".join(f"{best_sentences(h['text'], question, 1)[0]} [{h['id']}]" for h in hits[:2])

        sources = "\n".join(f"[{h['id']}] {h['text']}" for h in hits)
        prompt = (
            f"Answer the question using only these sources, citing them like [doc#1].\n\n{sources}\n\nQ: {question}"
        )
        return await self.llm.complete(prompt, system="You answer from the given sources only.", local=local)

    async def post(self, args: NodeArgs[Any, str]) -> None:
        await args.ctx.set("answer", args.exec_res)


class NoMatch(Node[None, None, None]):
    """Nothing relevant was found."""

    async def post(self, args: NodeArgs[Any, Any]) -> None:
        await args.ctx.set("answer", "No document matches the question.")


def build_pipeline(llm: LLMClient) -> SequenceFlow:
    """load → chunk → index → retrieve → generate, with retrieve --no_match--> no_match."""
    flow = SequenceFlow(LoadDocuments(), Chunk(), Index(), retrieve := Retrieve(), Generate(llm))
    retrieve.next(NoMatch(), "no_match")
    return flow


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default="What happens when every retry attempt fails?")
    parser.add_argument("--docs", default=str(HERE / "docs"))
    parser.add_argument("-k", type=int, default=3)
    args = parser.parse_args(argv)
    llm = default_client()
    print(f"LLM: {llm.name}")
    ctx = TypedContext({"question": args.question})
    await build_pipeline(llm).run(ctx, params={"docs": args.docs, "k": args.k})
    print(f"question: {args.question}")
    for hit in await ctx.get("hits"):
        print(f"  {hit['score']:.3f}  {hit['id']}")
    print(f"answer: {await ctx.get('answer')}")
    return {key: value for key, value in ctx.entries() if key != "index"}


if __name__ == "__main__":
    asyncio.run(main())
