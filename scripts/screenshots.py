"""Screenshots of the built documentation site in headless Chromium (Debian's ``chromium``).

Serves ``site/`` (build it first: ``bash scripts/docs``) on a loopback port, then for
each page:

1. loads it with ``--dump-dom`` and checks that every Mermaid diagram was drawn (Material
   replaces each ``<pre class="mermaid">`` with a ``<div class="mermaid">`` holding the
   SVG; a diagram that failed to parse or a Mermaid that failed to load leaves the
   ``<pre>``) and that every chart image loads;
2. writes ``<out>/<name>.png``, a screenshot of the page's first HEIGHT pixels (headless
   Chromium draws nothing when a URL fragment scrolls the page, so take a taller shot
   instead of a fragment).

Usage: ``bash scripts/screenshots [--out DIR] [--width 1280] [page ...]`` where a
page is ``name=path[@HEIGHT]`` (default: the pages below). Exit 1 when a diagram or a
chart did not render. Look at the PNGs with any image viewer.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
PAGES = {
    "concepts": "concepts/@3000",
    "declarative": "declarative/@3600",
    "distributed": "distributed/@3000",
    "benchmarks": "benchmarks/@3600",
    "api-nodes-and-flows": "api/nodes/@2400",  # the core API page
}


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) for as long as the block runs."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("screenshots: no chromium on PATH (apt-get install chromium)")


def run_chromium(*args: str, width: int, height: int) -> str:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--force-device-scale-factor=1",
        "--run-all-compositor-stages-before-draw",
        f"--window-size={width},{height}",
        "--virtual-time-budget=15000",  # Mermaid and the charts load and draw in this time
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def check(url: str, static_html: str, *, width: int, height: int) -> list[str]:
    """What did not render on the page at ``url`` (empty when everything did)."""
    problems = []
    dom = run_chromium("--dump-dom", url, width=width, height=height)
    expected = len(re.findall(r'<pre class="mermaid"', static_html))
    drawn = len(re.findall(r'<div class="mermaid"', dom))
    if drawn != expected:
        problems.append(f"{drawn} of {expected} Mermaid diagrams drawn")
    for src in re.findall(r'<img[^>]+src="([^"]+\.svg)"', static_html):
        target = (SITE / url.split("/", 3)[3] / src).resolve()
        if not target.is_file():
            problems.append(f"chart {src} is missing from the site")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2400, help="for pages given without @HEIGHT")
    parser.add_argument("pages", nargs="*", help="name=path (relative to the site root)")
    options = parser.parse_args()
    pages = dict(page.split("=", 1) for page in options.pages) if options.pages else PAGES
    if not (SITE / "index.html").is_file():
        sys.exit("screenshots: no site/ (run `bash scripts/docs` first)")
    options.out.mkdir(parents=True, exist_ok=True)
    failed = False
    with serve(SITE) as base:
        for name, page in pages.items():
            path, _, height_text = page.partition("@")
            height = int(height_text or options.height)
            url = base + path
            static = (SITE / path / "index.html").read_text(encoding="utf-8")
            problems = check(url, static, width=options.width, height=height)
            png = options.out / f"{name}.png"
            run_chromium(f"--screenshot={png}", url, width=options.width, height=height)
            status = "ok" if not problems else "; ".join(problems)
            failed = failed or bool(problems)
            print(f"{png.relative_to(ROOT) if png.is_relative_to(ROOT) else png}: {status}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
