"""The documentation site: every nav page exists and the pages say true things (their code
blocks are run by tests/test_readme.py; the strict MkDocs build itself is `bash scripts/docs`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def nav_pages() -> list[str]:
    text = (ROOT / "mkdocs.yml").read_text()
    nav = text.split("\nnav:\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"([\w/-]+\.md)", nav)


def test_every_nav_page_exists_and_every_page_is_in_the_nav():
    pages = nav_pages()
    for page in pages:
        assert (DOCS / page).is_file(), f"mkdocs.yml nav lists {page}, which does not exist"
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert on_disk <= set(pages), f"pages missing from the nav: {sorted(on_disk - set(pages))}"
    for required in ("declarative.md", "custom-executors.md", "benchmarks.md", "cli.md", "events.md"):
        assert required in pages


def test_hook_renders_repository_links_and_flags_missing_ones(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    import importlib.util

    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "scripts" / "mkdocs_hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)

    class File:
        src_path = "custom-executors.md"

    class Page:
        file = File()

    config = {"docs_dir": str(DOCS)}
    text = "see [the readme](../README.md), [a page](cli.md) and [gone](../nope.md)"
    with caplog.at_level("WARNING", logger="mkdocs.hooks.repo_links"):
        out = hooks.on_page_markdown(text, Page(), config, None)
    assert out == "see the readme (`README.md`), [a page](cli.md) and gone"
    assert "links to '../nope.md', which is not a file of the repository" in caplog.text


def _row(page: Path, name: str) -> str:
    return next(line for line in page.read_text().splitlines() if line.startswith("|") and name in line)


def test_the_distributed_example_is_described_as_what_it_is():
    """examples/distributed is a fan-out of fetches and a fan-in, not the moderation graph."""
    readme = (ROOT / "examples" / "distributed" / "README.md").read_text()
    assert "fan-out" in readme.lower() and "moderation" not in readme.lower()
    for page in (ROOT / "examples" / "README.md", DOCS / "examples.md"):
        row = _row(page, "distributed/")
        assert "fan-out" in row and "moderation" not in row, f"{page.relative_to(ROOT)}: {row}"
    moderation = (ROOT / "examples" / "moderation" / "README.md").read_text()
    assert "same graph on Redis workers is in" not in moderation
    assert "flowcraft worker --registry examples.moderation.nodes:REGISTRY" in moderation


def test_cli_page_does_not_deny_distributed_progress():
    """`run --executor redis` shows node-by-node progress (tests/cli/test_cli_distributed.py checks it)."""
    limits = (DOCS / "cli.md").read_text().split("## What the command line cannot do", 1)[1]
    assert "progress" not in limits
