"""Every ```python block of README.md and of the documentation pages runs, as printed.

- README.md: each block runs on its own, in a fresh namespace (readers copy one block).
- docs/*.md: a page's blocks run in order in one namespace, as a reader works through the
  page (a later block may use what an earlier block on the same page defined).
- A block that talks to Redis (it names ``redis://localhost:6379/0``) runs against the test
  Redis (``FLOWCRAFT_TEST_REDIS_URL``, which ``scripts/test`` starts) with that URL swapped
  in; it fails, never skips, when there is none.
- A block that cannot run as printed carries ``<!-- not run: <reason> -->`` on the line
  just above its fence: it is compiled, not run, and must be listed in ``NOT_RUN`` below,
  so adding one is a visible decision. Shell commands, output and pseudo-code are fenced
  as ```bash or ```text instead.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCUMENTED_REDIS = "redis://localhost:6379/0"
TEST_REDIS = os.environ.get("FLOWCRAFT_TEST_REDIS_URL", "redis://127.0.0.1:6399/0")

# (page, reason) of every block marked as not run; keep this list short.
NOT_RUN: set[tuple[str, str]] = set()


def name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def blocks(page: Path) -> list[tuple[int, str, str | None]]:
    """(line number, code, the not-run reason or None) of each ```python block."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        before = text[: match.start()]
        mark = re.search(r"<!-- not run: (.+?) -->\n$", before)
        found.append((before.count("\n") + 2, match.group(1), mark.group(1) if mark else None))
    return found


def run_block(page: Path, line: int, code: str, namespace: dict[str, object]) -> None:
    source = "\n" * (line - 1) + code.replace(DOCUMENTED_REDIS, TEST_REDIS)  # tracebacks point at the page
    exec(compile(source, str(page), "exec"), namespace)  # the documentation's own code


def _clean_redis() -> None:
    import redis

    client = redis.Redis.from_url(TEST_REDIS, socket_connect_timeout=2)
    try:
        keys = list(client.scan_iter(match="flowcraft:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def test_the_not_run_list_is_exactly_the_marked_blocks():
    marked = {(name(page), reason) for page in PAGES for _, _, reason in blocks(page) if reason}
    assert marked == NOT_RUN
    assert len(NOT_RUN) <= 3, "make blocks runnable instead of marking them"
    for page in PAGES:
        for line, code, reason in blocks(page):
            if reason:
                compile(code, f"{page}:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_python_blocks_run(page: Path, capsys: pytest.CaptureFixture[str]):
    runnable = [(line, code) for line, code, reason in blocks(page) if reason is None]
    shared: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    uses_redis = False
    try:
        for line, code in runnable:
            uses_redis = uses_redis or DOCUMENTED_REDIS in code
            namespace = {"__name__": f"readme_{line}"} if page.name == "README.md" else shared
            run_block(page, line, code, namespace)
    finally:
        if uses_redis:
            _clean_redis()
    out = capsys.readouterr().out
    if page.name == "events.md":
        assert "only -> DEFAULT_ACTION" in out


def test_every_page_with_code_is_covered():
    assert [name(p) for p in PAGES if blocks(p)], "no python blocks found"
    assert "README.md" in [name(p) for p in PAGES]
