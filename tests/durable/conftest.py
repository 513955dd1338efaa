"""Fixtures for the durable suite: a fresh SQLite store file per test, and the graphs
and nodes of the distributed suite (``dist_nodes``), which durable runs share."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DISTRIBUTED = HERE.parent / "distributed"

for folder in (HERE, DISTRIBUTED):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    """A store file that does not exist yet."""
    return str(tmp_path / "runs.db")
