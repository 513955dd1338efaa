"""A sequential pipeline: load a document, clean it, analyse it, summarize it, write a report.

Run it: ``python examples/pipeline/main.py [FILE] [--out DIR]`` — without ``--out`` the report
is written to a temporary directory, printed, and the directory removed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples._shared.llm import LLMClient, default_client  # noqa: E402
from examples._shared.text import sentences, tokens, top_terms  # noqa: E402
from flowcraft import Node, NodeArgs, NodeFinished, RunEvent, SequenceFlow, TypedContext  # noqa: E402

HERE = Path(__file__).resolve().parent


class Load(Node[Path, str, None]):
    """Reads the file named by the ``path`` param (retried: files on network shares flake)."""

    def __init__(self) -> None:
        super().__init__(max_retries=3, wait=0.05)

    def prep(self, args: NodeArgs[Any, Any]) -> Path:
        return Path(args.params["path"])

    async def exec(self, args: NodeArgs[Path, Any]) -> str:
        return await asyncio.to_thread(args.prep_res.read_text, encoding="utf-8")

    async def post(self, args: NodeArgs[Path, str]) -> None:
        await args.ctx.set("raw", args.exec_res)
        await args.ctx.set("source", args.prep_res.name)


class Clean(Node[str, dict[str, Any], None]):
    """Splits the title from the body and normalizes whitespace."""

    async def prep(self, args: NodeArgs[Any, Any]) -> str:
        return str(await args.ctx.get("raw"))

    def exec(self, args: NodeArgs[str, Any]) -> dict[str, Any]:
        lines = [line.strip() for line in args.prep_res.splitlines()]
        title = next(line for line in lines if line)
        paragraphs = [p for p in "\n".join(lines[lines.index(title) + 1 :]).split("\n\n") if p.strip()]
        return {"title": title, "paragraphs": [" ".join(p.split()) for p in paragraphs]}

    async def post(self, args: NodeArgs[str, dict[str, Any]]) -> None:
        await args.ctx.set("title", args.exec_res["title"])
        await args.ctx.set("paragraphs", args.exec_res["paragraphs"])


class Analyze(Node[list[str], dict[str, Any], None]):
    """Counts words and sentences, estimates reading time, finds the key terms."""

    async def prep(self, args: NodeArgs[Any, Any]) -> list[str]:
        return list(await args.ctx.get("paragraphs"))

    def exec(self, args: NodeArgs[list[str], Any]) -> dict[str, Any]:
        text = " ".join(args.prep_res)
        words = len(text.split())
        return {
            "paragraphs": len(args.prep_res),
            "sentences": len(sentences(text)),
            "words": words,
            "reading_minutes": round(words / 230, 1),
            "key_terms": top_terms(args.prep_res, 6),
        }

    async def post(self, args: NodeArgs[Any, dict[str, Any]]) -> None:
        await args.ctx.set("stats", args.exec_res)


class Summarize(Node[tuple[str, list[str], list[str]], str, None]):
    """A three-sentence summary from the language model (or the local stand-in)."""

    def __init__(self, llm: LLMClient) -> None:
        super().__init__()
        self.llm = llm

    async def prep(self, args: NodeArgs[Any, Any]) -> tuple[str, list[str], list[str]]:
        stats = await args.ctx.get("stats")
        return str(await args.ctx.get("title")), list(await args.ctx.get("paragraphs")), stats["key_terms"]

    async def exec(self, args: NodeArgs[tuple[str, list[str], list[str]], Any]) -> str:
        title, paragraphs, terms = args.prep_res

        def local() -> str:
            # Lead sentence of the first paragraphs, ranked by how many key terms they hold.
            leads = [sentences(p)[0] for p in paragraphs]
            ranked = sorted(range(len(leads)), key=lambda i: (-len(set(tokens(leads[i])) & set(terms)), i))
            return " ".join(leads[i] for i in sorted(ranked[:3]))

        prompt = f"Summarize this article in three sentences.\n\n# {title}\n\n" + "\n\n".join(paragraphs)
        return await self.llm.complete(prompt, system="You write concise, factual summaries.", local=local)

    async def post(self, args: NodeArgs[Any, str]) -> None:
        await args.ctx.set("summary", args.exec_res)


class WriteReport(Node[dict[str, Any], Path, str]):
    """Renders a Markdown report into the ``out`` param directory."""

    async def prep(self, args: NodeArgs[Any, Any]) -> dict[str, Any]:
        ctx = args.ctx
        return {key: await ctx.get(key) for key in ("title", "source", "stats", "summary")}

    def exec(self, args: NodeArgs[dict[str, Any], Any]) -> Path:
        r = args.prep_res
        stats = r["stats"]
        report = (
            f"# Report: {r['title']}\n\nSource: `{r['source']}`\n\n## Summary\n\n{r['summary']}\n\n## Numbers\n\n"
            f"- {stats['words']} words, {stats['sentences']} sentences, {stats['paragraphs']} paragraphs\n"
            f"- about {stats['reading_minutes']} minutes to read\n"
            f"- key terms: {', '.join(stats['key_terms'])}\n"
        )
        out = Path(args.params["out"]) / "report.md"
        out.write_text(report, encoding="utf-8")
        return out

    async def post(self, args: NodeArgs[Any, Path]) -> str:
        await args.ctx.set("report_path", str(args.exec_res))
        return "written"


def build_flow(llm: LLMClient) -> SequenceFlow:
    """The pipeline: each node's default action leads to the next."""
    return SequenceFlow(Load(), Clean(), Analyze(), Summarize(llm), WriteReport())


def timing(event: RunEvent) -> None:
    """A run-event listener: one line per finished node."""
    if isinstance(event, NodeFinished):
        print(f"  {event.node_name:<12} {event.duration * 1000:7.1f} ms")


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(HERE / "data" / "article.txt"))
    parser.add_argument(
        "--out", help="directory for report.md (default: a temporary directory, removed after printing)"
    )
    args = parser.parse_args(argv)
    llm = default_client()
    print(f"LLM: {llm.name}")
    if args.out:
        return await run_pipeline(llm, args.path, args.out)
    # The report is printed; its temporary directory is removed afterwards.
    with tempfile.TemporaryDirectory(prefix="flowcraft-pipeline-") as out:
        return await run_pipeline(llm, args.path, out)


async def run_pipeline(llm: LLMClient, path: str, out: str) -> dict[str, Any]:
    """Run the pipeline on ``path``, writing ``report.md`` into ``out``, and print the report."""
    ctx = TypedContext()
    print("steps:")
    action = await build_flow(llm).run(ctx, params={"path": path, "out": out}, on_event=timing)
    report = await asyncio.to_thread(Path(await ctx.get("report_path")).read_text, encoding="utf-8")
    print(f"action: {action}\n")
    print(report)
    return ctx.to_dict()


if __name__ == "__main__":
    asyncio.run(main())
