"""SPEC §3.1 (retries), §3.2 (fatal / abort not retried), §8.2, §8.3 and Node(timeout=...)."""

from __future__ import annotations

import asyncio
import time

import pytest

from flowcraft import (
    AbortController,
    AbortError,
    FatalWorkflowError,
    Flow,
    Node,
    NodeTimeoutError,
    TypedContext,
    WorkflowError,
)

from .helpers import RecordingLogger, Step, run


class Flaky(Node):
    def __init__(self, failures: int, **options):
        super().__init__(**options)
        self.failures = failures
        self.calls = {"prep": 0, "exec": 0, "post": 0, "fallback": 0}
        self.fallback_error = None

    def prep(self, args):
        self.calls["prep"] += 1
        return "prepared"

    def exec(self, args):
        self.calls["exec"] += 1
        assert args.prep_res == "prepared"
        if self.calls["exec"] <= self.failures:
            raise ValueError(f"boom {self.calls['exec']}")
        return "done"

    def post(self, args):
        self.calls["post"] += 1
        return args.exec_res


class WithFallback(Flaky):
    def exec_fallback(self, args):
        self.calls["fallback"] += 1
        self.fallback_error = args.error
        return "fallback"


def test_exec_is_attempted_max_retries_times_then_succeeds():
    node = Flaky(failures=2, max_retries=3).with_id("flaky")
    logger = RecordingLogger()
    assert run(Flow(node).run(TypedContext(), logger=logger)) == "done"
    assert node.calls == {"prep": 1, "exec": 3, "post": 1, "fallback": 0}
    warnings = logger.messages("warn")
    assert len(warnings) == 2
    assert "Attempt 1/3" in warnings[0]
    assert "'flaky'" in warnings[0]
    assert "Attempt 2/3" in warnings[1]


def test_fallback_gets_last_error_and_its_result_goes_to_post():
    node = WithFallback(failures=99, max_retries=3)
    logger = RecordingLogger()
    assert run(Flow(node).run(logger=logger)) == "fallback"
    assert node.calls == {"prep": 1, "exec": 3, "post": 1, "fallback": 1}
    assert isinstance(node.fallback_error, ValueError)
    assert str(node.fallback_error) == "boom 3"
    # each retried attempt is a warning; the "all attempts failed" message is an error
    assert len(logger.messages("warn")) == 2
    assert len(logger.messages("error")) == 1
    assert "All 3 attempt(s) failed" in logger.messages("error")[0]


def test_default_fallback_reraises_last_error_wrapped_once():
    node = Flaky(failures=99, max_retries=2).with_id("always")
    with pytest.raises(WorkflowError, match="'always'.*exec.*boom 2") as info:
        run(Flow(node).run())
    assert info.value.node_name == "always"
    assert info.value.phase == "exec"
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.original_error is info.value.__cause__
    assert node.calls["exec"] == 2
    assert node.calls["post"] == 0


def test_wait_between_attempts():
    node = Flaky(failures=2, max_retries=3, wait=0.05)
    started = time.perf_counter()
    run(Flow(node).run())
    assert time.perf_counter() - started >= 0.09


def test_wait_between_attempts_is_abortable():
    controller = AbortController()
    node = Flaky(failures=99, max_retries=5, wait=10.0)

    async def main():
        task = asyncio.create_task(Flow(node).run(controller=controller))
        await asyncio.sleep(0.05)
        controller.abort("stop")
        return await task

    started = time.perf_counter()
    with pytest.raises(AbortError):
        run(main())
    assert time.perf_counter() - started < 2
    assert node.calls["exec"] == 1


@pytest.mark.parametrize("phase", ["prep", "post"])
def test_prep_and_post_are_never_retried(phase):
    calls = []

    class Bad(Node):
        def prep(self, args):
            calls.append("prep")
            if phase == "prep":
                raise ValueError("bad prep")

        def exec(self, args):
            calls.append("exec")

        def post(self, args):
            calls.append("post")
            if phase == "post":
                raise ValueError("bad post")

    node = Bad(max_retries=3).with_id("bad")
    with pytest.raises(WorkflowError, match=f"'bad'.*{phase}") as info:
        run(Flow(node).run())
    assert info.value.phase == phase
    assert calls.count(phase) == 1


def test_fatal_error_skips_retries_and_fallback_and_stops_the_run():
    class Fatal(WithFallback):
        def exec(self, args):
            self.calls["exec"] += 1
            raise FatalWorkflowError("give up")

    node = Fatal(failures=0, max_retries=5)
    after = Step("after")
    node.next(after)
    ctx = TypedContext()
    with pytest.raises(FatalWorkflowError, match="give up"):
        run(Flow(node).run(ctx))
    assert node.calls["exec"] == 1
    assert node.calls["fallback"] == 0
    assert node.calls["post"] == 0
    assert run(ctx.get("trail")) is None


@pytest.mark.parametrize("max_retries", [1, 3])
def test_fatal_error_single_attempt_path_skips_fallback(max_retries):
    fallback = []

    class Fatal(Node):
        def exec(self, args):
            raise FatalWorkflowError("fatal")

        def exec_fallback(self, args):
            fallback.append(args.error)
            return "recovered"

    with pytest.raises(FatalWorkflowError):
        run(Flow(Fatal(max_retries=max_retries)).run())
    assert fallback == []


@pytest.mark.parametrize("phase", ["prep", "post"])
def test_fatal_error_from_prep_or_post_passes_unwrapped(phase):
    class Fatal(Node):
        def prep(self, args):
            if phase == "prep":
                raise FatalWorkflowError("fatal prep")

        def post(self, args):
            if phase == "post":
                raise FatalWorkflowError("fatal post")

    with pytest.raises(FatalWorkflowError, match=f"fatal {phase}") as info:
        run(Flow(Fatal()).run())
    assert type(info.value) is FatalWorkflowError


@pytest.mark.parametrize("max_retries", [1, 4])
def test_abort_error_is_never_retried_nor_falls_back(max_retries):
    calls = []

    class Aborting(Node):
        def exec(self, args):
            calls.append("exec")
            raise AbortError("user stop")

        def exec_fallback(self, args):
            calls.append("fallback")
            return "x"

    with pytest.raises(AbortError, match="user stop"):
        run(Flow(Aborting(max_retries=max_retries)).run())
    assert calls == ["exec"]


@pytest.mark.parametrize("max_retries", [1, 4])
def test_cancelled_error_is_not_retried_nor_wrapped(max_retries):
    calls = []

    class Cancelling(Node):
        async def exec(self, args):
            calls.append("exec")
            raise asyncio.CancelledError()

        def exec_fallback(self, args):
            calls.append("fallback")

    with pytest.raises(asyncio.CancelledError):
        run(Flow(Cancelling(max_retries=max_retries)).run())
    assert calls == ["exec"]


class Slow(Node):
    def __init__(self, delays, **options):
        super().__init__(**options)
        self.delays = list(delays)
        self.attempts = 0
        self.fallback_error = None

    async def exec(self, args):
        delay = self.delays[self.attempts]
        self.attempts += 1
        await asyncio.sleep(delay)
        return delay

    def post(self, args):
        return args.exec_res


def test_timeout_raises_node_timeout_error_after_all_attempts():
    node = Slow([5, 5], max_retries=2, timeout=0.05).with_id("slow")
    logger = RecordingLogger()
    started = time.perf_counter()
    with pytest.raises(WorkflowError, match="'slow'.*exec") as info:
        run(Flow(node).run(logger=logger))
    assert time.perf_counter() - started < 1
    assert isinstance(info.value.__cause__, NodeTimeoutError)
    assert info.value.__cause__.node_name == "slow"
    assert info.value.__cause__.timeout == 0.05
    assert "timeout" in str(info.value.__cause__)
    assert node.attempts == 2
    assert len(logger.messages("warn")) == 1


def test_timeout_is_a_failed_attempt_then_retry_succeeds():
    node = Slow([5, 0.0], max_retries=2, timeout=0.05)
    assert run(Flow(node).run()) == 0.0
    assert node.attempts == 2


def test_timeout_error_reaches_fallback():
    class SlowFallback(Slow):
        def exec_fallback(self, args):
            self.fallback_error = args.error
            return "fb"

    node = SlowFallback([5], timeout=0.02)
    assert run(Flow(node).run()) == "fb"
    assert isinstance(node.fallback_error, NodeTimeoutError)
    assert isinstance(node.fallback_error, TimeoutError)


def test_timeout_error_raised_by_exec_itself_is_not_a_node_timeout():
    class OwnTimeout(Node):
        async def exec(self, args):
            raise TimeoutError("upstream")

    with pytest.raises(WorkflowError) as info:
        run(Flow(OwnTimeout(timeout=10)).run())
    assert type(info.value.__cause__) is TimeoutError


# ---- a sync exec cannot be interrupted: a timeout on it is refused (SPEC §8.23) -------------


class SyncWork(Node):
    def exec(self, args):
        time.sleep(0.2)  # blocks the event loop: asyncio.timeout could never fire
        return "done"


def test_a_timeout_on_a_sync_exec_is_refused_at_construction():
    with pytest.raises(ValueError, match=r"timeout of SyncWork .*sync `def exec`.*async def exec.*asyncio.to_thread"):
        SyncWork(timeout=0.05)


def test_setting_a_timeout_on_a_sync_exec_node_later_is_refused_naming_it():
    node = SyncWork().with_id("crunch")
    with pytest.raises(ValueError, match=r"timeout of 'crunch' \(SyncWork\)"):
        node.timeout = 0.05
    assert node.timeout is None
    assert run(Flow(node).run()) is not None  # without a timeout it runs as before


def test_a_timeout_from_graph_config_on_a_sync_exec_is_a_graph_error():
    from flowcraft import InvalidGraphError
    from flowcraft.graph import GraphBuilder

    class SyncTask(SyncWork):
        def __init__(self, data=None, **deps):
            super().__init__()

    graph = {"nodes": [{"id": "a", "type": "t", "config": {"timeout": 50}}], "edges": []}
    with pytest.raises(InvalidGraphError, match=r"'a'.*config.timeout.*sync `def exec`"):
        GraphBuilder({"t": SyncTask}).build(graph)


def test_a_timeout_on_an_async_exec_or_a_node_without_exec_is_accepted():
    assert Slow([0], timeout=0.05).timeout == 0.05

    class OnlyPost(Node):
        def post(self, args):
            return "x"

    assert OnlyPost(timeout=1).timeout == 1.0
