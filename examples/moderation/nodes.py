"""Node classes of the moderation graph, its registry and a configured builder.

- ``REGISTRY``: node type → class. This is what workers need (``flowcraft worker
  --registry examples.moderation.nodes:REGISTRY``), since blueprints arrive compiled.
- ``BUILDER``: a ``GraphBuilder`` over ``REGISTRY`` that also knows the ``subflow``
  type (sub-workflows resolved from ``workflows/<id>.json``) and that ``triage`` is a
  conditional node. ``flowcraft run graph.json --registry examples.moderation.nodes:BUILDER``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from examples._shared.llm import LLMClient, default_client
from flowcraft import Node, NodeArgs
from flowcraft.graph import GraphBuilder, WorkflowGraph

HERE = Path(__file__).resolve().parent

SPAM_WORDS = ("free money", "click here", "buy now", "limited offer", "winner", "crypto giveaway")
TOXIC_WORDS = ("idiot", "stupid", "hate you", "moron", "shut up", "loser")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE = re.compile(r"\+?\d[\d\s().-]{7,}\d")
URL = re.compile(r"https?://\S+")


class ModerationNode(Node[Any, Any, Any]):
    """Base of the example's nodes: takes the graph node's ``data`` and an optional LLM client."""

    def __init__(self, data: dict[str, Any] | None = None, llm: LLMClient | None = None, **_: Any) -> None:
        super().__init__()
        self.data = dict(data or {})
        self.llm = llm if llm is not None else default_client()


class Ingest(ModerationNode):
    """Normalizes the ``post`` from the context into ``text`` and ``author``."""

    async def prep(self, args: NodeArgs[Any, Any]) -> Any:
        return await args.ctx.get("post")

    def exec(self, args: NodeArgs[Any, Any]) -> dict[str, str]:
        post = args.prep_res
        if isinstance(post, str):
            post = {"text": post}
        if not isinstance(post, dict) or not isinstance(post.get("text"), str):
            raise ValueError('the context needs a "post": {"text": "...", "author": "..."} or a string')
        return {"text": " ".join(post["text"].split()), "author": str(post.get("author", "anonymous"))}

    async def post(self, args: NodeArgs[Any, Any]) -> None:
        await args.ctx.set("text", args.exec_res["text"])
        await args.ctx.set("author", args.exec_res["author"])
        await args.ctx.set("llm", self.llm.name)


def score(kind: str, text: str) -> tuple[float, list[str]]:
    """A rule-based risk score in [0, 1] with the reasons for it."""
    lower = text.lower()
    reasons: list[str] = []
    if kind == "spam":
        reasons = [f"phrase {w!r}" for w in SPAM_WORDS if w in lower]
        links = len(URL.findall(text))
        if links >= 2:
            reasons.append(f"{links} links")
        letters = [c for c in text if c.isalpha()]
        if letters and sum(c.isupper() for c in letters) / len(letters) > 0.6:
            reasons.append("mostly capitals")
        return min(1.0, 0.35 * len(reasons)), reasons
    if kind == "toxicity":
        reasons = [f"insult {w!r}" for w in TOXIC_WORDS if w in lower]
        return min(1.0, 0.45 * len(reasons)), reasons
    if kind == "pii":
        reasons = [f"{label} found" for label, rx in (("email", EMAIL), ("phone number", PHONE)) if rx.search(text)]
        return min(0.7, 0.4 * len(reasons)), reasons  # personal details are redacted on review, never rejected
    raise ValueError(f"unknown check kind {kind!r}: use spam, toxicity or pii")


class Check(ModerationNode):
    """One moderation check (``data.kind``: spam, toxicity or pii); the three run in parallel."""

    async def prep(self, args: NodeArgs[Any, Any]) -> Any:
        return await args.ctx.get("text")

    async def exec(self, args: NodeArgs[Any, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.05)  # stands for a call to a classifier service
        value, reasons = score(self.data["kind"], args.prep_res)
        return {"score": value, "reasons": reasons}

    async def post(self, args: NodeArgs[Any, Any]) -> None:
        await args.ctx.set(f"check_{self.data['kind']}", args.exec_res)


class Triage(ModerationNode):
    """Combines the checks into ``scores`` and branches: ``approve``, ``review`` or ``reject``."""

    async def prep(self, args: NodeArgs[Any, Any]) -> dict[str, Any]:
        return {kind: await args.ctx.get(f"check_{kind}") for kind in ("spam", "toxicity", "pii")}

    def exec(self, args: NodeArgs[Any, Any]) -> dict[str, Any]:
        scores = {kind: result["score"] for kind, result in args.prep_res.items()}
        worst = max(scores.values())
        if worst > float(self.data.get("rejectAbove", 0.8)):
            action = "reject"
        elif worst > float(self.data.get("reviewAbove", 0.3)):
            action = "review"
        else:
            action = "approve"
        return {"scores": scores, "action": action}

    async def post(self, args: NodeArgs[Any, Any]) -> str:
        await args.ctx.set("scores", args.exec_res["scores"])
        await args.ctx.set("triage", args.exec_res["action"])
        return str(args.exec_res["action"])


class Publish(ModerationNode):
    """Approved: publish the post."""

    async def post(self, args: NodeArgs[Any, Any]) -> None:
        await args.ctx.set("decision", "published")


class Reject(ModerationNode):
    """Rejected outright: record the reasons."""

    async def post(self, args: NodeArgs[Any, Any]) -> None:
        reasons = []
        for kind in ("spam", "toxicity", "pii"):
            reasons += (await args.ctx.get(f"check_{kind}"))["reasons"]
        await args.ctx.set("decision", "rejected")
        await args.ctx.set("reasons", reasons)


# ---- the human_review sub-workflow (workflows/human_review.json) ----------------------------


class SummarizeCase(ModerationNode):
    """Writes a one-line case summary for the reviewer (a language-model step)."""

    async def prep(self, args: NodeArgs[Any, Any]) -> tuple[str, dict[str, float]]:
        return await args.ctx.get("case_text"), await args.ctx.get("case_scores")

    async def exec(self, args: NodeArgs[Any, Any]) -> str:
        text, scores = args.prep_res
        flagged = ", ".join(f"{k} {v:.2f}" for k, v in sorted(scores.items()) if v > 0) or "none"

        def local() -> str:
            return f"Flagged ({flagged}): {text[:80]}{'...' if len(text) > 80 else ''}"

        prompt = f"Summarize this post for a moderator in one sentence. Scores: {flagged}.\n\n{text}"
        return await self.llm.complete(prompt, system="You help content moderators.", local=local)

    async def post(self, args: NodeArgs[Any, Any]) -> None:
        await args.ctx.set("case_summary", args.exec_res)


class AssignReviewer(ModerationNode):
    """Picks a reviewer deterministically from ``data.reviewers`` (hash of the text)."""

    async def prep(self, args: NodeArgs[Any, Any]) -> str:
        return str(await args.ctx.get("case_text"))

    def exec(self, args: NodeArgs[Any, Any]) -> str:
        reviewers = self.data.get("reviewers") or ["moderator"]
        digest = int(hashlib.sha256(args.prep_res.encode()).hexdigest(), 16)
        return str(reviewers[digest % len(reviewers)])

    async def post(self, args: NodeArgs[Any, Any]) -> None:
        await args.ctx.set("reviewer", args.exec_res)


class ReviewPolicy(ModerationNode):
    """The reviewer's decision, simulated by policy: PII gets redacted, the rest is allowed with a warning."""

    async def prep(self, args: NodeArgs[Any, Any]) -> tuple[str, dict[str, float], str]:
        ctx = args.ctx
        return await ctx.get("case_text"), await ctx.get("case_scores"), await ctx.get("reviewer")

    def exec(self, args: NodeArgs[Any, Any]) -> dict[str, Any]:
        text, scores, reviewer = args.prep_res
        if scores.get("pii", 0) > 0:
            redacted = PHONE.sub("[phone]", EMAIL.sub("[email]", text))
            return {"verdict": "publish_redacted", "reviewer": reviewer, "text": redacted}
        return {"verdict": "publish_with_warning", "reviewer": reviewer, "text": text}

    async def post(self, args: NodeArgs[Any, Any]) -> None:
        await args.ctx.set("review", args.exec_res)


class ApplyReview(ModerationNode):
    """Back in the parent graph: turn the review outcome into the decision."""

    async def prep(self, args: NodeArgs[Any, Any]) -> Any:
        return await args.ctx.get("review_outcome")

    async def post(self, args: NodeArgs[Any, Any]) -> None:
        outcome = args.prep_res
        await args.ctx.set("decision", outcome["verdict"])
        await args.ctx.set("published_text", outcome["text"])


class Notify(ModerationNode):
    """Writes the message to the author (a language-model step); every branch ends here."""

    async def prep(self, args: NodeArgs[Any, Any]) -> tuple[str, str, Any]:
        ctx = args.ctx
        return await ctx.get("author"), await ctx.get("decision"), await ctx.get("reasons")

    async def exec(self, args: NodeArgs[Any, Any]) -> str:
        author, decision, reasons = args.prep_res
        templates = {
            "published": "your post is live.",
            "publish_redacted": "your post is live with personal details removed.",
            "publish_with_warning": "your post is live; please keep to the community guidelines.",
            "rejected": f"your post was not published ({'; '.join(reasons or []) or 'policy'}).",
        }

        def local() -> str:
            return f"Hi {author}, {templates.get(decision, decision)}"

        prompt = (
            f"Write a one-sentence, friendly note to {author}: moderation decision {decision!r}, reasons {reasons}."
        )
        return await self.llm.complete(prompt, local=local)

    async def post(self, args: NodeArgs[Any, Any]) -> None:
        await args.ctx.set("notification", args.exec_res)


REGISTRY: dict[str, type[Node[Any, Any, Any]]] = {
    "ingest": Ingest,
    "check": Check,
    "triage": Triage,
    "publish": Publish,
    "reject": Reject,
    "apply_review": ApplyReview,
    "notify": Notify,
    "summarize_case": SummarizeCase,
    "assign_reviewer": AssignReviewer,
    "review_policy": ReviewPolicy,
}


class WorkflowDirectory:
    """A sub-workflow resolver: ``workflowId`` → ``workflows/<workflowId>.json``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def get_graph(self, workflow_id: str | int) -> WorkflowGraph | None:
        path = self.directory / f"{workflow_id}.json"
        if not path.is_file():
            return None
        return WorkflowGraph.from_dict(json.loads(path.read_text(encoding="utf-8")))


BUILDER = GraphBuilder(
    REGISTRY,
    sub_workflow_node_types=["subflow"],
    sub_workflow_resolver=WorkflowDirectory(HERE / "workflows"),
    conditional_node_types=["triage"],
)
