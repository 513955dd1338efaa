"""The nodes of the approval example and their registry.

``graph.json`` wires them: draft → review (a wait for a person) → send | discard |
escalate. ``review`` is a ``WaitNode``: its ``prep`` (the draft, the
ticket) is the request a person sees; its ``post`` runs when someone resumes the run —
in whichever process does — or when the wait expires (``on_timeout = "escalate"``).

Workers and other processes need only ``REGISTRY``: a durable run stores its graph.
"""

from __future__ import annotations

from typing import Any

from examples._shared.llm import LLMClient, default_client
from flowcraft import Node, NodeArgs, WaitNode


class DraftReply(Node[Any, Any, Any]):
    """The agent: drafts a reply to the customer's ticket with the language model."""

    def __init__(self, data: dict[str, Any] | None = None, llm: LLMClient | None = None, **_: Any) -> None:
        super().__init__()
        self.llm = llm if llm is not None else default_client()

    async def prep(self, args: NodeArgs[Any, Any]) -> Any:
        return await args.ctx.get("ticket")

    async def exec(self, args: NodeArgs[Any, Any]) -> str:
        ticket = args.prep_res
        name = str(ticket["customer"]).split()[0]

        def local() -> str:  # the offline stand-in: a polite template
            return (
                f"Dear {name}, we are sorry about the {ticket['subject']}: the extra "
                "charge will be refunded within 5 business days. Best regards, the support team"
            )

        prompt = f"Draft a short, polite reply to this customer message:\n\n{ticket['message']}"
        return await self.llm.complete(prompt, system="You answer customer support tickets.", local=local)

    async def post(self, args: NodeArgs[Any, Any]) -> None:
        await args.ctx.set("draft", args.exec_res)
        await args.ctx.set("llm", self.llm.name)


class Review(WaitNode):
    """Waits for a person: ``approve``, ``reject`` or ``escalate`` the draft.

    ``data.timeout`` (default 24 h) is how long the wait stays open; then it takes
    the ``escalate`` action by itself. The resume value is ``{"by": ..., "note": ...}``.
    """

    actions = ("approve", "reject", "escalate")
    on_timeout = "escalate"

    def __init__(self, data: dict[str, Any] | None = None, **_: Any) -> None:
        timeout = (data or {}).get("timeout", "24h")
        super().__init__(wait_timeout=timeout)
        self.timeout_text = str(timeout)

    async def prep(self, args: NodeArgs[Any, Any]) -> Any:
        # Runs once, before the pause: what the reviewer is shown.
        ticket = await args.ctx.get("ticket")
        return {"customer": ticket["customer"], "message": ticket["message"], "draft": await args.ctx.get("draft")}

    async def post(self, args: NodeArgs[Any, Any]) -> Any:
        # Runs on resume (args.exec_res = the value, args.resume_action = the action),
        # or when the wait expires (exec_res None, resume_action "escalate").
        given = args.exec_res if isinstance(args.exec_res, dict) else {}
        review = {"decision": args.resume_action, "by": given.get("by"), "note": given.get("note")}
        if args.exec_res is None and args.resume_action == self.on_timeout:
            review["note"] = f"no answer within {self.timeout_text}"
        await args.ctx.set("review", review)
        return args.resume_action


class Send(Node[Any, Any, Any]):
    """Sends the approved reply (here: records it, with a message id that is the same
    if this step runs again after a crash, so a mail service can deduplicate)."""

    def __init__(self, data: dict[str, Any] | None = None, **_: Any) -> None:
        super().__init__()

    async def post(self, args: NodeArgs[Any, Any]) -> None:
        ticket = await args.ctx.get("ticket")
        await args.ctx.set("sent", {"to": ticket["email"], "message_id": args.idempotency_key})
        await args.ctx.set("outcome", "sent")


class Discard(Node[Any, Any, Any]):
    """The reviewer rejected the draft: nothing is sent."""

    def __init__(self, data: dict[str, Any] | None = None, **_: Any) -> None:
        super().__init__()

    async def post(self, args: NodeArgs[Any, Any]) -> None:
        await args.ctx.set("outcome", "discarded")


class Escalate(Node[Any, Any, Any]):
    """Hands the ticket to a lead (``data.to``): nobody reviewed it in time, or the
    reviewer asked for it."""

    def __init__(self, data: dict[str, Any] | None = None, **_: Any) -> None:
        super().__init__()
        self.to = str((data or {}).get("to", "support-lead"))

    async def post(self, args: NodeArgs[Any, Any]) -> None:
        await args.ctx.set("escalated_to", self.to)
        await args.ctx.set("outcome", "escalated")


REGISTRY: dict[str, type[Node[Any, Any, Any]]] = {
    "draft": DraftReply,
    "review": Review,
    "send": Send,
    "discard": Discard,
    "escalate": Escalate,
}
