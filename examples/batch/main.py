"""Process many files concurrently with a concurrency limit (``ParallelBatchFlow``).

Run it: ``python examples/batch/main.py [DIR] [--concurrency N]`` — without DIR it writes
40 sample files (and one unreadable entry) to a temporary directory first, and removes it
at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples._shared.text import top_terms  # noqa: E402
from flowcraft import BatchOutcome, Node, NodeArgs, ParallelBatchFlow, SequenceFlow, TypedContext  # noqa: E402

_WORD_TEXT = "river stone forest lantern harbor meadow copper signal orchard glacier ember willow"
WORDS = tuple(_WORD_TEXT.split())


def make_samples(directory: Path, count: int = 40) -> Path:
    """Write ``count`` deterministic text files, plus a directory posing as a file (it fails)."""
    for i in range(count):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(50 + i * 5)]
        lines = [" ".join(words[k : k + 10]) for k in range(0, len(words), 10)]
        (directory / f"doc{i:03d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / "broken.txt").mkdir()
    return directory


class InFlight:
    """Counts how many items run at once (shared by every item of the batch)."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0


class ProcessFile(Node[Path, dict[str, Any], None]):
    """One item: read a file (off the event loop), count lines and words, hash it."""

    def __init__(self, in_flight: InFlight) -> None:
        super().__init__()
        self.in_flight = in_flight

    def prep(self, args: NodeArgs[Any, Any]) -> Path:
        return Path(args.params["path"])

    async def exec(self, args: NodeArgs[Path, Any]) -> dict[str, Any]:
        self.in_flight.now += 1
        self.in_flight.peak = max(self.in_flight.peak, self.in_flight.now)
        try:
            data = await asyncio.to_thread(args.prep_res.read_bytes)
            await asyncio.sleep(0.02)  # stands for slow I/O (an upload, an API call)
        finally:
            self.in_flight.now -= 1
        text = data.decode("utf-8")
        return {
            "lines": text.count("\n"),
            "words": len(text.split()),
            "sha256": hashlib.sha256(data).hexdigest()[:12],
            "top": top_terms([text], 1)[0],
        }

    async def post(self, args: NodeArgs[Path, dict[str, Any]]) -> None:
        await args.ctx.set(f"file:{args.prep_res.name}", args.exec_res)


def _cause(error: BaseException | None) -> str:
    original = getattr(error, "original_error", None) or error
    return f"{type(original).__name__}: {original}"


class ProcessAll(ParallelBatchFlow):
    """One item per ``*.txt`` entry of the ``dir`` param; at most ``concurrency`` at once."""

    def prep(self, args: NodeArgs[Any, Any]) -> list[dict[str, str]]:
        return [{"path": str(p)} for p in sorted(Path(args.params["dir"]).glob("*.txt"))]

    async def post(self, args: NodeArgs[Any, list[BatchOutcome]]) -> None:
        failed = [{"path": o.params["path"], "error": _cause(o.error)} for o in args.exec_res if not o.ok]
        await args.ctx.set("processed", sum(o.ok for o in args.exec_res))
        await args.ctx.set("failed", failed)


class Summarize(Node[dict[str, Any], dict[str, Any], None]):
    """Totals over every processed file."""

    async def prep(self, args: NodeArgs[Any, Any]) -> dict[str, Any]:
        return {key[5:]: value for key, value in args.ctx.entries() if key.startswith("file:")}

    def exec(self, args: NodeArgs[dict[str, Any], Any]) -> dict[str, Any]:
        files = args.prep_res
        return {
            "files": len(files),
            "lines": sum(f["lines"] for f in files.values()),
            "words": sum(f["words"] for f in files.values()),
            "largest": max(files, key=lambda name: files[name]["words"]) if files else None,
        }

    async def post(self, args: NodeArgs[Any, dict[str, Any]]) -> None:
        await args.ctx.set("totals", args.exec_res)


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    if args.dir:
        return await process(Path(args.dir), args.concurrency)
    # The generated samples live in a temporary directory that is removed afterwards.
    with tempfile.TemporaryDirectory(prefix="flowcraft-batch-") as samples:
        return await process(make_samples(Path(samples)), args.concurrency)


async def process(directory: Path, concurrency: int) -> dict[str, Any]:
    """Process every file of ``directory`` and print what happened."""
    in_flight = InFlight()
    flow = SequenceFlow(ProcessAll(ProcessFile(in_flight), concurrency=concurrency), Summarize())
    ctx = TypedContext()
    started = time.perf_counter()
    await flow.run(ctx, params={"dir": str(directory)})
    elapsed = time.perf_counter() - started
    totals = await ctx.get("totals")
    print(f"processed {await ctx.get('processed')} files in {elapsed:.2f}s "
          f"(at most {in_flight.peak} at once, limit {concurrency})")  # fmt: skip
    print(f"totals: {totals['lines']} lines, {totals['words']} words; largest: {totals['largest']}")
    for failure in await ctx.get("failed"):
        print(f"failed: {Path(failure['path']).name}: {failure['error']}")
    return {**ctx.to_dict(), "peak": in_flight.peak, "elapsed": elapsed}


if __name__ == "__main__":
    asyncio.run(main())
