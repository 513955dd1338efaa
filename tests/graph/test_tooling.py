"""analyze_graph, validators, and Mermaid output."""

from __future__ import annotations

from typing import Any

from flowcraft import Flow, ParallelFlow
from flowcraft.graph import (
    GraphBuilder,
    GraphIssue,
    GraphNode,
    analyze_graph,
    check_default_action_strings,
    check_for_cycles,
    create_node_rule,
    generate_mermaid,
    is_node_type,
    validate_graph,
)

from .conftest import DictResolver, Recorder

LOOPY = {
    "nodes": [{"id": i, "type": "t"} for i in ("a", "b", "c", "d")],
    "edges": [
        {"source": "a", "target": "b"},
        {"source": "b", "target": "c"},
        {"source": "c", "target": "b", "action": "again"},
        {"source": "c", "target": "d", "action": "default"},
        {"source": "d", "target": "ghost"},
    ],
}


def test_analyze_graph_degrees_starts_and_cycles() -> None:
    analysis = analyze_graph(LOOPY)
    assert analysis.all_node_ids == ["a", "b", "c", "d"]
    assert analysis.start_node_ids == ["a"]
    assert (analysis.nodes["b"].in_degree, analysis.nodes["b"].out_degree) == (2, 1)
    assert analysis.nodes["d"].out_degree == 1  # the dangling edge still leaves d
    assert analysis.cycles == [["b", "c", "b"]]


def test_cycle_search_is_iterative() -> None:
    n = 5000  # deeper than the recursion limit
    graph = {
        "nodes": [{"id": f"n{i}", "type": "t"} for i in range(n)],
        "edges": [{"source": f"n{i}", "target": f"n{(i + 1) % n}"} for i in range(n)],
    }
    analysis = analyze_graph(graph)
    assert len(analysis.cycles) == 1 and len(analysis.cycles[0]) == n + 1


def test_validators() -> None:
    issues = validate_graph(
        LOOPY,
        check_for_cycles,
        check_default_action_strings,
        create_node_rule(
            is_node_type("t"), lambda n: GraphIssue(n.id, "Leaf", "no out") if n.out_degree == 0 else None
        ),
        create_node_rule(lambda n: n.id == "a", lambda n: [GraphIssue("a", "X", "one"), GraphIssue("a", "Y", "two")]),
    )
    assert [(i.node_id, i.type) for i in issues] == [
        ("b", "CycleDetected"),
        ("c", "DefaultActionString"),
        ("a", "X"),
        ("a", "Y"),
    ]
    assert issues[0].message == "Cycle detected involving nodes: b -> c -> b"


def test_duplicate_cycles_reported_once() -> None:
    analysis = analyze_graph(
        {
            "nodes": [{"id": i, "type": "t"} for i in "abc"],
            "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "a"}, {"source": "c", "target": "c"}],
        }
    )
    assert [i.node_id for i in check_for_cycles(analysis)] == ["a", "c"]


def built() -> Any:
    subs = {"w": {"nodes": [{"id": "x", "type": "task"}], "edges": []}}
    graph = {
        "nodes": [
            {"id": "a", "type": "task"},
            {"id": "s", "type": "sub", "data": {"workflowId": "w"}},
            {"id": "b", "type": "task"},
            {"id": "c", "type": "task"},
            {"id": "end", "type": "task"},
        ],
        "edges": [
            {"source": "a", "target": "s"},
            {"source": "s", "target": "b", "action": 'say "hi"'},
            {"source": "s", "target": "c", "action": 'say "hi"'},
            {"source": "b", "target": "end"},
        ],
    }
    return GraphBuilder(
        {"task": Recorder}, sub_workflow_node_types=["sub"], sub_workflow_resolver=DictResolver(subs)
    ), graph


def test_mermaid_of_a_blueprint() -> None:
    builder, graph = built()
    text = generate_mermaid(builder.build_blueprint(graph).blueprint)
    lines = text.splitlines()
    assert lines[0] == "graph TD"
    assert '  s_x_0["s:x (task)"]' in lines  # colon sanitized in the id, kept in the label
    assert '  s_input_mapper_0(("inputs: s"))' in lines
    assert '  s_output_mapper_0(("outputs: s"))' in lines
    assert '  s_0[["s"]]' in lines
    assert '  s_output_mapper__parallel_container_0{{"parallel: s_output_mapper__parallel_container"}}' in lines
    assert '  s_output_mapper_0 -- "say #quot;hi#quot;" --> s_output_mapper__parallel_container_0' in lines
    assert "  s_output_mapper__parallel_container_0 -.-> b_0" in lines
    assert '  end_0["end (task)"]' in lines  # "end" alone would break Mermaid
    assert generate_mermaid(builder.build_blueprint(graph).blueprint.to_dict()) == text


def test_mermaid_of_a_built_flow_and_a_plain_flow() -> None:
    builder, graph = built()
    text = generate_mermaid(builder.build(graph).flow)
    assert '  a_0["a (task)"]' in text and "-.-> c_0" in text and '(("outputs: s"))' in text
    flow = Flow()
    one, two = Recorder(), Recorder()
    flow.start(one).next(ParallelFlow([two]).with_id("par"), "go")
    plain = generate_mermaid(flow).splitlines()
    assert plain[1] == '  Recorder_0["Recorder"]'
    assert '  Recorder_0 -- "go" --> par_0' in plain and "  par_0 -.-> Recorder_1" in plain
    assert generate_mermaid(Flow()) == "graph TD\n  %% empty flow"


def test_mermaid_of_a_graph_dict_and_non_ascii_ids() -> None:
    text = generate_mermaid(
        {"nodes": [{"id": "日本", "type": "t"}, {"id": "é", "type": "t"}], "edges": [{"source": "日本", "target": "é"}]}
    )
    assert text.splitlines() == ["graph TD", '  node_0["日本 (t)"]', '  node_1["é (t)"]', "  node_0 --> node_1"]


def test_mermaid_labels_use_the_graph_node_id_when_the_node_has_no_id() -> None:
    """SPEC §8.22: graph data but no explicit id -> the graph node's id labels it."""
    flow = Flow()
    start = Recorder().with_graph_data(GraphNode("start-node", "llm-process"))
    plain_dict = Recorder().with_graph_data({"id": "after", "type": "summarize"})
    flow.start(start).next(plain_dict)
    lines = generate_mermaid(flow).splitlines()
    assert lines[1] == '  startnode_0["start-node (llm-process)"]'
    assert lines[2] == '  after_0["after (summarize)"]'
    assert lines[3] == "  startnode_0 --> after_0"
    # an explicit id still wins over the graph data's id
    start.with_id("explicit")
    assert '  explicit_0["explicit (llm-process)"]' in generate_mermaid(flow).splitlines()
