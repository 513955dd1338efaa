"""flowcraft.testing: helpers users test their own nodes with."""

from __future__ import annotations

import asyncio

import pytest

from flowcraft import DEFAULT_ACTION, Flow, Node, TypedContext, WorkflowError
from flowcraft.testing import EventRecorder, RecordingLogger, run_lifecycle


class Double(Node):
    async def prep(self, args):
        return await args.ctx.get("n")

    def exec(self, args):
        return args.prep_res * args.params.get("factor", 2)

    async def post(self, args):
        await args.ctx.set("out", args.exec_res)
        return "done"


def test_run_lifecycle_returns_every_phase_result() -> None:
    result = asyncio.run(run_lifecycle(Double(), {"n": 4}))
    assert (result.action, result.prep_res, result.exec_res) == ("done", 4, 8)
    assert result.context == {"n": 4, "out": 8}


def test_run_lifecycle_params_and_node_params() -> None:
    node = Double().with_params(factor=10)
    result = asyncio.run(run_lifecycle(node, TypedContext({"n": 1}), params={"factor": 3}))
    assert result.exec_res == 10


def test_run_lifecycle_propagates_errors_and_rejects_non_nodes() -> None:
    with pytest.raises(WorkflowError, match="exec"):
        asyncio.run(run_lifecycle(Double(), {}))
    with pytest.raises(TypeError, match="expects a node"):
        asyncio.run(run_lifecycle("not a node", {}))  # type: ignore[arg-type]


def test_recorders_collect_logs_and_events() -> None:
    class Flaky(Node):
        tries = 0

        def __init__(self) -> None:
            super().__init__(max_retries=2)

        def exec(self, args):
            Flaky.tries += 1
            if Flaky.tries == 1:
                raise ValueError("once")

    logger, events = RecordingLogger(), EventRecorder()
    node = Flaky().with_id("f")
    action = asyncio.run(Flow(node).run(logger=logger, on_event=events))
    assert action is DEFAULT_ACTION
    assert len(logger.messages("warn")) == 1
    assert "Attempt 1/2" in logger.messages()[0]
    assert events.finished_nodes() == ["f"]
    assert [type(e).__name__ for e in events.node_events("f")] == ["NodeStarted", "RetryAttempt", "NodeFinished"]
