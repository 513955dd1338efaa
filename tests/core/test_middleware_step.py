"""The innermost step of a middleware chain (`in_memory._run_lifecycle`): a plain node's
steps run there from its walk plan, as the walk and batch items run them inline and as
``Node.run_lifecycle`` does. The four copies must agree; these tests hold them together."""

from __future__ import annotations

import itertools

import pytest

from flowcraft import (
    DEFAULT_ACTION,
    AbortController,
    AbortError,
    BatchFlow,
    Flow,
    Node,
    NodeArgs,
    NullLogger,
    TypedContext,
)

from .helpers import Step, run

MODES = ("-", "sync", "async")  # a phase left out, a plain def, an async def


def probe(modes, fail=None, fallback=False):
    """A node whose phases (``modes`` for prep, exec, post) log what they saw and return
    ``p``/``e``/``act``; the phase named ``fail`` raises instead."""
    namespace = {}
    for phase, mode in zip(("prep", "exec", "post"), modes):
        if mode == "-":
            continue

        def body(self, args, phase=phase):
            self.log.append((phase, args.prep_res, args.exec_res))
            if phase == fail:
                raise ValueError(f"{phase} broke")
            return {"prep": "p", "exec": "e", "post": "act"}[phase]

        if mode == "async":

            async def async_body(self, args, body=body):
                return body(self, args)

            namespace[phase] = async_body
        else:
            namespace[phase] = body
    if fallback:

        def exec_fallback(self, args):
            self.log.append(("fallback", str(args.error)))
            return "fb"

        namespace["exec_fallback"] = exec_fallback
    node = type("Probe", (Node,), namespace)().with_id("probe")
    node.log = []
    return node


async def noop(args, call_next):
    return await call_next(args)


def fresh_args(node):
    return NodeArgs(TypedContext(), {}, AbortController().signal, NullLogger(), node=node)


class OneItem(BatchFlow):
    def prep(self, args):
        return [{"item": 1}]


PATHS = {
    "walk": lambda node: Flow(node).run(TypedContext()),
    "walk + middleware": lambda node: Flow(node).use(noop).run(TypedContext()),
    "walk + 3 middleware": lambda node: Flow(node).use(noop).use(noop).use(noop).run(TypedContext()),
    "run_lifecycle": lambda node: node.run_lifecycle(fresh_args(node)),
    "batch item": lambda node: Flow(OneItem(node)).run(TypedContext()),
    "batch item + middleware": lambda node: Flow(OneItem(node)).use(noop).run(TypedContext()),
}


def outcome(path, node):
    try:
        result = run(PATHS[path](node))
    except Exception as error:
        result = (type(error).__name__, getattr(error, "phase", None), str(error))
    if path.startswith("batch"):  # a batch's own action is not the item's
        result = result if isinstance(result, tuple) else None
    return result, node.log


CASES = [(modes, None, False) for modes in itertools.product(MODES, repeat=3)] + [
    (modes, fail, fallback)
    for modes in (("sync", "sync", "sync"), ("async", "async", "async"), ("-", "async", "-"))
    for fail in ("prep", "exec", "post")
    for fallback in (False, True)
    if modes[("prep", "exec", "post").index(fail)] != "-"
]


@pytest.mark.parametrize(("modes", "fail", "fallback"), CASES)
def test_every_copy_of_the_lifecycle_agrees(modes, fail, fallback):
    expected = {}
    for path in PATHS:
        expected[path] = outcome(path, probe(modes, fail, fallback))
    walk = expected["walk"]
    for path in ("walk + middleware", "walk + 3 middleware", "run_lifecycle"):
        assert expected[path] == walk, path
    for path in ("batch item", "batch item + middleware"):
        assert expected[path][1] == walk[1], path
        if isinstance(walk[0], tuple):  # the same error, naming the node and its phase
            assert expected[path][0] == walk[0], path
    if fail is None:
        assert walk[0] == ("act" if modes[2] != "-" else DEFAULT_ACTION)


def test_the_step_resets_what_a_middleware_copied_into_args_for_a_node_without_exec():
    node = probe(("-", "-", "sync"))

    async def stale(args, call_next):
        return await call_next(args.replace(prep_res="old", exec_res="old"))

    assert run(Flow(node).use(stale).run(TypedContext())) == "act"
    assert node.log == [("post", "old", None)]  # no prep: its field as given; no exec: None


def test_a_middleware_that_aborts_before_next_stops_the_node_before_prep():
    controller = AbortController()
    node = probe(("sync", "sync", "sync"))

    async def abort_first(args, call_next):
        controller.abort("stop")
        return await call_next(args)

    with pytest.raises(AbortError):
        run(Flow(node).use(abort_first).run(TypedContext(), signal=controller.signal))
    assert node.log == []


def test_a_middleware_passing_no_signal_runs_the_node_as_never_aborted():
    node = probe(("sync", "async", "sync"))
    seen = []

    async def no_signal(args, call_next):
        copy = args.replace(signal=None)
        action = await call_next(copy)
        seen.append(copy.signal)
        return action

    assert run(Flow(node).use(no_signal).run(TypedContext())) == "act"
    assert node.log == [("prep", None, None), ("exec", "p", None), ("post", "p", "e")]
    assert seen[0] is not None and not seen[0].aborted


def test_a_middleware_may_call_next_twice_and_return_the_second_action():
    node = probe(("-", "sync", "sync"))
    actions = []

    async def twice(args, call_next):
        if args.node is not node:
            return await call_next(args)
        actions.append(await call_next(args))
        actions.append(await call_next(args.replace(exec_res=None)))
        return "second"

    b = Step("b")
    node.next(b, "second")
    ctx = TypedContext()
    run(Flow(node).use(twice).run(ctx))
    assert actions == ["act", "act"]
    assert [entry[0] for entry in node.log] == ["exec", "post", "exec", "post"]
    assert run(ctx.get("trail")) == ["b"]


def test_a_retrying_node_under_middleware_retries_through_its_own_lifecycle():
    calls = []

    class Flaky(Node):
        def exec(self, args):
            calls.append(1)
            if len(calls) < 3:
                raise ValueError("not yet")
            return "ok"

        def post(self, args):
            return args.exec_res

    node = Flaky(max_retries=3)
    assert not node._walk_plan[1]  # not inline: the step awaits run_lifecycle
    assert run(Flow(node).use(noop).run(TypedContext())) == "ok"
    assert len(calls) == 3


def test_a_custom_lifecycle_under_middleware_is_awaited_as_is():
    class Custom(Node):
        async def run_lifecycle(self, args, *, skip_exec=False):
            return f"custom-{args.node.id}"

    assert run(Flow(Custom().with_id("c")).use(noop).use(noop).run(TypedContext())) == "custom-c"


def test_a_middleware_gets_the_default_action_for_a_post_returning_none():
    seen = []

    class Quiet(Node):
        async def exec(self, args):
            return "e"

        def post(self, args):
            return None

    async def record(args, call_next):
        seen.append(await call_next(args))
        return seen[-1]

    quiet = Quiet()
    quiet.next(Node())
    assert run(Flow(quiet).use(record).run(TypedContext())) == DEFAULT_ACTION
    assert seen == [DEFAULT_ACTION, DEFAULT_ACTION]  # (Node(): no post at all)


def test_a_composed_chain_names_its_outermost_middleware_and_what_it_calls_next():
    from flowcraft.middleware import chain_head, compose_middleware

    async def inner(args):
        return "inner"

    async def outer_mw(args, call_next):
        return await call_next(args)

    def sync_mw(args, call_next):
        return call_next(args)

    assert chain_head(inner) is None  # not a chain: called as is
    chain = compose_middleware([outer_mw, sync_mw], inner)
    head_mw, head_next = chain_head(chain)
    assert head_mw is outer_mw
    adapted, innermost = chain_head(head_next)
    assert adapted.__wrapped__ is sync_mw and innermost is inner
    node = Step("n")
    args = fresh_args(node)
    assert run(chain(args)) == run(head_mw(args, head_next)) == "inner"
