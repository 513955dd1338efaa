"""DryRunExecutor: walks the path (sub-flows, parallel and batch blocks too), never calls exec."""

from __future__ import annotations

from flowcraft import (
    DEFAULT_ACTION,
    BatchFlow,
    DryRunExecutor,
    Flow,
    Node,
    ParallelBatchFlow,
    ParallelFlow,
    TypedContext,
)

from .helpers import RecordingLogger, run


class Probe(Node):
    def __init__(self, id, log, action=None):
        super().__init__()
        self.with_id(id)
        self.log = log
        self.action = action

    def prep(self, args):
        self.log.append(f"prep:{self.id}")

    def exec(self, args):
        self.log.append(f"exec:{self.id}")
        return "real"

    def post(self, args):
        self.log.append(f"post:{self.id}:{args.exec_res}")
        return self.action


def test_dry_run_skips_exec_and_follows_actions():
    log = []
    a = Probe("a", log, action="go")
    a.next(Probe("b", log), "go")
    a.next(Probe("c", log))
    logger = RecordingLogger()
    result = run(Flow(a).run(TypedContext(), executor=DryRunExecutor(), logger=logger))
    assert result is DEFAULT_ACTION
    assert log == ["prep:a", "post:a:None", "prep:b", "post:b:None"]
    infos = logger.messages("info")
    assert any("visiting a" in m for m in infos)
    assert any("a (Probe) returned 'go'" in m for m in infos)


def test_dry_run_walks_sub_flows():
    log = []
    inner = Flow(Probe("inner", log)).with_id("sub")
    inner.next(Probe("after", log))
    run(Flow(inner).run(executor=DryRunExecutor()))
    assert log == ["prep:inner", "post:inner:None", "prep:after", "post:after:None"]


def test_dry_run_walks_nested_parallel_blocks():
    log = []
    par = ParallelFlow([Probe("x", log), Probe("y", log)])
    run(Flow(par).run(executor=DryRunExecutor()))
    assert sorted(log) == ["post:x:None", "post:y:None", "prep:x", "prep:y"]


def test_dry_run_of_a_top_level_parallel_flow_skips_branch_exec():
    log = []
    par = ParallelFlow([Probe("x", log), Probe("y", log)])
    run(par.run(executor=DryRunExecutor()))
    assert not any(entry.startswith("exec") for entry in log), log
    assert sorted(log) == ["post:x:None", "post:y:None", "prep:x", "prep:y"]


def test_dry_run_of_a_top_level_batch_skips_item_exec():
    for cls in (BatchFlow, ParallelBatchFlow):
        log = []

        class Batch(cls):
            def prep(self, args):
                return [{"i": 0}, {"i": 1}]

        run(Batch(Probe("item", log)).run(executor=DryRunExecutor()))
        assert log == ["prep:item", "post:item:None"] * 2, (cls, log)


def test_dry_run_with_middleware():
    log = []

    async def mw(args, next):
        log.append(f"mw:{args.node.id}")
        return await next(args)

    flow = Flow(Probe("a", log))
    flow.use(mw)
    run(flow.run(executor=DryRunExecutor()))
    assert log == ["mw:a", "prep:a", "post:a:None"]
