"""SPEC §10: RetryPolicy — delays, jitter, predicates, retry_after, max_elapsed (fake clock)."""

from __future__ import annotations

import asyncio
import datetime
import random

import pytest

from flowcraft import (
    AbortController,
    AbortError,
    FatalWorkflowError,
    Flow,
    Node,
    RetryAttempt,
    RetryPolicy,
    TypedContext,
    WorkflowError,
)
from flowcraft.clock import Clock
from flowcraft.testing import EventRecorder, FakeClock

from .helpers import RecordingLogger, run


class Failing(Node):
    """Raises ``errors[i]`` on attempt i (then succeeds); optionally advances a fake clock per attempt."""

    def __init__(self, errors, clock=None, took=0.0, **options):
        super().__init__(**options)
        self.errors = list(errors)
        self.attempts = 0
        self.clock = clock
        self.took = took

    async def exec(self, args):
        self.attempts += 1
        if self.clock is not None:
            self.clock.advance(self.took)
        if self.attempts <= len(self.errors):
            raise self.errors[self.attempts - 1]
        return "ok"

    async def post(self, args):
        return args.exec_res


class RateLimited(Exception):
    def __init__(self, retry_after):
        super().__init__("slow down")
        self.retry_after = retry_after


class SeededClock(Clock):
    def __init__(self, seed):
        super().__init__()
        self._random = random.Random(seed)


# ---- the delay sequence -----------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 7, 42])
def test_delay_sequence_stays_within_its_bounds_for_every_attempt(seed):
    policy = RetryPolicy(max_attempts=30, wait=0.5, backoff=2.0, max_wait=20.0, jitter=0.3)
    clock = SeededClock(seed)
    for attempt in range(1, 30):
        cap = min(20.0, 0.5 * 2.0 ** (attempt - 1))
        assert policy.base_delay(attempt) == pytest.approx(cap)
        delay = policy.delay(attempt, clock=clock)
        assert cap * 0.7 <= delay <= cap, (attempt, delay)
        assert delay <= 20.0  # never above the cap


def test_delay_sequence_is_reproducible_with_a_fixed_seed():
    policy = RetryPolicy(max_attempts=6, wait=1.0, backoff=3.0, max_wait=30.0, jitter=1.0)
    first = [policy.delay(n, clock=SeededClock(3)) for n in range(1, 6)]
    second = [policy.delay(n, clock=SeededClock(3)) for n in range(1, 6)]
    assert first == second


def test_without_jitter_the_delays_are_exact():
    policy = RetryPolicy(max_attempts=6, wait=1.0, backoff=2.0, max_wait=5.0)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_huge_backoff_exponents_are_capped_not_overflowing():
    policy = RetryPolicy(max_attempts=3, wait=1.0, backoff=10.0, max_wait=60.0)
    assert policy.base_delay(5000) == 60.0


def test_retry_after_sets_that_attempts_delay():
    policy = RetryPolicy(wait=1.0, backoff=2.0, max_wait=2.0, jitter=0.5)
    assert policy.delay(1, RateLimited(7)) == 7.0
    assert policy.delay(3, RateLimited(datetime.timedelta(seconds=3))) == 3.0
    assert policy.delay(1, RateLimited(-1)) <= 1.0  # not a usable delay: the backoff applies
    assert policy.delay(1, RateLimited("soon")) <= 1.0


def test_the_nodes_retry_loop_sleeps_the_policys_delays():
    policy = RetryPolicy(max_attempts=4, wait=1.0, backoff=2.0, max_wait=3.0)
    node = Failing([ValueError("a"), ValueError("b"), ValueError("c")], retry=policy)
    with FakeClock() as clock:
        assert run(Flow(node).run(TypedContext())) == "ok"
    assert node.attempts == 4
    assert clock.sleeps == [1.0, 2.0, 3.0]


def test_jittered_sleeps_are_reproducible_under_a_seeded_fake_clock():
    def sleeps(seed):
        policy = RetryPolicy(max_attempts=5, wait=1.0, backoff=2.0, jitter=0.5)
        node = Failing([ValueError()] * 4, retry=policy)
        with FakeClock(seed=seed) as clock:
            run(Flow(node).run())
        return clock.sleeps

    assert sleeps(5) == sleeps(5)
    for n, delay in enumerate(sleeps(5), start=1):
        assert 2 ** (n - 1) * 0.5 <= delay <= 2 ** (n - 1)


def test_retry_events_carry_the_attempt_and_the_delay():
    policy = RetryPolicy(max_attempts=3, wait=0.25, backoff=4.0)
    node = Failing([ValueError("a"), RateLimited(9)], retry=policy).with_id("call")
    recorder = EventRecorder()
    with FakeClock():
        run(Flow(node).run(TypedContext(), on_event=recorder))
    retries = recorder.of_type(RetryAttempt)
    assert [(e.attempt, e.max_attempts, e.delay) for e in retries] == [(1, 3, 0.25), (2, 3, 9.0)]
    assert retries[0].node_id == "call"


def test_retry_warnings_name_the_delay():
    node = Failing([ValueError("a")], retry=RetryPolicy(max_attempts=2, wait=0.5)).with_id("n")
    logger = RecordingLogger()
    with FakeClock():
        run(Flow(node).run(logger=logger))
    assert "retrying in 0.5 s" in logger.messages("warn")[0]


# ---- which errors are retried --------------------------------------------------------------


def test_retry_on_types_limits_what_is_retried():
    policy = RetryPolicy(max_attempts=5, retry_on=(TimeoutError, ConnectionError))
    retried = Failing([TimeoutError(), ConnectionError()], retry=policy)
    with FakeClock():
        assert run(Flow(retried).run()) == "ok"
    other = Failing([KeyError("x")], retry=policy).with_id("n")
    with FakeClock(), pytest.raises(WorkflowError, match="KeyError") as info:
        run(Flow(other).run())
    assert other.attempts == 1
    assert isinstance(info.value.__cause__, KeyError)


def test_a_single_type_works_like_a_one_tuple():
    policy = RetryPolicy(max_attempts=3, retry_on=TimeoutError)
    assert policy.retry_on == (TimeoutError,)
    assert policy.should_retry(TimeoutError()) and not policy.should_retry(ValueError())


def test_a_predicate_decides():
    policy = RetryPolicy(max_attempts=3, retry_on=lambda e: "transient" in str(e))
    assert policy.should_retry(ValueError("transient glitch"))
    assert not policy.should_retry(ValueError("bad input"))


def test_give_up_on_wins_over_retry_on():
    class Permanent(ConnectionError):
        pass

    policy = RetryPolicy(max_attempts=5, retry_on=ConnectionError, give_up_on=Permanent)
    assert policy.should_retry(ConnectionError())
    assert not policy.should_retry(Permanent())
    node = Failing([ConnectionError(), Permanent()], retry=policy)
    with FakeClock(), pytest.raises(WorkflowError):
        run(Flow(node).run())
    assert node.attempts == 2


def test_a_predicate_that_raises_stops_retrying_and_the_original_error_carries_a_note():
    def broken(error):
        raise RuntimeError("predicate bug")

    node = Failing([ValueError("original")], retry=RetryPolicy(max_attempts=5, retry_on=broken)).with_id("n")
    with FakeClock(), pytest.raises(WorkflowError, match="original") as info:
        run(Flow(node).run())
    assert node.attempts == 1
    original = info.value.__cause__
    assert isinstance(original, ValueError)
    assert any("predicate bug" in note for note in original.__notes__)


def test_a_give_up_predicate_that_raises_also_stops():
    policy = RetryPolicy(max_attempts=5, give_up_on=lambda e: 1 / 0)
    assert not policy.should_retry(ValueError("x"))


def test_fallback_runs_when_retrying_stops_early():
    class WithFallback(Failing):
        async def exec_fallback(self, args):
            return f"fallback after {type(args.error).__name__}"

    node = WithFallback([KeyError("k")], retry=RetryPolicy(max_attempts=4, retry_on=ValueError))
    assert run(Flow(node).run()) == "fallback after KeyError"
    assert node.attempts == 1


@pytest.mark.parametrize("error", [AbortError("stop"), FatalWorkflowError("fatal")], ids=["abort", "fatal"])
def test_aborts_and_fatal_errors_are_never_retried_even_when_retry_on_says_so(error):
    policy = RetryPolicy(max_attempts=5, retry_on=lambda e: True)
    assert not policy.should_retry(error)
    assert not policy.should_retry(asyncio.CancelledError())
    node = Failing([error], retry=policy)
    with FakeClock(), pytest.raises(type(error)):
        run(Flow(node).run())
    assert node.attempts == 1


# ---- max_elapsed -------------------------------------------------------------------------


def test_max_elapsed_stops_before_an_attempt_that_would_end_past_it():
    policy = RetryPolicy(max_attempts=10, wait=1.0, backoff=2.0, max_elapsed=10.0)
    with FakeClock() as clock:
        node = Failing([ValueError()] * 9, clock=clock, took=0.5, retry=policy)
        with pytest.raises(WorkflowError):
            run(Flow(node).run())
    # attempts at t=0, 1.5 (+1), 4 (+2), 8.5 (+4); the next delay (8 s) would end past 10 s
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert node.attempts == 4


def test_an_abort_during_a_policy_delay_stops_at_once():
    controller = AbortController()

    class AbortingClock(FakeClock):
        async def sleep(self, seconds, signal):
            controller.abort("stop")
            await super().sleep(seconds, signal)

    node = Failing([ValueError()] * 3, retry=RetryPolicy(max_attempts=5, wait=1.0))
    with AbortingClock(), pytest.raises(AbortError):
        run(Flow(node).run(controller=controller))
    assert node.attempts == 1


# ---- shorthand and the node's attributes ---------------------------------------------------


def test_max_retries_and_wait_are_shorthand_and_mirror_the_policy():
    node = Node(retry=RetryPolicy(max_attempts=4, wait=2.0, backoff=3.0))
    assert (node.max_retries, node.wait) == (4, 2.0)
    node.max_retries = 6
    assert node.retry == RetryPolicy(max_attempts=6, wait=2.0, backoff=3.0)
    node.wait = 0.5
    assert node.retry is not None and node.retry.wait == 0.5
    shorthand = Node(max_retries=3, wait=1.5)
    assert shorthand.retry is None and (shorthand.max_retries, shorthand.wait) == (3, 1.5)


def test_shorthand_sleeps_the_fixed_wait():
    node = Failing([ValueError()] * 2, max_retries=3, wait=0.75)
    with FakeClock() as clock:
        assert run(Flow(node).run()) == "ok"
    assert clock.sleeps == [0.75, 0.75]


def test_both_forms_at_once_is_a_value_error():
    with pytest.raises(ValueError, match="either retry=RetryPolicy"):
        Node(max_retries=3, retry=RetryPolicy())
    with pytest.raises(ValueError, match="either retry=RetryPolicy"):
        Node(wait=1.0, retry=RetryPolicy())


def test_retry_must_be_a_policy():
    with pytest.raises(TypeError, match="retry of Node must be a RetryPolicy"):
        Node(retry={"max_attempts": 3})  # type: ignore[arg-type]


def test_combinators_keep_the_policy():
    policy = RetryPolicy(max_attempts=3, wait=1.0, backoff=2.0)
    node = Failing([], retry=policy)
    assert node.map(lambda x: x).retry == policy
    assert node.filter(lambda x: True).retry == policy


def test_policies_are_frozen():
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.wait = 3.0  # type: ignore[misc]


# ---- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_attempts": 0}, ValueError, "max_attempts"),
        ({"max_attempts": 2.5}, TypeError, "max_attempts"),
        ({"max_attempts": True}, TypeError, "max_attempts"),
        ({"wait": -1}, ValueError, r"wait must be >= 0 seconds"),
        ({"wait": "1s"}, TypeError, r"wait must be a number of seconds"),
        ({"wait": float("nan")}, ValueError, "wait"),
        ({"max_wait": -0.5}, ValueError, "max_wait"),
        ({"max_wait": "10"}, TypeError, "max_wait"),
        ({"backoff": 0.5}, ValueError, r"backoff must be >= 1"),
        ({"backoff": None}, TypeError, "backoff"),
        ({"jitter": 1.5}, ValueError, r"jitter must be in \[0, 1\]"),
        ({"jitter": -0.1}, ValueError, "jitter"),
        ({"max_elapsed": 0}, ValueError, "max_elapsed"),
        ({"retry_on": "ValueError"}, TypeError, "retry_on"),
        ({"retry_on": (ValueError, "x")}, TypeError, r"retry_on\[1\]"),
        ({"retry_on": int}, TypeError, "retry_on"),
        ({"give_up_on": 3}, TypeError, "give_up_on"),
    ],
)
def test_bad_fields_are_errors_naming_the_field(kwargs, error, match):
    with pytest.raises(error, match=match):
        RetryPolicy(**kwargs)
