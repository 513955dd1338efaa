"""`flowcraft viz` without `--registry` cannot know which node types are conditional, so
it draws no conditional join: it says so, naming the join the running graph would have
(issue 10 item 19)."""

from __future__ import annotations

from pathlib import Path

from .helpers import MODERATION, flowcraft, write_json

NOTE = (
    "no conditional joins are drawn without --registry: if node type 'triage' is conditional, the graph "
    "that runs has 'triage__conditional_join' in front of 'notify'; pass --registry or --conditional-type "
    "to draw it"
)


def test_viz_without_registry_says_conditional_joins_are_not_drawn() -> None:
    result = flowcraft("viz", str(MODERATION))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "graph TD"
    assert lines[1] == f"  %% note: {NOTE}"
    assert "conditional_join" not in "\n".join(lines[2:])
    assert result.stderr == f"flowcraft: note: {NOTE}\n"
    dot = flowcraft("viz", str(MODERATION), "--format", "dot")
    assert dot.returncode == 0, dot.stderr
    assert dot.stdout.splitlines()[1] == f"  // note: {NOTE}"
    assert dot.stderr == f"flowcraft: note: {NOTE}\n"


def test_viz_with_registry_or_conditional_type_draws_the_join_without_a_note() -> None:
    for extra in (["--registry", "examples.moderation.nodes:BUILDER"], ["--conditional-type", "triage"]):
        result = flowcraft("viz", str(MODERATION), *extra)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert "%% note" not in result.stdout
        assert "triage__conditional_join" in result.stdout


def test_viz_adds_no_note_when_no_branches_meet_again(tmp_path: Path) -> None:
    write_json(
        tmp_path / "graph.json",
        {
            "nodes": [{"id": i, "type": "t"} for i in ("check", "yes", "no", "end")],
            "edges": [
                {"source": "check", "target": "yes", "action": "yes"},
                {"source": "check", "target": "no", "action": "no"},
                {"source": "yes", "target": "end"},
            ],
        },
    )
    for extra in ([], ["--raw"]):
        result = flowcraft("viz", "graph.json", *extra, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stderr == "" and "note" not in result.stdout
