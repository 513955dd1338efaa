"""The durable crash suite on Redis with worker processes: the 20-node flow of
tests/durable (a loop, two parallel blocks, a join) with a worker SIGKILLed before or
after a job's commit and mid-block; another worker takes the stalled job over, the run
ends with the same context as an uninterrupted one, and the ledger keyed by
``args.idempotency_key`` holds each node visit exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .conftest import Space

DURABLE = Path(__file__).resolve().parent.parent / "durable"
if str(DURABLE) not in sys.path:
    sys.path.insert(0, str(DURABLE))

import durable_nodes  # noqa: E402  (lives in tests/durable)

CASES = [
    (point, node) for node in ("start", "loop", "fan", "par", "end") for point in ("before_complete", "after_complete")
]
CASES.append(("during_node", "fan"))


def ledger_keys(folder: Path) -> set[str]:
    return {durable_nodes.key_of(name) for name in os.listdir(folder / "ledger")}


def run_once(space: Space, folder: Path, crash: str | None) -> tuple[Any, dict[str, Any]]:
    (folder / "ledger").mkdir(parents=True)

    async def main() -> tuple[Any, dict[str, Any]]:
        async with space.executor() as executor:
            if crash is None:
                space.start_workers(1)
                handle = await executor.start("durable_nodes:make_twenty", run_id="r")
            else:
                victim = space.start_worker(crash_at=crash)
                await asyncio.to_thread(victim.wait_ready)
                handle = await executor.start("durable_nodes:make_twenty", run_id="r")
                code = await asyncio.to_thread(victim.wait_exit, 30)
                assert code == -signal.SIGKILL, victim.output()
                await asyncio.to_thread(space.start_workers, 1)
            return await handle.result(timeout=40), await handle.context()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def reference(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[Any, dict[str, Any]], set[str]]:
    """An uninterrupted run: its outcome and the ledger keys it applied."""
    folder = tmp_path_factory.mktemp("reference")
    saved = dict(os.environ)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(DURABLE), os.environ.get("PYTHONPATH", "")])
    os.environ[durable_nodes.LEDGER_ENV] = str(folder)
    clean = Space(redis_url)
    try:
        outcome = run_once(clean, folder, None)
    finally:
        clean.close()
        os.environ.clear()
        os.environ.update(saved)
    return outcome, ledger_keys(folder)


@pytest.fixture
def durable_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(DURABLE), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv(durable_nodes.LEDGER_ENV, str(tmp_path))
    return tmp_path


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize(("point", "node"), CASES, ids=[f"{p}:{n}" for p, n in CASES])
def test_kill_9_of_a_worker_then_another_finishes(
    space: Space,
    durable_env: Path,
    reference: tuple[tuple[Any, dict[str, Any]], set[str]],
    point: str,
    node: str,
) -> None:
    expected, visits = reference
    recovered = run_once(space, durable_env, f"{point}:{node}")

    assert recovered == expected and expected[0] == "finished"
    assert ledger_keys(durable_env) == visits  # each visit took effect once
    attempts = Counter((durable_env / "attempts.log").read_text().split())
    repeated = {key for key, count in attempts.items() if count > 1}
    assert {key.split("/")[0] for key in repeated} <= {f"r:{node}:1"}, attempts
