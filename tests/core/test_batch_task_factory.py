"""A parallel batch makes its items' tasks with the loop's task factory when one is set
(the batch creates plain tasks directly only when there is none)."""

from __future__ import annotations

import asyncio
from typing import Any

from flowcraft import Flow, Node, NodeArgs, ParallelBatchFlow, TypedContext


class Items(ParallelBatchFlow):
    def prep(self, args: NodeArgs) -> list[dict[str, Any]]:
        return [{"i": i} for i in range(3)]


class Record(Node):
    async def exec(self, args: NodeArgs) -> Any:
        return args.params["i"]

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set(f"item{args.params['i']}", args.exec_res)


def test_batch_items_use_the_loops_task_factory() -> None:
    made: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def main() -> TypedContext:
        asyncio.get_running_loop().set_task_factory(factory)
        ctx = TypedContext()
        await Flow(Items(Record())).run(ctx)
        return ctx

    ctx = asyncio.run(main())
    assert [name.rsplit(".", 1)[-1] for name in made].count("run_item") == 3
    assert ctx.to_dict() == {"item0": 0, "item1": 1, "item2": 2}
