"""OpenTelemetry listener: spans per run and node, checked with the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from flowcraft import AbortController, AbortError, Flow, Node, ParallelFlow, TypedContext, WorkflowError
from flowcraft.integrations.opentelemetry import OpenTelemetryListener


def make_tracing() -> tuple[OpenTelemetryListener, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OpenTelemetryListener(provider.get_tracer("test")), exporter


class Put(Node):
    def __init__(self, key: str, action: str | None = None) -> None:
        super().__init__()
        self.key, self.action = key, action

    async def post(self, args):
        await args.ctx.set(self.key, True)
        return self.action


class Flaky(Node):
    def __init__(self, failures: int) -> None:
        super().__init__(max_retries=3)
        self.failures = failures
        self.calls = 0

    def exec(self, args):
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"flaky {self.calls}")
        return "ok"

    def exec_fallback(self, args):
        return "fallback"


class Boom(Node):
    def exec(self, args):
        raise ValueError("boom")


class Inner(Node):
    def __init__(self, tracer) -> None:
        super().__init__()
        self.tracer = tracer

    async def exec(self, args):
        # Spans opened by user code inside a node nest under the node span.
        with self.tracer.start_as_current_span("user.work"):
            await asyncio.sleep(0)


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


def test_one_span_per_run_and_per_node_with_attributes():
    tracing, exporter = make_tracing()
    flow = Flow()
    flow.start(Put("a").with_id("first")).next(Put("b", "done").with_id("second"))
    asyncio.run(flow.with_id("pipeline").run(TypedContext(), on_event=tracing))

    spans = by_name(exporter.get_finished_spans())
    assert set(spans) == {"flowcraft.run pipeline", "flowcraft.node first", "flowcraft.node second"}
    run = spans["flowcraft.run pipeline"]
    assert run.parent is None
    assert run.attributes["flowcraft.run.action"] == "done"
    for name, action in (("flowcraft.node first", "default"), ("flowcraft.node second", "done")):
        node = spans[name]
        assert node.parent is not None and node.parent.span_id == run.context.span_id
        assert node.context.trace_id == run.context.trace_id
        assert node.attributes["flowcraft.node.type"] == "Put"
        assert node.attributes["flowcraft.node.action"] == action
        assert node.attributes["flowcraft.node.retries"] == 0
        assert node.attributes["flowcraft.run.id"] == run.attributes["flowcraft.run.id"]
        assert node.status.status_code is StatusCode.UNSET
        assert [e.name for e in node.events] == ["context.changed"]
    assert spans["flowcraft.node first"].attributes["flowcraft.node.id"] == "first"
    assert spans["flowcraft.node first"].end_time <= spans["flowcraft.node second"].start_time


def test_retries_and_fallback_are_recorded():
    tracing, exporter = make_tracing()
    flow = Flow(Flaky(failures=5).with_id("flaky"))
    asyncio.run(flow.run(TypedContext(), on_event=tracing))

    node = by_name(exporter.get_finished_spans())["flowcraft.node flaky"]
    assert node.attributes["flowcraft.node.retries"] == 2
    assert node.attributes["flowcraft.node.fallback"] is True
    assert [e.name for e in node.events] == ["retry", "retry", "fallback"]
    assert node.events[0].attributes["flowcraft.error"] == "RuntimeError: flaky 1"


def test_failure_sets_error_status_on_node_and_run():
    tracing, exporter = make_tracing()
    flow = Flow(Boom().with_id("boom")).with_id("failing")
    with pytest.raises(WorkflowError, match="boom"):
        asyncio.run(flow.run(TypedContext(), on_event=tracing))

    spans = by_name(exporter.get_finished_spans())
    node, run = spans["flowcraft.node boom"], spans["flowcraft.run failing"]
    assert node.status.status_code is StatusCode.ERROR
    assert node.attributes["flowcraft.node.phase"] == "exec"
    assert "boom" in node.attributes["flowcraft.error"]
    assert any(e.name == "exception" for e in node.events)
    assert run.status.status_code is StatusCode.ERROR
    assert "WorkflowError" in run.attributes["flowcraft.error"]


def test_nested_flows_and_parallel_branches_nest_under_their_parent_span():
    tracing, exporter = make_tracing()
    inner = Flow(Inner(tracing.tracer).with_id("inner-node")).with_id("sub")
    parallel = ParallelFlow([Put("x").with_id("left"), Put("y").with_id("right")]).with_id("fanout")
    flow = Flow(inner).with_id("outer")
    inner.next(parallel)
    asyncio.run(flow.run(TypedContext(), on_event=tracing))

    spans = by_name(exporter.get_finished_spans())
    ids = {name: span.context.span_id for name, span in spans.items()}
    parent = {name: span.parent.span_id if span.parent else None for name, span in spans.items()}
    assert parent["flowcraft.node sub"] == ids["flowcraft.run outer"]
    assert parent["flowcraft.node inner-node"] == ids["flowcraft.node sub"]
    assert parent["user.work"] == ids["flowcraft.node inner-node"]
    assert parent["flowcraft.node fanout"] == ids["flowcraft.run outer"]
    assert parent["flowcraft.node left"] == ids["flowcraft.node fanout"]
    assert parent["flowcraft.node right"] == ids["flowcraft.node fanout"]
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached


def test_concurrent_runs_share_one_listener():
    tracing, exporter = make_tracing()

    async def main():
        flows = [Flow(Put("k").with_id(f"n{i}")).with_id(f"run{i}") for i in range(5)]
        await asyncio.gather(*(f.run(TypedContext(), on_event=tracing) for f in flows))

    asyncio.run(main())
    spans = exporter.get_finished_spans()
    runs = {s.name: s for s in spans if s.name.startswith("flowcraft.run")}
    assert len(runs) == 5
    for i in range(5):
        node = next(s for s in spans if s.name == f"flowcraft.node n{i}")
        assert node.parent.span_id == runs[f"flowcraft.run run{i}"].context.span_id


def test_cancelled_run_ends_open_spans():
    tracing, exporter = make_tracing()
    controller = AbortController()

    class Abort(Node):
        async def exec(self, args):
            controller.abort("stop")
            await asyncio.sleep(0)

    flow = Flow(Abort().with_id("aborting")).with_id("cancelled")
    flow.start_node.next(Put("never").with_id("never"))
    with pytest.raises(AbortError):
        asyncio.run(flow.run(TypedContext(), controller=controller, on_event=tracing))

    spans = by_name(exporter.get_finished_spans())
    assert "flowcraft.node never" not in spans
    run = spans["flowcraft.run cancelled"]
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes["flowcraft.run.cancelled"] is True
    assert all(span.end_time is not None for span in spans.values())


def test_default_tracer_comes_from_the_global_provider():
    listener = OpenTelemetryListener()
    assert listener.tracer is not None
    asyncio.run(Flow(Put("k")).run(TypedContext(), on_event=listener))  # a no-op tracer works too


def test_import_without_the_extra_names_the_install_command():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'opentelemetry' or name.startswith('opentelemetry.'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import flowcraft.integrations.opentelemetry\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "pip install 'flowcraft-py[otel]'" in result.stderr
