"""The collector pause used while graphs are built and hydrated."""

from __future__ import annotations

import gc

import pytest

from flowcraft.collector import CollectorPaused


def test_the_collector_is_off_inside_and_on_again_after_an_error():
    assert gc.isenabled()
    seen = []

    def fail() -> None:
        with CollectorPaused():
            seen.append(gc.isenabled())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail()
    assert seen == [False]
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    try:
        with CollectorPaused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_hydrating_a_graph_leaves_the_collector_as_it_was():
    import json

    from flowcraft import Node
    from flowcraft.engine.plan import blueprint_hash
    from flowcraft.engine.worker import hydrate
    from flowcraft.graph import GraphBuilder, create_node_registry

    class Step(Node):
        def __init__(self, data: object = None) -> None:
            super().__init__()

    registry = create_node_registry({"step": Step})
    description = {"nodes": [{"id": "a", "type": "step"}, {"id": "b", "type": "step"}],
                   "edges": [{"source": "a", "target": "b"}]}  # fmt: skip
    text = json.dumps(GraphBuilder(registry).build_blueprint(description).blueprint.to_dict())
    hydrated = hydrate(blueprint_hash(text), text, registry, {}, ())
    assert hydrated.node("b") is not None
    assert gc.isenabled()
    with pytest.raises(Exception, match="content hash"):
        hydrate("0" * 64, text, registry, {}, ())
    assert gc.isenabled()
