"""A parallel block makes its branches' tasks with the loop's task factory when one is
set (it creates plain tasks directly only when there is none), in the branches' own
context."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from flowcraft import Flow, Node, NodeArgs, ParallelFlow, TypedContext

seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="")
posted: dict[str, tuple[Any, str]] = {}


class Branch(Node):
    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    async def exec(self, args: NodeArgs) -> Any:
        seen.set(self.key)
        return self.key

    def post(self, args: NodeArgs) -> Any:
        posted[self.key] = (args.exec_res, seen.get())


def test_parallel_branches_use_the_loops_task_factory() -> None:
    made: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def main() -> None:
        asyncio.get_running_loop().set_task_factory(factory)
        await Flow(ParallelFlow([Branch("a"), Branch("b"), Branch("c")])).run(TypedContext())

    posted.clear()
    asyncio.run(main())
    assert [name.rsplit(".", 1)[-1] for name in made].count("exec") == 3
    assert posted == {"a": ("a", "a"), "b": ("b", "b"), "c": ("c", "c")}
