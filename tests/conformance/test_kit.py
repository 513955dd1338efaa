"""The conformance kit over our own executors and stores (in-memory, dry run, blueprint,
the docs' PathDryRunExecutor, the job engine on MemoryRunStore, durable on SQLite), and
over five broken backends, each failing with the check that names its fault."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from flowcraft import DryRunExecutor, InMemoryExecutor
from flowcraft.durable import DurableExecutor, SqliteRunStore
from flowcraft.engine import JobExecutor, JobWorker
from flowcraft.graph import BlueprintExecutor
from flowcraft.testing import MemoryJobQueue, MemoryRunStore
from flowcraft.testing.conformance import (
    CRASH_POINTS,
    REGISTRY,
    ConformanceError,
    ConformanceReport,
    CrashHarness,
    ProcessHarness,
    check_executor,
    check_store,
)

from .broken import (
    FirstArrivalExecutor,
    ForgetfulUsage,
    IgnoresExpectsStore,
    LostUpdateStore,
    NoDedupeStore,
    NonAtomicStore,
)

BROKEN = "tests.conformance.broken"

DOC = Path(__file__).resolve().parents[2] / "docs" / "custom-executors.md"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.mark.timeout(30)
def test_in_memory_executor() -> None:
    report = run(check_executor(InMemoryExecutor))
    assert report.passed and "golden:fan-in" in [r.name for r in report.results]


@pytest.mark.timeout(30)
def test_shipped_dry_run_executor_passes_what_applies() -> None:
    assert run(check_executor(DryRunExecutor, capabilities={"graphs"})).passed


class HydratingRunner:
    """Runs each golden flow by hydrating its blueprint in a BlueprintExecutor."""

    async def run(self, flow: Any, context: Any = None, options: Any = None) -> Any:
        executor = BlueprintExecutor(flow.blueprint, REGISTRY)
        return await executor.run(executor.flow, context, options)


@pytest.mark.timeout(30)
def test_blueprint_executor() -> None:
    assert run(check_executor(HydratingRunner)).passed


@pytest.mark.timeout(30)
def test_the_docs_dry_run_executor_passes_what_applies() -> None:
    namespace: dict[str, object] = {"__name__": "docs_custom_executors"}
    block = next(b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL) if "class Path" in b)
    exec(compile(block, str(DOC), "exec"), namespace)  # the doc's own code
    factory = namespace["PathDryRunExecutor"]
    assert run(check_executor(factory, capabilities={"graphs"})).passed  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def job_engine(store: Any = None) -> AsyncIterator[JobExecutor]:
    store = store or MemoryRunStore()
    queue = MemoryJobQueue()
    worker = JobWorker(REGISTRY, store=store, queue=queue, concurrency=4)
    async with worker.running(), JobExecutor(store=store, queue=queue, poll_interval=0.05) as executor:
        yield executor


@pytest.mark.timeout(60)
def test_job_engine_on_the_memory_store() -> None:
    assert run(check_executor(job_engine)).passed
    store = MemoryRunStore()
    report = run(check_store(lambda: store))
    assert report.passed and "crash:after_commit" in [r.name for r in report.results]


@pytest.mark.timeout(120)
def test_durable_executor_and_sqlite_store(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    harness = ProcessHarness("flowcraft.testing.conformance:durable_executor", str(tmp_path / "crash.db"))
    assert isinstance(harness, CrashHarness)
    report = run(check_executor(lambda: DurableExecutor(db, registry=REGISTRY), crash=harness))
    assert report.passed, report
    assert [r.name for r in report.results if r.name.startswith("crash:")] == [f"crash:{p}" for p in CRASH_POINTS]
    report = run(check_store(lambda: SqliteRunStore(str(tmp_path / "store.db"))))
    assert report.passed and "crash:after_commit" in [r.name for r in report.results]


def failed(report_or_error: ConformanceReport | ConformanceError) -> list[str]:
    report = report_or_error.report if isinstance(report_or_error, ConformanceError) else report_or_error
    return report.failed


@pytest.mark.timeout(60)
def test_no_dedupe_of_redelivered_jobs_fails_commit_dedupe() -> None:
    store = NoDedupeStore()
    with pytest.raises(ConformanceError, match=r"FAIL commit-dedupe: a redelivered job's second commit") as caught:
        run(check_store(lambda: store))
    assert "crash:after_commit" in failed(caught.value)


@pytest.mark.timeout(60)
def test_a_non_atomic_commit_fails_commit_atomic() -> None:
    store = NonAtomicStore()
    with pytest.raises(ConformanceError, match=r"FAIL commit-atomic: .* the commit is not atomic") as caught:
        run(check_store(lambda: store, engine=False))
    assert failed(caught.value) == ["commit-atomic"]


@pytest.mark.timeout(60)
def test_a_join_firing_on_first_arrival_fails_fan_in() -> None:
    with pytest.raises(ConformanceError, match=r"FAIL fan-in-exactly-once: the join ran 4 time") as caught:
        run(check_executor(FirstArrivalExecutor))
    assert "golden:fan-in" in failed(caught.value) and "golden:linear" not in failed(caught.value)


@pytest.mark.timeout(60)
def test_writing_the_whole_context_back_fails_no_lost_update() -> None:
    store = LostUpdateStore()
    with pytest.raises(ConformanceError, match=r"FAIL no-lost-update: two branches wrote 'a' and 'b'") as caught:
        run(check_store(lambda: store, engine=False))
    assert failed(caught.value) == ["no-lost-update"]


@pytest.mark.timeout(60)
def test_ignoring_commit_expects_fails_commit_expects() -> None:
    store = IgnoresExpectsStore()
    with pytest.raises(ConformanceError, match=r"FAIL commit-expects: .* an atomic update would be lost") as caught:
        run(check_store(lambda: store, engine=False))
    assert failed(caught.value) == ["commit-expects"]


@pytest.mark.timeout(60)
def test_an_attempt_counter_reset_on_restart_fails_usage_survives_restart() -> None:
    shared = MemoryRunStore()
    with pytest.raises(ConformanceError, match=r"FAIL usage-survives-restart: .*did not survive the restart") as caught:
        run(check_store(lambda: ForgetfulUsage(shared), engine=False))
    assert failed(caught.value) == ["usage-survives-restart"]


def test_unknown_capabilities_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown capabilities \['teleport'\]"):
        run(check_executor(InMemoryExecutor, capabilities={"teleport"}))


@pytest.mark.timeout(60)
def test_recovery_that_replays_committed_nodes_fails_every_crash_check(tmp_path: Path) -> None:
    harness = ProcessHarness(f"{BROKEN}:replaying", str(tmp_path / "runs.db"))
    with pytest.raises(
        ConformanceError, match=r"FAIL crash:after_commit: after a kill at after_commit, the ledger"
    ) as caught:
        run(check_executor(lambda: None, crash=harness, capabilities={"crash"}))
    assert failed(caught.value) == [f"crash:{p}" for p in CRASH_POINTS]
    assert "a node visit took effect twice" in str(caught.value)


@pytest.mark.timeout(60)
def test_an_executor_that_does_not_take_over_a_dead_process_s_run_fails_crash(tmp_path: Path) -> None:
    harness = ProcessHarness(f"{BROKEN}:no_takeover", str(tmp_path / "runs.db"))
    report = run(
        check_executor(
            lambda: None,
            capabilities={"crash"},
            crash=harness,
            crash_points=["before_commit"],
            crash_timeout=5,
            raise_on_failure=False,
        )
    )
    assert report.failed == ["crash:before_commit"] and len(report.results) == 1
    assert "a restarted executor did not finish the run within 5 s: it did not recover the run" in str(report)


@pytest.mark.timeout(60)
def test_an_executor_that_ignores_the_fault_point_fails_crash(tmp_path: Path) -> None:
    """An in-memory runner under the durable harness's name: the child finishes the run
    instead of dying, and the kit says so."""
    harness = ProcessHarness(f"{BROKEN}:never_dies", str(tmp_path / "runs.db"))
    report = run(
        check_executor(
            lambda: None, capabilities={"crash"}, crash=harness, crash_points=["after_commit"], raise_on_failure=False
        )
    )
    assert report.failed == ["crash:after_commit"] and len(report.results) == 1
    assert "was not killed at after_commit (exit code 0)" in str(report)


def test_crash_without_a_harness_or_at_an_unknown_point_is_refused() -> None:
    with pytest.raises(ValueError, match=r"the 'crash' capability needs a harness .* crash=ProcessHarness"):
        run(check_executor(InMemoryExecutor, capabilities={"graphs", "crash"}))
    harness = ProcessHarness("flowcraft.testing.conformance:durable_executor", "unused.db")
    with pytest.raises(ValueError, match=r"unknown fault points \['mid_air'\]"):
        run(check_executor(InMemoryExecutor, crash=harness, crash_points=["mid_air"]))
