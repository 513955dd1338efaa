"""The conformance kit as a pytest plugin: add
``pytest_plugins = ["flowcraft.testing.pytest_plugin"]`` to your top-level
``conftest.py`` (opt-in, so that it loads after coverage measurement has started).

It adds one fixture, ``flowcraft_conformance``, which runs the kit of
[`flowcraft.testing.conformance`][flowcraft.testing.conformance] from a plain (sync)
test and fails it naming every check that did not pass.

Examples:
    ```python
    def test_my_executor_conforms(flowcraft_conformance):
        flowcraft_conformance.executor(MyExecutor, capabilities={"graphs", "errors"})

    def test_my_store_conforms(flowcraft_conformance, tmp_path):
        flowcraft_conformance.store(lambda: MyStore(tmp_path / "runs"))
    ```

Nothing heavy is imported until the fixture is used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .crash import CrashHarness

__all__ = ["Conformance", "flowcraft_conformance"]


class Conformance:
    """What the ``flowcraft_conformance`` fixture gives a test: the kit's two entry points,
    run to the end; a failure fails the test with the report."""

    def executor(
        self,
        factory: Callable[[], Any],
        *,
        capabilities: Iterable[str] | None = None,
        graphs: Iterable[str] | None = None,
        crash: CrashHarness | None = None,
        crash_points: Iterable[str] | None = None,
    ) -> Any:
        """Run ``check_executor(factory, ...)``; the report (the test fails if a check failed).

        ``crash`` is a [`CrashHarness`][flowcraft.testing.conformance.CrashHarness] for the
        kill-and-restart checks (``crash_points``: where; default all)."""
        # local import: the kit (and the engine it drives) loads only when a test uses it
        from .conformance import CRASH_POINTS, check_executor

        points = CRASH_POINTS if crash_points is None else tuple(crash_points)
        checking = check_executor(
            factory, capabilities=capabilities, graphs=graphs, crash=crash, crash_points=points, raise_on_failure=False
        )
        return self._run(checking)

    def store(self, factory: Callable[[], Any], *, crash: bool = True) -> Any:
        """Run ``check_store(factory, crash=...)``; the report (the test fails if a check failed)."""
        # local import: the kit (and the engine it drives) loads only when a test uses it
        from .conformance import check_store

        return self._run(check_store(factory, crash=crash, raise_on_failure=False))

    @staticmethod
    def _run(coroutine: Any) -> Any:
        report = asyncio.run(coroutine)
        if not report.passed:
            pytest.fail(str(report), pytrace=False)
        return report


@pytest.fixture
def flowcraft_conformance() -> Conformance:
    """The conformance kit for this test (see the module docstring)."""
    return Conformance()
