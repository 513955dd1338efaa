"""MkDocs hook: links from docs pages to repository files outside ``docs/``.

Pages such as ``docs/custom-executors.md`` link to ``../README.md`` so that they work when
read on a code host. MkDocs cannot resolve those (and ``--strict`` fails on them), so this
hook checks that each target exists in the repository — a missing one is a warning, which
``--strict`` turns into an error — and renders the link as the file's path.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.repo_links")

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
