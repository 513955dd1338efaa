"""Atomic context updates (issue 14, defect 8): ``ctx.update`` and merge policies in
memory, the merge policies themselves, and the job engine's recording context
(``expects`` / ``rebase``) and memory store (a stale commit is refused)."""

from __future__ import annotations

import asyncio
import pickle
from decimal import Decimal
from typing import Any

import pytest

from flowcraft import (
    Context,
    ContextChanged,
    ContextKey,
    Flow,
    Node,
    NodeArgs,
    ParallelFlow,
    TypedContext,
    context_key,
    lens,
    sleep,
)
from flowcraft.engine import Arrival, Commit, Job, NewRun, job_id
from flowcraft.engine.codec import encode
from flowcraft.engine.recording import RecordingContext
from flowcraft.merge import MergePolicy, add, append, merge_policy, union
from flowcraft.merge import max as max_policy
from flowcraft.testing import MemoryRunStore

from .helpers import run

TRAIL = ContextKey[str]("trail", merge=append)


class Plain(Node):
    """Reads, yields to the other branches, writes back: the read-modify-write that loses updates."""

    async def post(self, args: NodeArgs) -> None:
        trail = await args.ctx.get("trail")
        await sleep(0.01)
        await args.ctx.set("trail", trail + "e")


class Update(Node):
    async def post(self, args: NodeArgs) -> None:
        await sleep(0.01)
        assert (await args.ctx.update("trail", lambda trail: trail + "e")).startswith("se")


class Merge(Node):
    async def post(self, args: NodeArgs) -> None:
        await sleep(0.01)
        await args.ctx.set(TRAIL, "e")


def parallel(kind: type[Node]) -> str:
    ctx = TypedContext({"trail": "s"})
    run(Flow(ParallelFlow([kind() for _ in range(4)])).run(ctx))
    return str(run(ctx.get("trail")))


def test_in_memory_update_and_merge_keep_every_parallel_write() -> None:
    assert parallel(Plain) == "se"  # what a plain get + set does
    assert parallel(Update) == "seeee"
    assert parallel(Merge) == "seeee"


def test_updates_reach_the_event_stream_as_context_changes() -> None:
    seen: list[Any] = []
    ctx = TypedContext({"trail": "s"})
    run(Flow(Update()).run(ctx, on_event=seen.append))
    assert [e.keys_set for e in seen if isinstance(e, ContextChanged)] == [("trail",)]
    assert run(ctx.get("trail")) == "se"


def test_typed_context_update() -> None:
    ctx = TypedContext()
    assert run(ctx.update("n", lambda n: n + 1, 0)) == 1
    assert run(ctx.update(context_key("n", int), lambda n: n * 10)) == 10
    assert run(ctx.update("none", lambda v: v)) is None and run(ctx.has("none"))
    merged = context_key("n", merge=add)  # update ignores the policy: fn returns the whole value
    assert run(ctx.update(merged, lambda n: n + 1)) == 11
    run(lens("n").update(lambda n: (n or 0) + 1)(ctx))
    assert run(ctx.get("n")) == 12


def test_a_set_through_a_key_with_a_policy_merges_and_a_plain_name_overwrites() -> None:
    ctx = TypedContext({"trail": "s"})
    run(ctx.set(TRAIL, "a"))
    run(ctx.set(TRAIL, "b"))
    assert run(ctx.get("trail")) == "sab"
    run(ctx.set("trail", "x"))
    assert run(ctx.get(TRAIL)) == "x"
    run(ctx.delete(TRAIL))
    run(ctx.set(TRAIL, "y"))  # not set: the first value is stored as it is
    assert run(ctx.get("trail")) == "y"


def test_builtin_policies() -> None:
    assert append(None, "s") == "s" and append("s", "e") == "se"
    assert append([1], [2, 3]) == [1, 2, 3] and append([1], (2,)) == [1, 2] and append((1,), (2,)) == (1, 2)
    assert add(None, 2) == 2 and add(1, 2.5) == 3.5 and add(Decimal("1.1"), Decimal("2")) == Decimal("3.1")
    assert max_policy(None, 1) == 1 and max_policy(3, 2) == 3 and max_policy("a", "b") == "b"
    assert union(None, ["a", "a", "b"]) == ["a", "b"]
    assert union(["b"], {"c", "a", "b"}) == ["b", "a", "c"]  # a set's items in sorted order
    assert union(("x",), ["y"]) == ["x", "y"]
    assert union([{"id": 1}], [{"id": 1}, {"id": 2}]) == [{"id": 1}, {"id": 2}]  # unhashable items too
    assert merge_policy("union") is union and merge_policy(append) is append
    reducer = merge_policy(lambda old, new: (old or 0) * new)
    assert isinstance(reducer, MergePolicy) and reducer(3, 4) == 12 and reducer(None, 4) == 0


@pytest.mark.parametrize(
    ("policy", "old", "new", "message"),
    [
        (append, "s", 1, "append joins two str, two lists or two tuples, got str and int"),
        (add, 1, "2", "add sums numbers"),
        (add, "x", 1, "the key holds a str"),
        (add, 1, True, "got bool"),
        (union, None, "ab", "wrap a single item in a list"),
        (max_policy, 1, "a", "not supported"),
    ],
)
def test_values_that_do_not_fit_the_policy_are_refused_naming_the_key(
    policy: MergePolicy, old: Any, new: Any, message: str
) -> None:
    key = context_key("k", merge=policy)
    ctx = TypedContext({} if old is None else {"k": old})
    with pytest.raises(TypeError, match=f"context key 'k' \\(merge={policy.name}\\): .*{message}"):
        run(ctx.set(key, new))


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown merge policy 'concat': use one of add, append, max, union"):
        ContextKey("k", merge="concat")
    with pytest.raises(TypeError, match="merge= takes a policy name, a MergePolicy or a reducer"):
        context_key("k", merge=3)  # type: ignore[arg-type]


def test_keys_with_policies_are_still_their_names() -> None:
    key = context_key("seen", list, merge="union")
    assert key == "seen" and hash(key) == hash("seen") and key.merge is union
    assert repr(key) == "ContextKey('seen', merge=union)" and repr(ContextKey("k")) == "ContextKey('k')"
    assert ContextKey("k").merge is None
    again = pickle.loads(pickle.dumps(key))
    assert again == "seen" and again.merge is union
    assert encode(key) == '"seen"'


# ---- the job engine's side -------------------------------------------------------------------


def test_recording_context_records_what_an_atomic_change_started_from() -> None:
    async def main() -> None:
        ctx = RecordingContext({"trail": '"s"', "n": "1"})
        assert await ctx.update("trail", lambda t: t + "e", "") == "se"
        await ctx.set(TRAIL, "f")
        await ctx.update("fresh", lambda v: v + 1, 0)
        await ctx.set("n", 5)  # a plain set: its value does not depend on the store's
        await ctx.update("n", lambda n: n + 1)
        assert ctx.expects() == {"trail": '"s"', "fresh": ""}
        sets, deletes = ctx.delta()
        assert sets == {"trail": '"sef"', "fresh": "1", "n": "6"} and deletes == []
        # another branch committed meanwhile: replay the recorded changes on the newer values
        assert ctx.rebase({"trail": '"sx"', "fresh": "10"}) == {"trail": '"sxef"', "fresh": "11"}
        assert ctx.expects() == {"trail": '"sx"', "fresh": "10"}
        assert await ctx.get("trail") == "sxef"
        assert ctx.rebase({"trail": ""}) == {"trail": '"ef"'}  # deleted meanwhile: the update's default
        await ctx.delete("fresh")  # a delete overwrites: nothing expected of the key any more
        await ctx.set("trail", "plain")
        assert ctx.expects() == {}

    asyncio.run(main())


def test_the_memory_store_refuses_a_commit_whose_expected_values_changed() -> None:
    async def main() -> None:
        store = MemoryRunStore()
        start = Job(job_id("r", "s", 1), "r", "s", "g")
        await store.create(NewRun("r", "g", "{}", "{}", {"trail": '"s"'}, start))
        await store.commit("r", Commit(start.id, "s", "null", {}, [], [Arrival("a", 1), Arrival("b", 1)], {}))

        def commit(node: str, value: str, expected: str) -> Commit:
            return Commit(job_id("r", node, 1), node, "null", {"trail": value}, [], [], {}, (), {"trail": expected})

        assert (await store.commit("r", commit("a", '"se"', '"s"'))).outcome == "ok"
        refused = await store.commit("r", commit("b", '"se"', '"s"'))
        assert (refused.outcome, dict(refused.current)) == ("conflict", {"trail": '"se"'})
        assert (await store.context("r"))["trail"] == '"se"'
        done = await store.commit("r", commit("b", '"see"', '"se"'))
        assert (done.outcome, done.final) == ("ok", "completed")
        assert (await store.context("r"))["trail"] == '"see"'

    asyncio.run(main())


class DictContext:
    """A context of one's own, written before ``update`` existed."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    async def set(self, key: str, value: Any) -> DictContext:
        self.data[str(key)] = value
        return self

    async def has(self, key: str) -> bool:
        return key in self.data

    async def delete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None

    def keys(self) -> Any:
        return iter(list(self.data))

    def values(self) -> Any:
        return iter(list(self.data.values()))

    def entries(self) -> Any:
        return iter(list(self.data.items()))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


def test_a_context_without_update_is_refused_and_a_subclass_of_the_protocol_inherits_one() -> None:
    with pytest.raises(TypeError, match=r"ctx must be a Context \(get/set/has/delete/update/"):
        run(Flow(Update()).run(DictContext()))  # type: ignore[arg-type]

    class Subclassed(DictContext, Context):
        pass

    ctx = Subclassed()
    ctx.data["trail"] = "s"
    run(Flow(Update()).run(ctx))
    assert ctx.data == {"trail": "se"}
