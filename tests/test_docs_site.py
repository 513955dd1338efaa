"""The documentation site: every nav page exists and the pages say true things (their code
blocks are run by tests/test_readme.py; the strict MkDocs build itself is `bash scripts/docs`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# The first test using `site` builds it, and the first build fetches Mermaid (npm pack).
pytestmark = pytest.mark.timeout(300)


def nav_pages() -> list[str]:
    text = (ROOT / "mkdocs.yml").read_text()
    nav = text.split("\nnav:\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"([\w/-]+\.md)", nav)


def test_every_nav_page_exists_and_every_page_is_in_the_nav():
    pages = nav_pages()
    for page in pages:
        if page.startswith("examples/"):  # generated from examples/ by scripts/mkdocs_hooks.py
            source = ROOT / page.removesuffix(".md")
            assert source.is_dir() or source.with_suffix(".py").is_file(), page
            continue
        assert (DOCS / page).is_file(), f"mkdocs.yml nav lists {page}, which does not exist"
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert on_disk <= set(pages), f"pages missing from the nav: {sorted(on_disk - set(pages))}"
    for required in ("declarative.md", "custom-executors.md", "benchmarks.md", "cli.md", "events.md"):
        assert required in pages
    import importlib.util

    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "scripts" / "mkdocs_hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    generated = set(hooks.example_pages())
    assert generated == {p for p in pages if p.startswith("examples/")}, "list every example page in the nav"


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
    row = _row(ROOT / "examples" / "README.md", "distributed/")
    assert "fan-out" in row and "moderation" not in row, f"examples/README.md: {row}"
    section = (DOCS / "examples.md").read_text().split("## [Distributed]", 1)[1]
    assert "fan-out" in section and "moderation" not in section.lower()
    moderation = (ROOT / "examples" / "moderation" / "README.md").read_text()
    assert "same graph on Redis workers is in" not in moderation
    assert "flowcraft worker --registry examples.moderation.nodes:REGISTRY" in moderation


def test_cli_page_does_not_deny_distributed_progress():
    """`run --executor redis` shows node-by-node progress (tests/cli/test_cli_distributed.py checks it)."""
    limits = (DOCS / "cli.md").read_text().split("## What the command line cannot do", 1)[1]
    assert "progress" not in limits


# --- The built site ------------------------------------------------------------------
# `mkdocs build --strict` into a temporary directory, then checks of what a reader gets.
# MkDocs is in the docs extra, which scripts/test installs; a missing one fails here.

API_MODULES = [
    "flowcraft",
    "flowcraft.merge",
    "flowcraft.graph",
    "flowcraft.engine",
    "flowcraft.durable",
    "flowcraft.distributed",
    "flowcraft.testing",
    "flowcraft.integrations.opentelemetry",
    "flowcraft.cli",
    "flowcraft.ui",
]
# A role as it reads once rendered: `:class:` then the (code-formatted) name, backticks gone.
REST = re.compile(r":(?:class|func|mod|meth|attr|exc|data|obj|ref):(?=\S)|\bExamples?::")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-4000:]}"
    return out


def html_pages(site: Path) -> dict[str, str]:
    return {p.relative_to(site).as_posix(): p.read_text(encoding="utf-8") for p in site.rglob("*.html")}


def article(html: str) -> str:
    """The page's own content (no navigation), tags removed and entities unescaped."""
    import html as html_lib

    body = html.split('<article class="md-content__inner', 1)[-1].split("</article>", 1)[0]
    return html_lib.unescape(re.sub(r"<[^>]+>", "", body))


def test_no_page_shows_rest_markup(site: Path):
    found = []
    for name, html in html_pages(site).items():
        text = article(html)
        found += [f"{name}: ...{text[max(0, m.start() - 40) : m.end() + 40]!r}" for m in REST.finditer(text)]
    assert not found, (
        "literal reST on the site (use [`name`][flowcraft.name] and a fenced Examples: block):\n" + "\n".join(found)
    )


def test_every_mermaid_fence_is_drawn_by_the_vendored_mermaid(site: Path):
    pages = html_pages(site)
    for src in sorted(DOCS.rglob("*.md")):
        fences = len(re.findall(r"^```mermaid\s*$", src.read_text(), flags=re.MULTILINE))
        built = src.relative_to(DOCS).with_suffix("").as_posix()
        html = pages[re.sub(r"(^|/)index/index.html$", r"\1index.html", f"{built}/index.html")]
        assert html.count('<pre class="mermaid">') == fences, f"{src.name}: {fences} mermaid fences"
        if fences:
            assert re.search(r'<script src="[./]*assets/javascripts/mermaid\.min\.js"', html), src.name
    for name, html in pages.items():
        assert "language-mermaid" not in html, f"{name}: a Mermaid fence shown as code"
        # Nothing is loaded from another host: the site works offline.
        remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', html)
        assert not [u for u in remote if "mermaid" in u or "fonts.g" in u], f"{name} loads {remote}"
    assert (site / "assets/javascripts/mermaid.min.js").stat().st_size > 1_000_000


def test_the_declarative_diagram_is_what_generate_mermaid_prints():
    page = (DOCS / "declarative.md").read_text()
    example = re.search(r"^```python\n(.*?)^```", page, flags=re.DOTALL | re.MULTILINE)
    fence = re.search(r"^```mermaid\n(.*?)^```", page, flags=re.DOTALL | re.MULTILINE)
    assert example and fence
    namespace: dict[str, object] = {"__name__": "docs_declarative"}
    exec(compile(example.group(1), "declarative.md", "exec"), namespace)  # the page's own example
    from flowcraft import generate_mermaid

    blueprint = namespace["builder"].build_blueprint(namespace["main"]).blueprint  # type: ignore[attr-defined]
    assert generate_mermaid(blueprint).strip() == fence.group(1).strip()


def _documented_ids(site: Path) -> set[str]:
    ids: set[str] = set()
    for page in (site / "api").rglob("index.html"):
        ids |= set(re.findall(r'id="(flowcraft[\w.]*)"', page.read_text(encoding="utf-8")))
    return ids


def test_every_public_name_has_its_own_entry_in_the_api_reference(site: Path):
    import importlib

    ids = _documented_ids(site)
    modules = {name: importlib.import_module(name) for name in API_MODULES}
    missing = []
    for name, module in modules.items():
        for public in module.__all__:
            obj = getattr(module, public)  # lazily exported names too
            # A re-exported object counts where any public module that exports it documents it.
            homes = [m for m, mod in modules.items() if public in mod.__all__ and getattr(mod, public) is obj]
            if not any(f"{home}.{public}" in ids for home in homes):
                missing.append(f"{name}.{public}")
    assert not missing, f"not in the API reference: {missing}"


def test_the_api_reference_shows_no_private_name(site: Path):
    for page in (site / "api").rglob("index.html"):
        html = page.read_text(encoding="utf-8")
        assert not re.findall(r'id="flowcraft[\w.]*\._(?!_version__")\w+"', html), page
        bases = re.findall(r"Bases:(.*?)</p>", html, flags=re.DOTALL)
        assert not [b for b in bases if re.search(r">_[A-Za-z]", b)], f"{page}: private base in {bases}"


def test_every_internal_link_and_anchor_resolves(site: Path):
    pages = html_pages(site)
    ids = {name: set(re.findall(r'\bid="([^"]+)"', html)) for name, html in pages.items()}
    broken = []
    for name, html in pages.items():
        if name == "404.html":
            continue  # its links are absolute, for whatever path the server failed on
        for href in re.findall(r'<a [^>]*href="([^"]*)"', html):
            if re.match(r"^[a-z]+:", href) or href.startswith("//"):
                continue  # another site (none is fetched at build time)
            path, _, anchor = href.partition("#")
            if path:
                target = (site / name).parent / path
                target = target / "index.html" if path.endswith("/") or target.is_dir() else target
                key = target.resolve().relative_to(site.resolve()).as_posix() if target.exists() else None
                if key is None:
                    broken.append(f"{name} -> {href}")
                    continue
            else:
                key = name
            if anchor and key.endswith(".html") and anchor not in ids.get(key, set()):
                broken.append(f"{name} -> {href} (no such anchor)")
    assert not broken, "\n".join(sorted(set(broken))[:50])


def test_code_blocks_fit_the_page():
    """Docs code blocks stay within 78 columns (what a 1280 px window shows): no clipped comments."""
    long = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text()
        for block in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
            if block.group(1) == "mermaid":
                continue  # drawn, not shown as code
            start = text[: block.start()].count("\n") + 2
            for offset, line in enumerate(block.group(2).splitlines()):
                if len(line) > 78:
                    long.append(f"{page.relative_to(ROOT)}:{start + offset}: {len(line)} columns")
    assert not long, "\n".join(long)
