"""An agent drafts a reply; a person approves it later, from another process.

Run it from the repository root:

    python examples/approval/main.py start              # drafts, pauses, prints the run id; exits
    python examples/approval/main.py approve RUN_ID     # another process: resumes, sends, prints the outcome
    python examples/approval/main.py reject RUN_ID --note "too vague"
    python examples/approval/main.py start --timeout 2s # nobody answers within 2 s ...
    python examples/approval/main.py wait RUN_ID        # ... the timer fires here: the ticket is escalated
    python examples/approval/main.py show RUN_ID        # state, open waits, outcome

The run lives in a SQLite file (``--store``, default ``approval-example.db`` in the
current directory); no process is held while it waits for the person.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import getpass
import json
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.approval.nodes import REGISTRY  # noqa: E402
from flowcraft import GraphError, RunSuspended, Wait, WaitAlreadyResolved  # noqa: E402
from flowcraft.durable import DurableExecutor, RunNotFoundError  # noqa: E402
from flowcraft.engine import RunHandle  # noqa: E402
from flowcraft.graph import GraphBuilder  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_STORE = "approval-example.db"
FINISHED = ("completed", "failed", "cancelled", "blocked")
TICKET = {
    "customer": "Ana Ruiz",
    "email": "ana.ruiz@example.com",
    "subject": "double charge on order #1042",
    "message": "Hello, I was charged twice for order #1042. Can I get the second charge refunded?",
}


def build_flow(timeout: str | None) -> Any:
    """The graph of ``graph.json``, with the review's timeout replaced by ``timeout``."""
    graph = json.loads((HERE / "graph.json").read_text(encoding="utf-8"))
    for node in graph["nodes"]:
        if node["id"] == "review" and timeout is not None:
            node["data"] = {**node.get("data", {}), "timeout": timeout}
    return GraphBuilder(REGISTRY).build(graph).flow


def command(store: str, *words: str) -> str:
    where = "" if store == DEFAULT_STORE else f" --store {store}"
    return f"python examples/approval/main.py {' '.join(words)}{where}"


def in_words(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.3g}s"


def at(fire_at: float) -> str:
    return datetime.datetime.fromtimestamp(fire_at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe(run_id: str, wait: Wait, store: str) -> None:
    request = wait.request
    print(f"run {run_id} is waiting for a person: wait {wait.id} ({', '.join(wait.actions)})")
    if wait.fire_at is not None:
        print(f"  if nobody answers, it escalates by itself at {at(wait.fire_at)} "
              f"(in {in_words(wait.fire_at - datetime.datetime.now(datetime.UTC).timestamp())})")  # fmt: skip
    print("request:")
    for key in ("customer", "message", "draft"):
        print(f"  {key + ':':<9} {request[key]}")
    print("resume it from any process:")
    print(f"  {command(store, 'approve', run_id)}")
    print(f"  {command(store, 'reject', run_id, '--note', repr('too vague'))}")


async def report(handle: RunHandle) -> None:
    """Wait for the run to end (in this process, or another) and print how it ended."""
    run_id = handle.run_id
    try:
        await handle.result()
    except RunSuspended as paused:
        print(f"run {run_id} is still waiting: {', '.join(wait.id for wait in paused.waits)}")
        return
    except Exception as error:  # a failed or cancelled run
        print(f"run {run_id} ended: {(await handle.status()).state} ({error})")
        return
    ctx = await handle.context()
    review = ctx.get("review") or {}
    outcome = ctx.get("outcome")
    if outcome == "sent":
        sent = ctx["sent"]
        print(f"run {run_id} completed: reply sent to {sent['to']} (approved by {review['by']}; "
              f"message id {sent['message_id']})")  # fmt: skip
    elif outcome == "discarded":
        print(f"run {run_id} completed: draft discarded (rejected by {review['by']}: {review['note']})")
    elif outcome == "escalated":
        why = review["note"] if review.get("by") is None else f"asked by {review['by']}"
        print(f"run {run_id} completed: escalated to {ctx['escalated_to']} ({why})")
    else:
        print(f"run {run_id} completed: {outcome}")


async def start(store: str, run_id: str, wait_for_review: str | None) -> None:
    flow = build_flow(wait_for_review)
    async with DurableExecutor(store, registry=REGISTRY) as executor:
        handle = await executor.start(flow, {"ticket": TICKET}, run_id=run_id)
        try:
            await handle.result()
        except RunSuspended as paused:
            print(f"LLM: {(await handle.context())['llm']}")
            for wait in paused.waits:
                describe(run_id, wait, store)
            return
        await report(handle)  # the run had ended already (an existing --run-id)


async def decide(store: str, run_id: str, action: str, by: str, note: str | None) -> None:
    async with DurableExecutor(store, registry=REGISTRY) as executor:
        handle = await executor.handle(run_id)
        waits = [wait for wait in await handle.waits() if wait.kind == "input"]
        if not waits:
            print(f"run {run_id} is not waiting for a person any more ({(await handle.status()).state})")
        else:
            wait = waits[0]
            try:
                handle = await executor.resume(run_id, wait.id, {"by": by, "note": note}, action=action)
                print(f"run {run_id}: {wait.id} resumed with {action!r} by {by}; going on in this process")
            except WaitAlreadyResolved as error:  # its timeout (or another reviewer) came first
                print(f"too late: {error}")
        await report(handle)


async def wait_for(store: str, run_id: str) -> None:
    """Keep an executor open on the store until the run ends: timers that are due fire here."""
    async with DurableExecutor(store, registry=REGISTRY) as executor:
        handle = await executor.handle(run_id)
        announced = False
        while (outcome := await handle.outcome()).state not in FINISHED:
            if outcome.state == "awaiting" and not announced:
                for wait in outcome.waits:
                    when = f"times out at {at(wait.fire_at)}" if wait.fire_at is not None else "has no timeout"
                    print(f"run {run_id} is waiting for {wait.id} ({when}); waiting here until the run ends")
                announced = True
            await asyncio.sleep(0.1)
        await report(handle)


async def show(store: str, run_id: str) -> None:
    async with DurableExecutor(store, registry=REGISTRY) as executor:
        handle = await executor.handle(run_id)
        outcome = await handle.outcome()
        print(f"run {run_id}: {outcome.state}")
        for wait in outcome.waits:
            describe(run_id, wait, store)
        if outcome.state in FINISHED:
            await report(handle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default=DEFAULT_STORE, help="the run store file (default %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    begin = commands.add_parser("start", help="draft a reply and wait for a person; prints the run id")
    begin.add_argument("--timeout", default=None, help="how long the review waits before escalating (default 24h)")
    begin.add_argument("--run-id", default=None, help="the run's id (default: a new one)")
    for action in ("approve", "reject", "escalate"):
        resume = commands.add_parser(action, help=f"{action} the draft of a waiting run (another process)")
        resume.add_argument("run_id", metavar="RUN_ID")
        resume.add_argument("--by", default=None, help="who decides (default: your user name)")
        resume.add_argument("--note", default=None, help="a note for the record")
    for name, text in (("wait", "wait for the run to end here (its timer fires here)"), ("show", "a run's state")):
        commands.add_parser(name, help=text).add_argument("run_id", metavar="RUN_ID")
    for sub in commands.choices.values():  # --store after the command works too
        sub.add_argument("--store", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    store = options.store
    try:
        if options.command == "start":
            asyncio.run(start(store, options.run_id or f"ticket-{uuid.uuid4().hex[:6]}", options.timeout))
        elif options.command in ("approve", "reject", "escalate"):
            by = options.by or getpass.getuser()
            asyncio.run(decide(store, options.run_id, options.command, by, options.note))
        elif options.command == "wait":
            asyncio.run(wait_for(store, options.run_id))
        else:
            asyncio.run(show(store, options.run_id))
    except (RunNotFoundError, GraphError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
