"""SPEC §3.3 (error wrapping), §3.12 (bad input) and the error tree of §9."""

from __future__ import annotations

import asyncio

import pytest

from flowcraft import (
    AbortError,
    EmptyFlowError,
    EventLoopRunningError,
    FatalWorkflowError,
    Flow,
    FlowcraftError,
    Node,
    ParallelBatchFlow,
    ParallelFlow,
    TypedContext,
    WorkflowError,
)

from .helpers import Step, run


class Raises(Node):
    def __init__(self, phase, error):
        super().__init__()
        self.phase = phase
        self.error = error

    def prep(self, args):
        if self.phase == "prep":
            raise self.error

    async def exec(self, args):
        if self.phase == "exec":
            raise self.error

    def post(self, args):
        if self.phase == "post":
            raise self.error


@pytest.mark.parametrize("phase", ["prep", "exec", "post"])
def test_errors_are_wrapped_with_node_and_phase(phase):
    original = KeyError("missing")
    node = Raises(phase, original).with_id("loader")
    with pytest.raises(WorkflowError, match=f"Node 'loader' \\(Raises\\) failed in {phase}: KeyError") as info:
        run(Flow(node).run())
    error = info.value
    assert type(error) is WorkflowError
    assert error.node_name == "loader"
    assert error.phase == phase
    assert error.__cause__ is original
    assert error.original_error is original


def test_node_without_id_is_named_by_class():
    with pytest.raises(WorkflowError, match="Raises failed in exec") as info:
        run(Flow(Raises("exec", ValueError("x"))).run())
    assert info.value.node_name == "Raises"


@pytest.mark.parametrize(
    "error",
    [WorkflowError("mine", "n", "exec"), AbortError("stopped"), FatalWorkflowError("fatal")],
    ids=["workflow", "abort", "fatal"],
)
@pytest.mark.parametrize("phase", ["prep", "exec", "post"])
def test_flowcraft_errors_pass_through_unwrapped(phase, error):
    with pytest.raises(type(error)) as info:
        run(Flow(Raises(phase, error)).run())
    assert info.value is error


def test_sub_flow_errors_are_not_wrapped_twice():
    original = ValueError("deep")
    inner_node = Raises("exec", original).with_id("deep")
    inner = Flow(inner_node).with_id("inner")
    middle = Flow(inner).with_id("middle")
    with pytest.raises(WorkflowError) as info:
        run(Flow(middle).run())
    error = info.value
    assert error.node_name == "deep"
    assert error.phase == "exec"
    assert error.__cause__ is original
    assert not isinstance(error.__cause__, WorkflowError)


def test_sub_flow_error_inside_parallel_branch_reaches_caller_once_wrapped():
    original = RuntimeError("branch broke")
    sub = Flow(Raises("post", original).with_id("inner"))
    with pytest.raises(WorkflowError, match="'inner'") as info:
        run(Flow(ParallelFlow([sub, Step("ok")])).run())
    assert info.value.__cause__ is original


def test_fatal_workflow_error_with_just_a_message():
    error = FatalWorkflowError("stop everything")
    assert isinstance(error, WorkflowError)
    assert isinstance(error, FlowcraftError)
    assert str(error) == "stop everything"
    assert error.message == "stop everything"
    assert error.node_name is None
    assert error.phase is None
    assert error.original_error is None


def test_workflow_error_sets_cause_from_original_error():
    cause = OSError("disk")
    error = WorkflowError("failed", "n", "exec", cause)
    assert error.__cause__ is cause
    assert (error.node_name, error.phase, error.original_error) == ("n", "exec", cause)


# ---- bad input (§3.12) -------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "3"])
def test_max_retries_must_be_an_int_of_at_least_one(value):
    with pytest.raises(ValueError, match=r"max_retries of .*>= 1.*got"):
        Node(max_retries=value)


def test_max_retries_error_names_the_node():
    node = Node().with_id("fetch")
    with pytest.raises(ValueError, match="max_retries of 'fetch'"):
        node.max_retries = 0
    assert node.max_retries == 1


@pytest.mark.parametrize("value", [-0.1, -5, "1", True])
def test_wait_must_be_non_negative_seconds(value):
    with pytest.raises(ValueError, match=r"wait of Node must be a number of seconds >= 0, got"):
        Node(wait=value)


@pytest.mark.parametrize("value", [-1, 0, "2", True])
def test_timeout_must_be_positive_seconds_or_none(value):
    with pytest.raises(ValueError, match=r"timeout of Node must be a number of seconds > 0 or None, got"):
        Node(timeout=value)


def test_valid_options_are_kept_as_floats():
    node = Node(max_retries=2, wait=1, timeout=3)
    assert (node.max_retries, node.wait, node.timeout) == (2, 1.0, 3.0)
    assert Node(timeout=None).timeout is None


@pytest.mark.parametrize("bad", ["b", 42, None, {"x": 1}])
def test_next_rejects_non_nodes_naming_the_source(bad):
    source = Node().with_id("src")
    with pytest.raises(TypeError, match=r"'src' \(Node\)\.next\(\) expects a node or a list of nodes"):
        source.next(bad)
    assert source.successors == {}


def test_next_rejects_a_list_with_a_non_node_without_half_applying():
    source = Node().with_id("src")
    good = Node()
    with pytest.raises(TypeError, match=r"\(item 1\)"):
        source.next([good, "oops"])
    assert source.successors == {}


def test_next_rejects_an_empty_list():
    with pytest.raises(ValueError, match="needs at least one node"):
        Node().with_id("src").next([])


def test_next_rejects_unhashable_actions():
    with pytest.raises(TypeError, match="action must be hashable"):
        Node().next(Node(), ["a"])


@pytest.mark.parametrize("bad", ["node", 1, None])
def test_start_rejects_non_nodes(bad):
    flow = Flow().with_id("main")
    with pytest.raises(TypeError, match=r"Flow\.start\(\) expects a node, got"):
        flow.start(bad)
    assert flow.start_node is None


def test_parallel_flow_rejects_non_node_branches():
    with pytest.raises(TypeError, match=r"ParallelFlow branch 1 is not a node: str"):
        ParallelFlow([Node(), "x"])


@pytest.mark.parametrize("value", [0, -2, 1.5, "4"])
def test_concurrency_must_be_positive_int_or_none(value):
    with pytest.raises(ValueError, match="concurrency of ParallelFlow must be an int >= 1 or None"):
        ParallelFlow([], concurrency=value)
    with pytest.raises(ValueError, match="concurrency of ParallelBatchFlow must be an int >= 1 or None"):
        ParallelBatchFlow(Node(), concurrency=value)


def test_flow_without_start_node_and_logic_raises_empty_flow_error():
    with pytest.raises(EmptyFlowError, match=r"Flow 'checkout' has no start node.*flow\.start\(node\)"):
        run(Flow().with_id("checkout").run(TypedContext()))


def test_empty_flow_error_names_the_class_when_no_id():
    class Pipeline(Flow):
        pass

    with pytest.raises(EmptyFlowError, match="Flow 'Pipeline' has no start node"):
        run(Pipeline().run())


def test_nested_empty_flow_raises_empty_flow_error():
    with pytest.raises(EmptyFlowError, match="'child'"):
        run(Flow(Flow().with_id("child")).run())


def test_flow_with_own_exec_needs_no_start_node():
    class Compute(Flow):
        def exec(self, args):
            return "computed"

    assert run(Compute().run()) == "computed"


@pytest.mark.parametrize("bad", [None, 3, "mw"])
def test_use_rejects_non_callable_middleware(bad):
    flow = Flow(Node())
    with pytest.raises(TypeError, match="middleware must be a callable"):
        flow.use(bad)
    assert flow.middleware == []


def test_run_sync_inside_a_running_loop_raises():
    flow = Flow(Node())

    async def main():
        with pytest.raises(EventLoopRunningError, match=r"run_sync\(\) was called inside a running event loop"):
            flow.run_sync()

    run(main())
    assert issubclass(EventLoopRunningError, RuntimeError)


def test_run_sync_inside_a_loop_does_not_leak_a_coroutine():
    # warnings are errors: an un-awaited coroutine would fail this test at collection of garbage
    flow = Flow(Node())

    async def main():
        for _ in range(3):
            with pytest.raises(EventLoopRunningError):
                flow.run_sync(TypedContext())
        await asyncio.sleep(0)

    run(main())


def test_executor_run_rejects_a_non_flow():
    from flowcraft import InMemoryExecutor

    with pytest.raises(TypeError, match=r"InMemoryExecutor\.run\(\) expects a Flow, got Node"):
        run(InMemoryExecutor().run(Node()))


def test_batch_flow_bad_prep_results():
    from flowcraft import BatchFlow

    class BadItems(BatchFlow):
        def prep(self, args):
            return ["not a dict"]

    with pytest.raises(TypeError, match=r"BadItems\.prep\(\) item 0 must be a dict of params"):
        run(BadItems(Node()).run())

    class NotIterable(BatchFlow):
        def prep(self, args):
            return {"a": 1}

    with pytest.raises(TypeError, match=r"NotIterable\.prep\(\) must return an iterable of param dicts"):
        run(NotIterable(Node()).run())

    with pytest.raises(TypeError, match="BatchFlow has no node_to_run"):
        run(BatchFlow().run())
