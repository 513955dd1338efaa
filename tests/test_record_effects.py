"""flowcraft.testing.record_effects: a run fails when a node touched a key it did not
declare; declarations from class attributes and from JSON data both count."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowcraft import Flow, Node, NodeArgs, ParallelFlow
from flowcraft.graph import GraphBuilder
from flowcraft.testing import UndeclaredEffectError, record_effects


class Price(Node):
    reads = ("order",)
    writes = ("price",)

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set("price", (await args.ctx.get("order"))["qty"] * 2)


class Sneaky(Node):
    reads = ("order",)
    writes = ("tax",)

    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set("tax", 1)
        await args.ctx.set("price", 0)  # not declared
        if await args.ctx.has("coupon"):  # not declared
            pass


class Free(Node):
    async def post(self, args: NodeArgs) -> Any:
        await args.ctx.set("anything", True)


def test_true_declarations_pass_and_the_report_says_what_was_touched() -> None:
    flow = Flow(ParallelFlow([Price().with_id("price"), Free().with_id("free")]))
    report = asyncio.run(record_effects(flow, {"order": {"qty": 3}}))
    assert report.context == {"order": {"qty": 3}, "price": 6, "anything": True}
    assert report.touched["price"].reads == {"order"} and report.touched["price"].writes == {"price"}
    assert report.undeclared == []


def test_an_undeclared_touch_fails_naming_the_node_and_key() -> None:
    flow = Flow(ParallelFlow([Price().with_id("price"), Sneaky().with_id("sneaky")]))
    with pytest.raises(UndeclaredEffectError) as caught:
        asyncio.run(record_effects(flow, {"order": {"qty": 1}}))
    assert str(caught.value) == (
        "node 'sneaky' reads 'coupon' but does not declare it in reads; "
        "node 'sneaky' writes 'price' but does not declare it in writes"
    )
    assert caught.value.report.undeclared == [("sneaky", "reads", "coupon"), ("sneaky", "writes", "price")]


def test_strict_checks_nodes_without_declarations_and_check_false_only_reports() -> None:
    with pytest.raises(UndeclaredEffectError, match=r"node 'free' writes 'anything'"):
        asyncio.run(record_effects(Flow(Free().with_id("free")), strict=True))
    report = asyncio.run(record_effects(Flow(Free().with_id("free")), strict=True, check=False))
    assert report.undeclared == [("free", "writes", "anything")]


class Step(Node):
    def __init__(self, data: Any = None, **deps: Any) -> None:
        super().__init__()
        self.data = data or {}

    async def post(self, args: NodeArgs) -> Any:
        for key in self.data.get("touch", ()):
            await args.ctx.set(key, self.data["nodeId"])


def test_json_data_declarations_are_checked() -> None:
    graph = {
        "nodes": [
            {"id": "a", "type": "step", "data": {"writes": ["x"], "touch": ["x"]}},
            {"id": "b", "type": "step", "data": {"writes": ["y"], "touch": ["y", "z"]}},
        ],
        "edges": [{"source": "a", "target": "b"}],
    }
    flow = GraphBuilder({"step": Step}).build(graph).flow
    with pytest.raises(UndeclaredEffectError, match=r"^node 'b' writes 'z' but does not declare it in writes$"):
        asyncio.run(record_effects(flow))
