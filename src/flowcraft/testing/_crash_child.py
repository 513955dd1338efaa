"""The child process of [`ProcessHarness`][flowcraft.testing.conformance.ProcessHarness]:
``python -m flowcraft.testing._crash_child OPENER WHERE RUN_ID`` with the JSON graph on
stdin opens the executor, starts the run and waits for it (the armed fault point kills
the process first)."""

from __future__ import annotations

import asyncio
import json
import sys

from ._kit import _opened, golden_blueprint
from .crash import _import


async def main(opener: str, where: str, run_id: str, graph_text: str) -> None:
    """Open the executor with ``opener(where)`` and run the graph as ``run_id``."""
    factory = _import(opener)
    async with _opened(lambda: factory(where)) as executor:
        handle = await executor.start(golden_blueprint(json.loads(graph_text)), run_id=run_id)
        action = await handle.result()
        print(json.dumps({"action": action}))


if __name__ == "__main__":  # pragma: no cover - runs in the child process
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.stdin.read()))
