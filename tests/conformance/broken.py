"""Five deliberately broken backends: each must fail the conformance kit with the
check that names its fault."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from flowcraft import Flow, InMemoryExecutor, TypedContext
from flowcraft.durable import DurableExecutor
from flowcraft.engine.jobs import Charge, Commit, Completion, Job, JobState, Usage, job_id
from flowcraft.graph import BlueprintExecutor
from flowcraft.testing import MemoryRunStore
from flowcraft.testing.conformance import REGISTRY


class NoDedupeStore(MemoryRunStore):
    """Forgets done records: a redelivered job is committed (and run) again."""

    async def load(self, run_id: str, job_id: str) -> JobState:
        state = await super().load(run_id, job_id)
        return JobState(state.status, state.params, state.context, None, state.events, state.budget, state.usage)

    async def commit(self, run_id: str, commit: Commit) -> Completion:
        run = self._runs.get(run_id)
        if run is not None:
            run.done.pop(commit.job_id, None)
        return await super().commit(run_id, commit)


class NonAtomicStore(MemoryRunStore):
    """Checks for a done record, then yields to the loop (a round trip) before committing."""

    async def commit(self, run_id: str, commit: Commit) -> Completion:
        run = self._runs.get(run_id)
        seen = run is not None and commit.job_id in run.done
        await asyncio.sleep(0.001)
        if run is not None and not seen:
            run.done.pop(commit.job_id, None)
        return await super().commit(run_id, commit)


class LostUpdateStore(MemoryRunStore):
    """Writes back the whole context as the job loaded it, plus the job's changes."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: dict[str, dict[str, str]] = {}

    async def load(self, run_id: str, job_id: str) -> JobState:
        state = await super().load(run_id, job_id)
        self.loaded[job_id] = dict(state.context)
        return state

    async def commit(self, run_id: str, commit: Commit) -> Completion:
        run = self._runs.get(run_id)
        snapshot = self.loaded.pop(commit.job_id, None)
        if run is not None and snapshot is not None:
            run.ctx.clear()
            run.ctx.update(snapshot)
        return await super().commit(run_id, commit)


class IgnoresExpectsStore(MemoryRunStore):
    """Applies every commit, also one whose atomic updates started from a stale value."""

    async def commit(self, run_id: str, commit: Commit) -> Completion:
        return await super().commit(run_id, dataclasses.replace(commit, expects={}))


class ForgetfulUsage:
    """A store whose attempt (node-run) counter lives in the process, not in the store:
    each restart (a new instance over the same state) starts counting from zero."""

    def __init__(self, shared: MemoryRunStore) -> None:
        self._shared = shared
        self._used: dict[tuple[str, str], float] = {}
        self._keys: set[tuple[str, str, str]] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shared, name)

    async def charge(self, run_id: str, charge: Charge) -> Usage:
        key = (run_id, charge.kind, charge.key or "")
        used = self._used.get(key[:2], 0.0)
        if charge.key is not None and key in self._keys:
            return Usage("ok", used)
        self._keys.add(key)
        used = self._used[key[:2]] = used + charge.amount
        return Usage("ok", used)

    async def aclose(self) -> None:
        return None


class FirstArrivalExecutor(InMemoryExecutor):
    """Walks each parallel branch on its own, as Flowcraft TS 1.x does in memory: a join
    runs when the first branch reaches it (and again for each later one)."""

    async def run_parallel(self, block: Any, branches: Any, args: Any, limit: int | None = None) -> list[Any]:
        return list(await asyncio.gather(*(self.run_subflow(Flow(branch), args) for branch in branches)))


class NoTakeoverExecutor(DurableExecutor):
    """Never takes over a run whose process died: a restarted process leaves it pending."""

    async def recover(self) -> list[str]:
        return []


class ReplayingExecutor(DurableExecutor):
    """Recovers a run by replaying it from its first node, as if nothing had been committed."""

    async def recover(self) -> list[str]:
        taken = await super().recover()
        for run_id in taken:
            pending = await self.durable_store.pending_jobs(run_id)
            if pending:  # the first node again, under its next visit (so the store does not refuse it)
                await self.queue.add([Job(job_id(run_id, "a", 2), run_id, "a", pending[0].graph)])
        return taken


def no_takeover(where: str) -> NoTakeoverExecutor:
    """An opener for ProcessHarness."""
    return NoTakeoverExecutor(where, registry=REGISTRY)


def replaying(where: str) -> ReplayingExecutor:
    """An opener for ProcessHarness."""
    return ReplayingExecutor(where, registry=REGISTRY)


class NeverDies(InMemoryExecutor):
    """Runs in memory and has no fault points: armed, it finishes the run instead of dying."""

    async def start(self, blueprint: Any, *, run_id: str) -> Any:
        flow = BlueprintExecutor(blueprint, REGISTRY).flow
        outcome = await flow.run(TypedContext(), executor=self)

        class Done:
            async def result(self) -> Any:
                return outcome

        return Done()


def never_dies(where: str) -> NeverDies:
    """An opener for ProcessHarness."""
    return NeverDies()
