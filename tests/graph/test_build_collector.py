"""GraphBuilder pauses the garbage collector while it builds (issue 18: build time) and
leaves it as it found it — enabled or disabled, after a build or a failed one."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from flowcraft import DanglingEdgeError
from flowcraft.graph import GraphBuilder

from .conftest import Recorder

GRAPH = {"nodes": [{"id": "a", "type": "task"}, {"id": "b", "type": "task"}], "edges": [{"source": "a", "target": "b"}]}
BROKEN = {"nodes": [{"id": "a", "type": "task"}], "edges": [{"source": "a", "target": "nowhere"}]}


@pytest.fixture
def collector() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("method", ["build", "build_blueprint"])
def test_the_collector_state_is_restored_after_a_build(collector: None, enabled: bool, method: str) -> None:
    seen = []

    class Watch(Recorder):
        def __init__(self, *a: object, **k: object) -> None:
            super().__init__(*a, **k)  # type: ignore[arg-type]
            seen.append(gc.isenabled())

    gc.enable() if enabled else gc.disable()
    getattr(GraphBuilder({"task": Watch}), method)(GRAPH)
    assert gc.isenabled() is enabled
    if method == "build":
        assert seen and not any(seen)  # paused while the nodes were made


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_state_is_restored_after_a_failed_build(collector: None, enabled: bool) -> None:
    gc.enable() if enabled else gc.disable()
    with pytest.raises(DanglingEdgeError):
        GraphBuilder({"task": Recorder}).build(BROKEN)
    assert gc.isenabled() is enabled
