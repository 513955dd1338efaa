"""Packaging: what the sdist holds, the license, the version (issue 10 items 17 and 18)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def build_sdist(project: Path, out: Path) -> list[str]:
    """Build the sdist of ``project`` with the build backend and list its members."""
    pytest.importorskip("hatchling", reason="hatchling (the build backend) is in the dev extra")
    result = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(out)],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (archive,) = out.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        return [name.split("/", 1)[1] for name in tar.getnames() if "/" in name]


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """The project's packaging files and sources, plus the leftovers a test run makes."""
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md", ".gitignore", "LICENSE", "CHANGELOG.md"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, copy / name)
    shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for leftover in (".hypothesis/examples/0a1b", ".pytest_cache/v/cache/lastfailed", ".coverage.host.1"):
        path = copy / leftover
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    return copy


@pytest.mark.parametrize("with_gitignore", [True, False], ids=["gitignore", "no-gitignore"])
def test_sdist_leaves_out_test_run_leftovers(project_copy: Path, tmp_path: Path, with_gitignore: bool) -> None:
    if not with_gitignore:  # an export without .gitignore: pyproject's excludes alone must do
        (project_copy / ".gitignore").unlink()
    names = build_sdist(project_copy, tmp_path / "dist")
    assert "src/flowcraft/__init__.py" in names
    assert [n for n in names if n.startswith((".hypothesis", ".pytest_cache", ".coverage"))] == []


def test_gitignore_lists_hypothesis() -> None:
    assert ".hypothesis/" in (ROOT / ".gitignore").read_text().splitlines()
