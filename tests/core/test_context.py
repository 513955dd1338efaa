"""Context: TypedContext, ContextKey / context_key, lens, compose_context."""

from __future__ import annotations

import copy
import pickle

import pytest

from flowcraft import Context, ContextKey, TypedContext, compose_context, context_key, lens

from .helpers import run


def test_typed_context_api():
    ctx = TypedContext({"a": 1})
    assert isinstance(ctx, Context)
    assert run(ctx.get("a")) == 1
    assert run(ctx.get("missing")) is None
    assert run(ctx.get("missing", "d")) == "d"
    assert run(ctx.set("b", 2)) is ctx
    assert run(ctx.has("b"))
    assert run(ctx.delete("b")) is True
    assert run(ctx.delete("b")) is False
    assert not run(ctx.has("b"))
    run(ctx.set("c", None))
    assert run(ctx.has("c"))
    assert list(ctx.keys()) == ["a", "c"]
    assert list(ctx.values()) == [1, None]
    assert list(ctx.entries()) == [("a", 1), ("c", None)]


def test_typed_context_initial_pairs_and_keys():
    key = context_key("k")
    ctx = TypedContext([("x", 1), (key, 2)])
    assert ctx.to_dict() == {"x": 1, "k": 2}
    assert all(type(k) is str for k in ctx.to_dict())


def test_iterators_are_snapshots():
    ctx = TypedContext({"a": 1})
    keys = ctx.keys()
    run(ctx.set("b", 2))
    assert list(keys) == ["a"]


def test_to_dict_is_a_copy():
    ctx = TypedContext({"a": 1})
    snapshot = ctx.to_dict()
    snapshot["a"] = 2
    assert run(ctx.get("a")) == 1


def test_context_keys_are_named_and_interchangeable_with_strings():
    a1 = context_key("user", dict)
    a2 = ContextKey("user")
    assert a1.name == "user"
    assert a1 == a2 == "user"
    assert "ContextKey('user')" == repr(a1)
    ctx = TypedContext()
    run(ctx.set(a1, {"n": 1}))
    assert run(ctx.get(a2)) == {"n": 1}
    assert run(ctx.get("user")) == {"n": 1}
    assert ctx.to_dict() == {"user": {"n": 1}}
    assert type(next(iter(ctx.keys()))) is str


def test_context_keys_survive_pickle_and_copy():
    key = context_key("token")
    for clone in (pickle.loads(pickle.dumps(key)), copy.copy(key), copy.deepcopy(key)):
        assert clone == key
        assert clone.name == "token"


@pytest.mark.parametrize("bad", ["", None, 3])
def test_context_key_needs_a_name(bad):
    with pytest.raises(ValueError, match="non-empty string name"):
        context_key(bad)


def test_non_string_keys_are_rejected():
    with pytest.raises(TypeError, match="context keys must be str or ContextKey"):
        TypedContext({1: "x"})
    with pytest.raises(TypeError, match="context keys must be str or ContextKey"):
        run(TypedContext().set(3, "x"))


def test_lens_get_set_update_and_compose():
    count = lens(context_key("count", int))
    name = lens("name")
    ctx = TypedContext()
    transform = compose_context(count.set(1), count.update(lambda n: (n or 0) + 5), name.set("x"))
    assert run(transform(ctx)) is ctx
    assert run(count.get(ctx)) == 6
    assert run(name.get(ctx)) == "x"
    assert run(lens("missing").get(ctx)) is None
    assert run(compose_context()(ctx)) is ctx
