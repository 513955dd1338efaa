"""Packaging: what the sdist holds, the license, the version (issue 10 items 17 and 18)."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

import flowcraft

ROOT = Path(__file__).resolve().parents[1]


def build(project: Path, out: Path, target: str) -> Path:
    """Build ``target`` ("sdist" or "wheel") of ``project`` with the build backend (in the
    dev extra: a missing backend fails the test) and return the archive."""
    result = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", target, "-d", str(out)],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (archive,) = out.glob("*.tar.gz" if target == "sdist" else "*.whl")
    return archive


def build_sdist(project: Path, out: Path) -> list[str]:
    """Build the sdist of ``project`` and list its members."""
    with tarfile.open(build(project, out, "sdist")) as tar:
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


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def build_wheel_metadata(project: Path, out: Path) -> str:
    with zipfile.ZipFile(build(project, out, "wheel")) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
        return archive.read(metadata).decode()


def test_license_file_is_mit_and_shipped(project_copy: Path, tmp_path: Path) -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 The Flowcraft for Python authors" in text
    assert pyproject()["project"]["license"] == "MIT"
    metadata = build_wheel_metadata(project_copy, tmp_path / "wheel")
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "License-File: LICENSE" in metadata.splitlines()
    names = build_sdist(project_copy, tmp_path / "sdist")
    assert "LICENSE" in names and "CHANGELOG.md" in names


def test_version_is_written_once(project_copy: Path, tmp_path: Path) -> None:
    project = pyproject()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert pyproject()["tool"]["hatch"]["version"]["path"] == "src/flowcraft/__init__.py"
    metadata = build_wheel_metadata(project_copy, tmp_path / "wheel")
    assert f"Version: {flowcraft.__version__}" in metadata.splitlines()
    assert importlib.metadata.version("flowcraft-py") == flowcraft.__version__


def test_changelog_has_unreleased_and_current_version() -> None:
    headings = [line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("## ")]
    assert headings[0] == "## [Unreleased]"
    assert any(h.startswith(f"## [{flowcraft.__version__}]") for h in headings), headings


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_lint_and_type_tools_are_pinned(tool: str) -> None:
    pins = [r for r in pyproject()["project"]["optional-dependencies"]["dev"] if re.match(rf"{tool}\b", r)]
    assert len(pins) == 1 and re.fullmatch(rf"{tool}==[0-9][0-9.]*", pins[0]), pins
    assert importlib.metadata.version(tool) == pins[0].split("==")[1]  # scripts/check runs the pinned one
