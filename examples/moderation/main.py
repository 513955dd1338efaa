"""Moderate a few posts with the declarative graph in graph.json (run programmatically).

Run it: ``python examples/moderation/main.py`` — or the same graph from the command line:
``flowcraft run examples/moderation/graph.json --registry examples.moderation.nodes:BUILDER
--context '{"post": {"author": "dana", "text": "hello"}}'``
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.moderation.nodes import BUILDER, HERE  # noqa: E402
from flowcraft import TypedContext  # noqa: E402
from flowcraft.graph import generate_mermaid  # noqa: E402

POSTS = [
    {"author": "ana", "text": "Lovely sunrise over the harbour this morning, photos from the pier."},
    {"author": "ben", "text": "Selling my bike, text me on +44 7700 900123 or mail ben@example.com"},
    {"author": "cy", "text": "FREE MONEY!!! click here http://spam.example http://more.example you loser"},
]


async def moderate(post: dict[str, str]) -> dict[str, Any]:
    """Build the graph (sub-workflow inlined) and run it for one post."""
    flow = BUILDER.build(json.loads((HERE / "graph.json").read_text(encoding="utf-8"))).flow
    ctx = TypedContext({"post": post})
    await flow.run(ctx)
    return ctx.to_dict()


async def main() -> list[dict[str, Any]]:
    results = await asyncio.gather(*(moderate(post) for post in POSTS))  # three runs at once
    print(f"LLM: {results[0]['llm']}")
    for post, result in zip(POSTS, results, strict=True):
        scores = ", ".join(f"{k} {v:.2f}" for k, v in result["scores"].items())
        print(f"\n@{post['author']}: {post['text']}")
        print(f"  checks: {scores} -> triage: {result['triage']} -> decision: {result['decision']}")
        if "reviewer" in result:
            print(f"  reviewed by {result['reviewer']}: {result['case_summary']}")
        print(f"  notification: {result['notification']}")
    graph = json.loads((HERE / "graph.json").read_text(encoding="utf-8"))
    mermaid = generate_mermaid(BUILDER.build_blueprint(graph).blueprint)
    print(f"\ncompiled graph: {len(mermaid.splitlines()) - 1} Mermaid lines (flowcraft viz draws it)")
    return results


if __name__ == "__main__":
    asyncio.run(main())
