"""The kit as a pytest plugin: the ``flowcraft_conformance`` fixture (loaded by
tests/conftest.py as users load it) runs the kit from a sync test and fails the test
naming the checks that failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowcraft import InMemoryExecutor
from flowcraft.engine import MemoryRunStore
from flowcraft.testing.conformance import ProcessHarness
from flowcraft.testing.pytest_plugin import Conformance

from .broken import FirstArrivalExecutor, NoDedupeStore


def test_the_fixture_runs_the_kit_over_an_executor_and_a_store(flowcraft_conformance: Conformance) -> None:
    report = flowcraft_conformance.executor(InMemoryExecutor)
    assert report.passed and any(r.name == "fan-in-exactly-once" for r in report.results)
    shared = MemoryRunStore()  # "restarting" a memory store means opening the same one again
    assert flowcraft_conformance.store(lambda: shared).passed


def test_a_broken_executor_or_store_fails_the_test_naming_the_check(flowcraft_conformance: Conformance) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"FAIL fan-in-exactly-once"):
        flowcraft_conformance.executor(FirstArrivalExecutor)
    with pytest.raises(pytest.fail.Exception, match=r"FAIL commit-dedupe"):
        flowcraft_conformance.store(NoDedupeStore, crash=False)


def test_the_fixture_runs_the_crash_checks(flowcraft_conformance: Conformance, tmp_path: Path) -> None:
    good = ProcessHarness("flowcraft.testing.conformance:durable_executor", str(tmp_path / "good.db"))
    report = flowcraft_conformance.executor(
        lambda: None, capabilities={"crash"}, crash=good, crash_points=["during_node"]
    )
    assert [r.name for r in report.results] == ["crash:during_node"]
    replaying = ProcessHarness("tests.conformance.broken:replaying", str(tmp_path / "bad.db"))
    with pytest.raises(pytest.fail.Exception, match=r"FAIL crash:after_commit: after a kill at after_commit"):
        flowcraft_conformance.executor(
            lambda: None, capabilities={"crash"}, crash=replaying, crash_points=["after_commit"]
        )
