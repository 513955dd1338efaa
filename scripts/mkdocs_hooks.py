"""MkDocs hooks: Mermaid served from the site itself, and links to repository files.

**Mermaid, offline.** ``mermaid`` fences (``pymdownx.superfences``, see ``mkdocs.yml``) are
drawn in the reader's browser by Material for MkDocs, which loads Mermaid from a CDN unless
a ``mermaid`` global already exists. So the build vendors Mermaid from the npm registry:
``npm pack mermaid@MERMAID_VERSION`` once (cached in ``.cache/docs/``; the tarball must
match ``MERMAID_INTEGRITY``), then ``dist/mermaid.min.js`` is added to the site as
``assets/javascripts/mermaid.min.js`` and listed in ``extra_javascript``. A built page
never refers to a CDN; ``tests/test_docs_site.py`` checks it.

**Example sources.** Each folder of ``examples/`` (and ``examples/quickstart.py``) gets a
generated page, ``examples/<name>.md``, listing its source files, so the Examples page
can link to the code it describes (``mkdocs.yml`` lists these pages in the nav).

**Links out of ``docs/``.** Pages such as ``docs/custom-executors.md`` link to ``../README.md`` so that they work when
read on a code host. MkDocs cannot resolve those (and ``--strict`` fails on them), so this
hook checks that each target exists in the repository — a missing one is a warning, which
``--strict`` turns into an error — and renders the link as the file's path.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.repo_links")

ROOT = Path(__file__).resolve().parents[1]
MERMAID_VERSION = "11.17.2"
# `npm view mermaid@11.17.2 dist.integrity`: the tarball's SHA-512, as npm records it.
MERMAID_INTEGRITY = "sha512-V6K3C8EBdEsPFZXSKMJe6ppQOENxuHARr9GvHX4hh47lAbhMRD9qf4oEK7LoaRQxULMa80/qt5gHO73aCleBBg=="
MERMAID_SITE_PATH = "assets/javascripts/mermaid.min.js"


def vendored_mermaid(cache: Path = ROOT / ".cache" / "docs") -> Path:
    """The path of Mermaid's ``mermaid.min.js``, fetched with ``npm pack`` on first use."""
    target = cache / f"mermaid-{MERMAID_VERSION}.min.js"
    if target.is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            f"the docs need Mermaid {MERMAID_VERSION} from the npm registry and `npm` is not installed: "
            "apt-get install npm (or put mermaid.min.js at " + str(target) + ")"
        )
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        subprocess.run(
            [npm, "pack", f"mermaid@{MERMAID_VERSION}", "--pack-destination", tmp, "--silent"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        tarball = next(Path(tmp).glob("mermaid-*.tgz"))
        digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
        if digest != MERMAID_INTEGRITY:
            raise RuntimeError(f"{tarball.name}: integrity {digest} is not the pinned {MERMAID_INTEGRITY}")
        with tarfile.open(tarball) as tar:
            member = tar.extractfile("package/dist/mermaid.min.js")
            assert member is not None
            partial = Path(tmp) / "mermaid.min.js"
            partial.write_bytes(member.read())
        os.replace(partial, target)
    return target


def on_config(config: Any, **_: Any) -> Any:
    """List the vendored Mermaid in ``extra_javascript`` (Material then uses it, not a CDN)."""
    config["extra_javascript"].append(MERMAID_SITE_PATH)
    return config


SOURCE_LANGUAGES = {".py": "python", ".json": "json", ".txt": "text"}


def example_pages(examples: Path = ROOT / "examples") -> dict[str, str]:
    """``{"examples/<name>.md": markdown}``: one page of source files per example."""
    pages = {"examples/quickstart.md": _source_page("examples/quickstart.py", [examples / "quickstart.py"])}
    for folder in sorted(examples.iterdir()):
        if folder.is_dir() and not folder.name.startswith(("_", ".")) and folder.name != "__pycache__":
            sources = [
                path
                for path in sorted(folder.rglob("*"))
                if path.suffix in (".py", ".json")
                and path.name != "__init__.py"
                and "__pycache__" not in path.parts
                and path.stat().st_size < 20_000
            ]
            pages[f"examples/{folder.name}.md"] = _source_page(f"examples/{folder.name}/", sources)
    return pages


def _source_page(title: str, sources: list[Path]) -> str:
    lines = [f"# {title}", "", "The source, as in the repository. [All examples](../examples.md).", ""]
    for path in sources:
        language = SOURCE_LANGUAGES.get(path.suffix, "text")
        lines += [f"## `{path.relative_to(ROOT).as_posix()}`", "", f"````{language}", path.read_text().rstrip(), "````", ""]
    return "\n".join(lines)


def on_files(files: Any, config: Any, **_: Any) -> Any:
    """Add the vendored ``mermaid.min.js`` and the example source pages to the site."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, MERMAID_SITE_PATH, abs_src_path=str(vendored_mermaid())))
    for src_uri, content in example_pages().items():
        files.append(File.generated(config, src_uri, content=content))
    return files

_LINK = re.compile(r"\[([^\]]+)\]\((\.\./[^)\s#]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **_: Any) -> str:
    """Replace ``[text](../path)`` links that leave ``docs/`` with ``text (`path`)``."""
    docs_dir = Path(config["docs_dir"]).resolve()
    root = docs_dir.parent
    page_dir = (docs_dir / page.file.src_path).parent

    def replace(match: re.Match[str]) -> str:
        text, target = match.group(1), match.group(2)
        resolved = (page_dir / target).resolve()
        if not resolved.is_relative_to(root) or not resolved.exists():
            log.warning("%s links to %r, which is not a file of the repository", page.file.src_path, target)
            return text
        if resolved.is_relative_to(docs_dir):
            return match.group(0)  # MkDocs resolves links inside docs/ itself
        return f"{text} (`{resolved.relative_to(root).as_posix()}`)"

    return _LINK.sub(replace, markdown)
