"""GraphBuilder and BlueprintExecutor: compilation, hydration, running, and every bad input."""

from __future__ import annotations

from typing import Any

import pytest

from flowcraft import (
    DEFAULT_ACTION,
    DanglingEdgeError,
    DuplicateNodeIdError,
    GraphError,
    InvalidGraphError,
    MissingSubWorkflowError,
    Node,
    NoStartNodeError,
    UnknownNodeTypeError,
)
from flowcraft.executors import first_successor
from flowcraft.graph import (
    BlueprintExecutor,
    ConditionalJoinNode,
    GraphBuilder,
    OutputMappingNode,
    ParallelBranchContainer,
    WorkflowGraph,
    create_node_registry,
)

from .conftest import DictResolver, Recorder, run

REG = {"task": Recorder, "check": Recorder}


def node(id: str, type: str = "task", **data: Any) -> dict[str, Any]:
    return {"id": id, "type": type, "data": data} if data else {"id": id, "type": type}


def edge(source: str, target: str, action: str | None = None) -> dict[str, str]:
    return {"source": source, "target": target} | ({"action": action} if action else {})


def graph(nodes: list[dict[str, Any]], edges: list[dict[str, str]]) -> dict[str, Any]:
    return {"nodes": nodes, "edges": edges}


# ---- running compiled graphs -----------------------------------------------------------------


def test_linear_graph_runs_and_returns_last_action() -> None:
    g = graph([node("a"), node("b"), node("c", action="done")], [edge("a", "b"), edge("b", "c")])
    result = GraphBuilder(REG).build(g)
    action, ctx = run(result.flow)
    assert (action, ctx["log"]) == ("done", ["a", "b", "c"])
    assert result.predecessor_count_map == {"a": 0, "b": 1, "c": 1}
    assert result.predecessor_id_map == {"a": [], "b": ["a"], "c": ["b"]}
    assert result.original_predecessor_id_map == {"b": ["a"], "c": ["b"]}
    assert result.node_map["b"].original_id == "b"


def test_fan_out_fan_in_runs_join_once_after_all_branches() -> None:
    g = graph(
        [node("a"), node("b"), node("c"), node("d", action="end")],
        [edge("a", "b"), edge("a", "c"), edge("b", "d"), edge("c", "d")],
    )
    result = GraphBuilder(REG).build(g)
    assert isinstance(result.node_map["a__parallel_container"], ParallelBranchContainer)
    action, ctx = run(result.flow)
    assert action == "end"
    assert ctx["log"][0] == "a" and ctx["log"][-1] == "d" and sorted(ctx["log"][1:3]) == ["b", "c"]


def test_several_starts_run_under_the_root_container() -> None:
    g = graph([node("a"), node("b"), node("c", action="fin")], [edge("a", "c"), edge("b", "c")])
    result = GraphBuilder(REG).build(g)
    assert result.flow.start_node is result.node_map["__root_parallel_start"]
    assert result.predecessor_count_map["__root_parallel_start"] == 0
    assert result.predecessor_count_map["a"] == 1
    action, ctx = run(result.flow)
    assert action == "fin" and ctx["log"].count("c") == 1 and ctx["log"][-1] == "c"


@pytest.mark.parametrize(("route", "branch"), [("yes", "b"), ("no", "c")])
def test_conditional_join_fires_on_first_arrival(route: str, branch: str) -> None:
    g = graph(
        [node("check", "check", action=route), node("b"), node("c"), node("d", action="end")],
        [edge("check", "b", "yes"), edge("check", "c", "no"), edge("b", "d"), edge("c", "d")],
    )
    result = GraphBuilder(REG, conditional_node_types=["check"]).build(g)
    assert isinstance(result.node_map["check__conditional_join"], ConditionalJoinNode)
    assert result.predecessor_id_map["d"] == ["check__conditional_join"]
    action, ctx = run(result.flow)
    assert (action, ctx["log"]) == ("end", ["check", branch, "d"])


@pytest.mark.parametrize("route", ["true", "false"])
@pytest.mark.parametrize("via", ["memory", "blueprint_executor"])
def test_conditional_join_hands_over_with_the_default_action(route: str, via: str) -> None:
    # start -"true"-> path-true -> converge, start -"false"-> converge: the join is reached
    # by "false" directly from the conditional node, and must still run converge (SPEC §8.20).
    g = graph(
        [node("start", "check", action=route), node("path-true"), node("converge", action="end")],
        [edge("start", "path-true", "true"), edge("path-true", "converge"), edge("start", "converge", "false")],
    )
    builder = GraphBuilder(REG, conditional_node_types=["check"])
    if via == "memory":
        flow = builder.build(g).flow
        action, ctx = run(flow)
    else:
        executor = BlueprintExecutor(builder.build_blueprint(g).blueprint.to_dict(), REG)
        action, ctx = run(executor.flow, executor=executor)
    expected = ["start", "path-true", "converge"] if route == "true" else ["start", "converge"]
    assert (action, ctx["log"]) == ("end", expected)


def test_without_conditional_type_the_convergence_would_wait() -> None:
    # Documented reason for conditional_node_types: the builder cannot know branches are exclusive.
    g = graph(
        [node("check", "check", action="yes"), node("b"), node("c"), node("d")],
        [edge("check", "b", "yes"), edge("check", "c", "no"), edge("b", "d"), edge("c", "d")],
    )
    blueprint = GraphBuilder(REG).build_blueprint(g).blueprint
    assert blueprint.predecessor_count_map["d"] == 2
    assert all(n.type != "__internal_conditional_join__" for n in blueprint.nodes)


def test_loop_runs_until_exit() -> None:
    class Counter(Node[Any, Any, Any]):
        def __init__(self, data: dict[str, Any], **deps: Any) -> None:
            super().__init__()

        async def post(self, args: Any) -> str:
            n = (await args.ctx.get("n")) if await args.ctx.has("n") else 0
            await args.ctx.set("n", n + 1)
            return "again" if n + 1 < 50 else "out"

    g = graph(
        [node("start"), node("count", "counter"), node("end", action="bye")],
        [edge("start", "count"), edge("count", "count", "again"), edge("count", "end", "out")],
    )
    action, ctx = run(GraphBuilder({**REG, "counter": Counter}).build(g).flow)
    assert (action, ctx["n"]) == ("bye", 50)


def test_sub_workflow_inlined_with_mappers_and_actions_out() -> None:
    subs = {
        "review": graph(
            [node("score", set={"sub_score": 7}), node("decide", action_key="verdict")], [edge("score", "decide")]
        )
    }
    g = graph(
        [
            node("s", "sub", workflowId="review", inputs={"verdict": "parent_verdict"}, outputs={"score": "sub_score"}),
            node("ok", action="accepted"),
            node("ko", action="refused"),
        ],
        [edge("s", "ok", "approved"), edge("s", "ko", "rejected")],
    )
    builder = GraphBuilder(REG, sub_workflow_node_types=["sub"], sub_workflow_resolver=DictResolver(subs))
    result = builder.build(g)
    assert isinstance(result.node_map["s_output_mapper"], OutputMappingNode)
    assert result.original_predecessor_id_map["ok"] == ["s"]
    assert result.node_map["s:decide"].graph_data.data["isSubWorkflow"] is True
    for verdict, final, last in (("approved", "accepted", "ok"), ("rejected", "refused", "ko")):
        from flowcraft import TypedContext

        action, ctx = run(result.flow, TypedContext({"parent_verdict": verdict}))
        assert (action, ctx["log"], ctx["score"]) == (final, ["s:score", "s:decide", last], 7)


def test_sub_workflow_default_exit_and_missing_input_key_warns() -> None:
    from flowcraft import TypedContext

    class Log:
        def __init__(self) -> None:
            self.warnings: list[str] = []

        def debug(self, message: str, **context: Any) -> None: ...
        def info(self, message: str, **context: Any) -> None: ...
        def error(self, message: str, **context: Any) -> None: ...
        def warn(self, message: str, **context: Any) -> None:
            self.warnings.append(message)

    subs = {"w": graph([node("x")], [])}
    g = graph(
        [node("s", "sub", workflowId="w", inputs={"k": "absent"}), node("after", action="end")], [edge("s", "after")]
    )
    result = GraphBuilder(REG, sub_workflow_node_types=["sub"], sub_workflow_resolver=DictResolver(subs)).build(g)
    logger = Log()
    action, ctx = run(result.flow, TypedContext(), logger=logger)
    assert (action, ctx["log"]) == ("end", ["s:x", "after"])
    assert any("'absent' not found" in w for w in logger.warnings)


def test_dependencies_and_config_are_applied() -> None:
    class Service(Node[Any, Any, Any]):
        def __init__(self, data: dict[str, Any], *, db: str, **rest: Any) -> None:
            super().__init__()
            self.data, self.db = data, db

    g = {
        "nodes": [
            {"id": "a", "type": "svc", "data": {"k": 1}, "config": {"maxRetries": 3, "wait": 250, "timeout": 1500}}
        ],
        "edges": [],
    }
    result = GraphBuilder({"svc": Service}, {"db": "sqlite"}).build(g)
    a = result.node_map["a"]
    assert isinstance(a, Service)
    assert (a.db, a.data, a.max_retries, a.wait, a.timeout) == (
        "sqlite",
        {"k": 1, "originalId": "a", "nodeId": "a"},
        3,
        0.25,
        1.5,
    )
    assert a.id == "a" and a.graph_data.id == "a"


def test_inputs_referencing_local_ids_are_reprefixed() -> None:
    subs = {
        "w": graph(
            [node("fetch"), node("llm", inputs={"text": "fetch", "many": ["fetch", "other"], "c": "lit"})],
            [edge("fetch", "llm")],
        )
    }
    g = graph([node("s", "sub", workflowId="w")], [])
    blueprint = (
        GraphBuilder(REG, sub_workflow_node_types=["sub"], sub_workflow_resolver=DictResolver(subs))
        .build_blueprint(g)
        .blueprint
    )
    llm = next(n for n in blueprint.nodes if n.id == "s:llm")
    assert llm.data["inputs"] == {"text": "s:fetch", "many": ["s:fetch", "other"], "c": "lit"}


def test_literal_default_action_warns() -> None:
    class Log:
        warnings: list[str] = []

        def debug(self, message: str, **context: Any) -> None: ...
        def info(self, message: str, **context: Any) -> None: ...
        def error(self, message: str, **context: Any) -> None: ...
        def warn(self, message: str, **context: Any) -> None:
            self.warnings.append(message)

    logger = Log()
    GraphBuilder(REG, logger=logger).build_blueprint(graph([node("a"), node("b")], [edge("a", "b", "default")]))
    assert any("not DEFAULT_ACTION" in w for w in logger.warnings)


def test_registry_adds_internal_types_and_user_entries_win() -> None:
    registry = create_node_registry({"task": Recorder})
    assert registry["__internal_parallel_container__"] is ParallelBranchContainer
    custom = create_node_registry({"__internal_conditional_join__": Recorder})
    assert custom["__internal_conditional_join__"] is Recorder
    with pytest.raises(TypeError, match="must be a node class or factory"):
        create_node_registry({"x": 3})  # type: ignore[dict-item]


def test_blueprint_executor_runs_only_its_flow() -> None:
    import asyncio

    from flowcraft import Flow

    blueprint = GraphBuilder(REG).build_blueprint(graph([node("a", action="x")], [])).blueprint
    executor = BlueprintExecutor(blueprint.to_dict(), REG)
    assert executor.get_node("a") is executor.node_map["a"] and executor.get_node("zz") is None
    assert asyncio.run(executor.flow.run(executor=executor)) == "x"
    assert first_successor(executor.node_map["a"], DEFAULT_ACTION) is None  # the one successor rule
    with pytest.raises(ValueError, match="runs only the flow it hydrated"):
        asyncio.run(executor.run(Flow(Recorder()), None))


# ---- bad input ---------------------------------------------------------------------------------


def test_unknown_node_type() -> None:
    with pytest.raises(UnknownNodeTypeError, match=r"Node 'b' has type 'nope'.*known types: check, task") as info:
        GraphBuilder(REG).build_blueprint(graph([node("a"), node("b", "nope")], [edge("a", "b")]))
    assert (info.value.node_id, info.value.path) == ("b", "nodes[1].type")


@pytest.mark.parametrize("end", ["source", "target"])
def test_edge_to_or_from_unknown_node(end: str) -> None:
    e = edge("ghost", "a") if end == "source" else edge("a", "ghost")
    with pytest.raises(DanglingEdgeError, match=f"unknown {end} 'ghost'") as info:
        GraphBuilder(REG).build_blueprint(graph([node("a")], [e]))
    assert info.value.path == f"edges[0].{end}" and info.value.edge.source == e["source"]


def test_duplicate_node_id() -> None:
    with pytest.raises(DuplicateNodeIdError, match=r"Duplicate node id 'a' \(nodes\[1\]\)") as info:
        GraphBuilder(REG).build_blueprint(graph([node("a"), node("a")], []))
    assert info.value.node_id == "a"


def test_generated_id_collision_is_a_duplicate() -> None:
    g = graph([node("a"), node("b"), node("c"), node("a__parallel_container")], [edge("a", "b"), edge("a", "c")])
    with pytest.raises(DuplicateNodeIdError, match="'a__parallel_container' for a node it generates"):
        GraphBuilder(REG).build_blueprint(g)
    subs = {"w": graph([node("x")], [])}
    g2 = graph([node("s", "sub", workflowId="w"), node("s_input_mapper")], [])
    with pytest.raises(DuplicateNodeIdError, match="'s_input_mapper'"):
        GraphBuilder(REG, sub_workflow_node_types=["sub"], sub_workflow_resolver=DictResolver(subs)).build_blueprint(g2)


def test_sub_workflow_without_resolver() -> None:
    with pytest.raises(MissingSubWorkflowError, match="'s' is a sub-workflow .* no sub_workflow_resolver"):
        GraphBuilder(REG, sub_workflow_node_types=["sub"]).build_blueprint(
            graph([node("s", "sub", workflowId="w")], [])
        )


def test_unknown_workflow_id() -> None:
    builder = GraphBuilder(REG, sub_workflow_node_types=["sub"], sub_workflow_resolver=DictResolver({}))
    with pytest.raises(MissingSubWorkflowError, match="'s' refers to workflow 'w', which the resolver does not know"):
        builder.build_blueprint(graph([node("s", "sub", workflowId="w")], []))
    with pytest.raises(InvalidGraphError, match="needs data.workflowId"):
        builder.build_blueprint(graph([node("s", "sub")], []))


@pytest.mark.parametrize(
    ("subs", "message"),
    [
        ({"w": graph([node("again", "sub", workflowId="w")], [])}, r"'w' -> 'w'"),
        (
            {
                "w": graph([node("to_v", "sub", workflowId="v")], []),
                "v": graph([node("to_u", "sub", workflowId="u")], []),
                "u": graph([node("back", "sub", workflowId="w")], []),
            },
            r"'w' -> 'v' -> 'u' -> 'w'",
        ),
    ],
)
def test_sub_workflow_including_itself_is_detected(subs: dict[str, Any], message: str) -> None:
    resolver = DictResolver(subs)
    builder = GraphBuilder(REG, sub_workflow_node_types=["sub"], sub_workflow_resolver=resolver)
    with pytest.raises(MissingSubWorkflowError, match=message):
        builder.build_blueprint(graph([node("top", "sub", workflowId="w")], []))
    assert len(resolver.calls) <= 4


def test_malformed_or_empty_sub_workflow() -> None:
    subs = {
        "bad": {"nodes": [{"id": "x"}]},
        "empty": {"nodes": []},
        "loop": graph([node("x"), node("y")], [edge("x", "y"), edge("y", "x")]),
    }
    builder = GraphBuilder(REG, sub_workflow_node_types=["sub"], sub_workflow_resolver=DictResolver(subs))
    with pytest.raises(InvalidGraphError, match=r"Sub-workflow 'bad' \(used by node 's'\) is malformed") as info:
        builder.build_blueprint(graph([node("s", "sub", workflowId="bad")], []))
    assert info.value.path == "nodes[0].type"
    with pytest.raises(InvalidGraphError, match="has no nodes"):
        builder.build_blueprint(graph([node("s", "sub", workflowId="empty")], []))
    with pytest.raises(NoStartNodeError, match="has no start node"):
        builder.build_blueprint(graph([node("s", "sub", workflowId="loop")], []))


def test_no_start_node() -> None:
    with pytest.raises(NoStartNodeError, match=r"every node \('a', 'b'\) has an incoming edge"):
        GraphBuilder(REG).build_blueprint(graph([node("a"), node("b")], [edge("a", "b"), edge("b", "a")]))
    with pytest.raises(NoStartNodeError, match="no nodes"):
        GraphBuilder(REG).build_blueprint({"nodes": [], "edges": []})


def test_node_class_that_cannot_be_constructed() -> None:
    class NoData(Node[Any, Any, Any]):
        def __init__(self) -> None:
            super().__init__()

    class Boom(Node[Any, Any, Any]):
        def __init__(self, data: dict[str, Any], **deps: Any) -> None:
            raise RuntimeError("kaboom")

    with pytest.raises(GraphError, match=r"Node 'a': type 'nodata' \(.*NoData\) cannot be constructed") as info:
        GraphBuilder({"nodata": NoData}).build(graph([node("a", "nodata")], []))
    assert info.value.node_id == "a"
    with pytest.raises(GraphError, match=r"Constructing node 'a' of type 'boom'.*RuntimeError: kaboom"):
        GraphBuilder({"boom": Boom}).build(graph([node("a", "boom")], []))
    with pytest.raises(GraphError, match="returned int, not a node"):
        GraphBuilder({"f": lambda data, **deps: 3}).build(graph([node("a", "f")], []))


def test_workflow_id_on_a_non_sub_workflow_type() -> None:
    with pytest.raises(InvalidGraphError, match="'workflowId' but its type 'task' is not a sub-workflow type") as info:
        GraphBuilder(REG).build_blueprint(graph([node("a", workflowId="w")], []))
    assert info.value.path == "nodes[0].data.workflowId"


def blueprint_dict() -> dict[str, Any]:
    return GraphBuilder(REG).build_blueprint(graph([node("a"), node("b")], [edge("a", "b")])).blueprint.to_dict()


@pytest.mark.parametrize(
    ("mutate", "error", "message"),
    [
        (lambda b: b.update(startNodeId="zz"), InvalidGraphError, "startNodeId 'zz' is not one of its nodes"),
        (lambda b: b["predecessorCountMap"].update(zz=1), InvalidGraphError, "predecessorCountMap names 'zz'"),
        (
            lambda b: b["originalPredecessorIdMap"].update(zz=["a"]),
            InvalidGraphError,
            "originalPredecessorIdMap names 'zz'",
        ),
        (lambda b: b["originalPredecessorIdMap"].update(b=["q"]), InvalidGraphError, "names producer 'q'"),
        (lambda b: b["edges"].append({"source": "a", "target": "zz"}), DanglingEdgeError, "unknown target 'zz'"),
        (lambda b: b["nodes"].append(dict(b["nodes"][0])), DuplicateNodeIdError, "two nodes with id 'a'"),
        (lambda b: b["nodes"][0].update(type="nope"), UnknownNodeTypeError, "type 'nope'"),
        (lambda b: b["nodes"][0].update(config={"maxRetries": 2}), GraphError, "not a Node with retry options"),
    ],
)
def test_blueprint_naming_missing_nodes(mutate: Any, error: type[Exception], message: str) -> None:
    b = blueprint_dict()
    mutate(b)
    registry = REG
    if "config" in b["nodes"][0]:
        from flowcraft import AbstractNode

        class Bare(AbstractNode):
            def __init__(self, data: Any) -> None:
                super().__init__()

        registry = {"task": Bare}
    with pytest.raises(error, match=message):
        BlueprintExecutor(b, registry)


def test_build_accepts_graph_objects() -> None:
    g = WorkflowGraph.from_dict(graph([node("a")], []))
    assert GraphBuilder(REG).build_blueprint(g).blueprint.start_node_id == "a"


# ---- the literal action "default" (issue 10 item 21) --------------------------------------------

ALL_GROUPS = graph(
    [node("a", action_key="route"), *(node(i) for i in ("x", "y", "b", "c", "d", "e"))],
    [
        edge("a", "x", "go"),
        edge("a", "y", "go"),
        edge("a", "b"),
        edge("a", "c"),
        edge("a", "d", "default"),
        edge("a", "e", "default"),
    ],
)


def test_default_action_group_and_literal_default_group_get_their_own_containers() -> None:
    blueprint = GraphBuilder(REG).build_blueprint(ALL_GROUPS).blueprint
    out = {(e.target, e.action) for e in blueprint.edges if e.source == "a"}
    assert out == {
        ("a__parallel_container", None),  # the default action's group has the plain name
        ("a__parallel_container__go", "go"),
        ("a__parallel_container__default", "default"),  # the literal "default" is just an action
    }
    branches = {
        c: sorted(e.target for e in blueprint.edges if e.source == c)
        for c in ("a__parallel_container", "a__parallel_container__go", "a__parallel_container__default")
    }
    assert branches == {
        "a__parallel_container": ["b", "c"],
        "a__parallel_container__go": ["x", "y"],
        "a__parallel_container__default": ["d", "e"],
    }


@pytest.mark.parametrize(
    ("route", "ran"), [(None, ["b", "c"]), ("default", ["d", "e"]), ("go", ["x", "y"])], ids=["None", "default", "go"]
)
def test_literal_default_runs_only_its_own_branches(route: str | None, ran: list[str]) -> None:
    from flowcraft import TypedContext

    result = GraphBuilder(REG).build(ALL_GROUPS)
    _, ctx = run(result.flow, TypedContext({"route": route}))
    assert ctx["log"][0] == "a" and sorted(ctx["log"][1:]) == ran


def test_literal_default_group_first_does_not_take_the_plain_name() -> None:
    g = graph(
        [node("a"), *(node(i) for i in "bcde")],
        [edge("a", "d", "default"), edge("a", "e", "default"), edge("a", "b"), edge("a", "c")],
    )
    blueprint = GraphBuilder(REG).build_blueprint(g).blueprint
    out = {(e.target, e.action) for e in blueprint.edges if e.source == "a"}
    assert out == {("a__parallel_container", None), ("a__parallel_container__default", "default")}
