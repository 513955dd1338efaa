"""Retry policies: how often a node's ``exec`` is attempted, how long to wait between
attempts, and which errors are worth another attempt.

After failed attempt *n* the delay is ``d = min(max_wait, wait * backoff ** (n - 1))``,
drawn uniformly from ``[d * (1 - jitter), d]`` — never above the cap. An error with a
``retry_after`` attribute (seconds, e.g. from an HTTP ``Retry-After`` header) sets that
attempt's delay instead. Aborts, ``asyncio.CancelledError`` and
[`FatalWorkflowError`][flowcraft.FatalWorkflowError] are never retried.

Example — an LLM call that backs off on rate limits but not on bad requests:

```python
policy = RetryPolicy(
    max_attempts=5, wait=1.0, backoff=2.0, max_wait=30.0, jitter=0.5,
    retry_on=(RateLimitError, TimeoutError), give_up_on=BadRequestError,
)
node = CallModel(retry=policy)
```
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

from .clock import Clock, current
from .errors import AbortError, FatalWorkflowError

__all__ = ["RetryFilter", "RetryPolicy", "resolve_exception_type", "retry_policy_from_config"]

RetryFilter = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
"""Which errors a policy matches: an exception type, a tuple of them, or a predicate."""


def _number(owner: str, name: str, value: Any, *, minimum: float, strict: bool = False, unit: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        what = f"a number of {unit}" if unit else "a number"
        raise TypeError(f"{owner}.{name} must be {what}, got {type(value).__name__}: {value!r}")
    if math.isnan(value) or (value <= minimum if strict else value < minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ValueError(f"{owner}.{name} must be {bound}{' ' + unit if unit else ''}, got {value!r}")
    return float(value)


def _check_filter(name: str, value: Any) -> RetryFilter:
    if isinstance(value, type):
        if not issubclass(value, BaseException):
            raise TypeError(
                f"RetryPolicy.{name} must be an exception type, a tuple of them or a predicate, got {value!r}"
            )
        return (value,)
    if isinstance(value, tuple):
        for i, item in enumerate(value):
            if not (isinstance(item, type) and issubclass(item, BaseException)):
                raise TypeError(
                    f"RetryPolicy.{name}[{i}] must be an exception type, got {type(item).__name__}: {item!r}"
                )
        return value
    if callable(value):
        return value  # type: ignore[no-any-return]
    raise TypeError(
        f"RetryPolicy.{name} must be an exception type, a tuple of them or a predicate (error -> bool), "
        f"got {type(value).__name__}: {value!r}"
    )


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a node's ``exec`` is retried; give it as ``Node(retry=RetryPolicy(...))``.

    Args:
        max_attempts: total attempts (>= 1).
        wait: seconds before the second attempt (>= 0).
        backoff: factor applied to the delay after each further failure (>= 1).
        max_wait: cap on a delay in seconds (``None``: no cap). Jitter never exceeds it.
        jitter: fraction in [0, 1] of the delay drawn at random: the delay is uniform in
            ``[d * (1 - jitter), d]``.
        retry_on: errors worth another attempt: an exception type, a tuple of types, or a
            predicate ``error -> bool``.
        give_up_on: errors never retried, even when ``retry_on`` matches (same forms).
        max_elapsed: seconds since the first attempt after which no new attempt starts
            (an attempt whose delay would end past it is not made).

    When a predicate raises, retrying stops and the node fails with the original error;
    the predicate's error is attached to it as a note. When retrying stops early (an error
    not retried, ``max_elapsed``), ``exec_fallback`` runs as after the last attempt.

    Raises:
        TypeError, ValueError: a field of the wrong type or out of range (named).
    """

    max_attempts: int = 3
    wait: float = 0.0
    backoff: float = 1.0
    max_wait: float | None = None
    jitter: float = 0.0
    retry_on: RetryFilter = (Exception,)
    give_up_on: RetryFilter = ()
    max_elapsed: float | None = None

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise TypeError(
                f"RetryPolicy.max_attempts must be an int >= 1, got {type(attempts).__name__}: {attempts!r}"
            )
        if attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be an int >= 1 (total attempts), got {attempts!r}")
        put = object.__setattr__
        put(self, "wait", _number("RetryPolicy", "wait", self.wait, minimum=0, unit="seconds"))
        put(self, "backoff", _number("RetryPolicy", "backoff", self.backoff, minimum=1))
        if self.max_wait is not None:
            put(self, "max_wait", _number("RetryPolicy", "max_wait", self.max_wait, minimum=0, unit="seconds"))
        jitter = _number("RetryPolicy", "jitter", self.jitter, minimum=0)
        if jitter > 1:
            raise ValueError(f"RetryPolicy.jitter must be in [0, 1], got {self.jitter!r}")
        put(self, "jitter", jitter)
        if self.max_elapsed is not None:
            put(
                self, "max_elapsed",
                _number("RetryPolicy", "max_elapsed", self.max_elapsed, minimum=0, strict=True, unit="seconds"),
            )  # fmt: skip
        put(self, "retry_on", _check_filter("retry_on", self.retry_on))
        put(self, "give_up_on", _check_filter("give_up_on", self.give_up_on))

    def base_delay(self, attempt: int) -> float:
        """The delay after failed attempt ``attempt`` (1-based), before jitter:
        ``min(max_wait, wait * backoff ** (attempt - 1))``."""
        try:
            delay = self.wait * self.backoff ** (attempt - 1)
        except OverflowError:
            delay = math.inf
        if self.max_wait is not None and delay > self.max_wait:
            delay = self.max_wait
        return delay

    def delay(self, attempt: int, error: BaseException | None = None, clock: Clock | None = None) -> float:
        """The seconds to wait after failed attempt ``attempt`` (1-based) that raised ``error``.

        ``error.retry_after`` (seconds, or a ``timedelta``) wins when present; otherwise the
        backoff delay with jitter drawn from ``clock`` (the current clock by default).
        """
        after = retry_after(error)
        if after is not None:
            return after
        delay = self.base_delay(attempt)
        if self.jitter and delay > 0:
            if clock is None:
                clock = current()
            delay = min(delay, clock.uniform(delay * (1.0 - self.jitter), delay))
        return delay

    def should_retry(self, error: BaseException) -> bool:
        """Whether ``error`` is worth another attempt (attempts left aside).

        A predicate that raises counts as "no": its error is added to ``error`` as a note.
        """
        if not isinstance(error, Exception) or isinstance(error, (AbortError, FatalWorkflowError)):
            return False
        give_up = self.give_up_on
        if give_up != () and _matches(give_up, error, "give_up_on"):
            return False
        return _matches(self.retry_on, error, "retry_on", on_error=False)


def _matches(rule: RetryFilter, error: BaseException, name: str, *, on_error: bool = True) -> bool:
    if isinstance(rule, tuple):
        return isinstance(error, rule)
    try:
        return bool(rule(error))
    except Exception as raised:
        label = getattr(rule, "__qualname__", repr(rule))
        error.add_note(
            f"Not retried: the RetryPolicy.{name} predicate {label} raised {type(raised).__name__}: {raised}"
        )
        return on_error


def retry_after(error: BaseException | None) -> float | None:
    """``error.retry_after`` in seconds when it is a number >= 0 or a ``timedelta``; else ``None``."""
    value = getattr(error, "retry_after", None) if error is not None else None
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        return None
    return float(value)


# ---- JSON config ---------------------------------------------------------------------------

_MS = 1000.0
POLICY_CONFIG_KEYS = ("backoff", "maxWait", "jitter", "retryOn", "retryDelay")
"""JSON ``config`` keys that make the builder give a node a [`RetryPolicy`][flowcraft.retry.RetryPolicy]."""


def resolve_exception_type(name: str) -> type[BaseException]:
    """The exception class named ``name``: a builtin (``"TimeoutError"``) or a full dotted
    name (``"package.module.ClassName"``) in a module this process has imported.

    Modules are never imported on a graph file's behalf: import the module that defines
    the class first (your node registry usually does).

    Raises:
        ValueError: no such class, or it is not an exception type.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"expected the name of an exception class, got {name!r}")
    module_name, _, attr = name.rpartition(".")
    if not module_name:
        found = getattr(builtins, name, None)
    else:
        module = sys.modules.get(module_name)
        if module is None:
            raise ValueError(
                f"exception type {name!r}: module {module_name!r} is not imported (import it before building, "
                "e.g. in your registry module; graph files never import modules)"
            )
        found = getattr(module, attr, None)
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise ValueError(f"{name!r} does not name an exception class")
    return found


def retry_policy_from_config(config: Mapping[str, Any], base: RetryPolicy | None) -> RetryPolicy:
    """The policy a JSON ``config`` describes, over ``base`` (times in milliseconds).

    Keys: ``maxRetries``, ``retryDelay``/``wait``, ``backoff``, ``maxWait``, ``jitter``,
    ``retryOn`` (a list of exception names, see [`resolve_exception_type`][flowcraft.retry.resolve_exception_type]).

    Raises:
        ValueError, TypeError: a value is invalid; the message starts with the key.
    """
    changes: dict[str, Any] = {}
    for key, field, ms in (
        ("maxRetries", "max_attempts", False), ("wait", "wait", True), ("retryDelay", "wait", True),
        ("backoff", "backoff", False), ("maxWait", "max_wait", True), ("jitter", "jitter", False),
    ):  # fmt: skip
        if key not in config:
            continue
        value = config[key]
        if ms and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = value / _MS
        changes[field] = value
    if "retryOn" in config:
        names = config["retryOn"]
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list):
            raise TypeError(f"retryOn: expected a list of exception names, got {names!r}")
        types = []
        for i, name in enumerate(names):
            try:
                types.append(resolve_exception_type(name))
            except ValueError as error:
                raise ValueError(f"retryOn[{i}]: {error}") from None
        changes["retry_on"] = tuple(types)
    try:
        return dataclasses.replace(base if base is not None else RetryPolicy(max_attempts=1), **changes)
    except (TypeError, ValueError) as error:
        message = str(error)
        for key, field, _ms in (
            ("maxRetries", "max_attempts", 0), ("retryDelay" if "retryDelay" in config else "wait", "wait", 0),
            ("backoff", "backoff", 0), ("maxWait", "max_wait", 0), ("jitter", "jitter", 0),
        ):  # fmt: skip
            if message.startswith(f"RetryPolicy.{field} "):
                raise type(error)(f"{key}: {message}") from None
        raise
