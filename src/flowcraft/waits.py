"""Waits for people and durable timers: [`WaitNode`][flowcraft.WaitNode] parks a run
until someone resumes it, [`SleepNode`][flowcraft.SleepNode] until a time.

Both need a durable executor (``flowcraft.durable.DurableExecutor``): the run is
stored, no process or task is held while it waits, and the run goes on in whichever
process resumes it or fires its timer. A run parked on a wait for input makes
``flow.run`` raise [`RunSuspended`][flowcraft.RunSuspended].

Examples:
    ```python
    class Approve(WaitNode):
        actions = ("approve", "reject")
        wait_timeout = 24 * 3600
        on_timeout = "reject"

        async def prep(self, args):  # shown to whoever resumes the run
            return {"draft": await args.ctx.get("draft")}

        async def post(self, args):  # args.exec_res: the value given to resume()
            await args.ctx.set("note", args.exec_res)
            return args.resume_action
    ```
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from .actions import DEFAULT_ACTION
from .errors import DurabilityNotSupportedError, FlowcraftError, GraphError
from .node import Node

if TYPE_CHECKING:
    from .node import NodeArgs

__all__ = [
    "InvalidResumeValue",
    "RunSuspended",
    "SleepNode",
    "UnknownWaitError",
    "Wait",
    "WaitAlreadyResolved",
    "WaitNode",
    "parse_duration",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Wait:
    """An open wait of a run: ``id`` (``node_id#visit``), the ``node_id``, its ``kind``
    (``"input"``: a person resumes it; ``"timer"``: it fires by itself), the ``request``
    its node's ``prep`` returned, the ``actions`` a resume may take (empty: any), and
    ``fire_at`` (seconds since the epoch when it times out or fires, or ``None``)."""

    id: str
    node_id: str
    kind: str
    request: Any = None
    actions: tuple[str, ...] = ()
    fire_at: float | None = None


class RunSuspended(FlowcraftError):
    """The run is parked on waits for input (``waits``) and nothing else can run: resume
    it with ``executor.resume(run_id, wait.id, value)``. A pause is never a completion."""

    def __init__(self, run_id: str, waits: Sequence[Wait]) -> None:
        listed = ", ".join(f"{wait.id} ({wait.kind})" for wait in waits) or "none"
        super().__init__(f"Run {run_id!r} is awaiting input: {listed}; resume it with executor.resume(...)")
        self.run_id = run_id
        self.waits = tuple(waits)


class UnknownWaitError(FlowcraftError, LookupError):
    """``resume`` named a wait the run does not have (or a run that does not exist)."""


class WaitAlreadyResolved(FlowcraftError):
    """The wait was resolved already (by another resume, or its timeout); a resume with
    the same ``idempotency_key``, value and action returns the first result instead."""


class InvalidResumeValue(FlowcraftError, ValueError):
    """A resume with an action the wait does not allow, or a value that cannot be
    stored; the wait stays open."""


class WaitNode(Node[Any, Any, Any]):
    """A node that parks the run until someone resumes it (subclass it).

    ``prep`` runs once, before the pause; what it returns is the wait's ``request``
    (stored, shown to whoever resumes). ``exec`` does not run. On resume, ``post`` runs
    with ``args.exec_res`` = the value given and ``args.resume_action`` = the action
    given (default ``DEFAULT_ACTION``); the default ``post`` returns that action.

    Class attributes:
        actions: the actions a resume may take (empty: any).
        wait_timeout: seconds until the wait expires (``None``: never). Named so as not
            to clash with ``Node.timeout``, the per-attempt ``exec`` timeout.
        on_timeout: the action taken when it expires (must be in ``actions`` when those
            are given).

    Raises:
        GraphError: ``on_timeout`` is not one of ``actions``, or ``wait_timeout`` is not
            a positive number.
    """

    wait_kind: ClassVar[str] = "input"
    actions: tuple[str, ...] = ()
    wait_timeout: float | None = None
    on_timeout: str | None = None

    def __init__(self, *, actions: Sequence[str] | None = None, wait_timeout: Any = None, on_timeout: str | None = None
                 ) -> None:  # fmt: skip
        super().__init__()
        if actions is not None:
            self.actions = tuple(actions)
        if wait_timeout is not None:
            self.wait_timeout = parse_duration(wait_timeout, owner=f"{type(self).__name__}.wait_timeout")
        if on_timeout is not None:
            self.on_timeout = on_timeout
        self.check_wait()

    def check_wait(self) -> None:
        """Refuse settings that cannot work (names the node and the field)."""
        name = type(self).__name__ if self.id is None else f"{self.id!r} ({type(self).__name__})"
        if isinstance(self.actions, str) or not all(isinstance(a, str) for a in self.actions):
            raise GraphError(f"Wait node {name}: actions must be a list of strings, got {self.actions!r}")
        if self.wait_timeout is not None:
            self.wait_timeout = parse_duration(self.wait_timeout, owner=f"wait node {name}: wait_timeout")
        if self.on_timeout is not None and self.actions and self.on_timeout not in self.actions:
            raise GraphError(
                f"Wait node {name}: on_timeout {self.on_timeout!r} is not one of its actions {list(self.actions)}"
            )
        if self.wait_timeout is not None and self.actions and self.on_timeout is None and self.wait_kind == "input":
            raise GraphError(
                f"Wait node {name}: it expires after {self.wait_timeout:g} s but has no on_timeout; give one of "
                f"its actions {list(self.actions)} (the default action is not one of them, so the run would "
                "just end)"
            )

    def post(self, args: NodeArgs[Any, Any]) -> Any:
        """Go on with the action the wait was resumed with."""
        return args.resume_action

    async def run_lifecycle(self, args: NodeArgs[Any, Any], *, skip_exec: bool = False) -> Any:
        """Refused: a wait parks a stored run, which only a durable executor keeps.

        Raises:
            DurabilityNotSupportedError: always (names the node and what to do).
        """
        name = type(self).__name__ if self.id is None else f"{self.id!r} ({type(self).__name__})"
        raise DurabilityNotSupportedError(
            f"Wait node {name} can only run as a step of a durable run: run the flow with "
            "flowcraft.durable.DurableExecutor (or DistributedExecutor), and keep wait nodes out of "
            "in-process blocks (a ParallelFlow, a BatchFlow, a sub-flow) — put them on the flow's own path"
        )

    async def request(self, args: NodeArgs[Any, Any]) -> Any:
        """Run ``prep`` (errors wrapped as for any node): the wait's request."""
        try:
            result = self.prep(args)
            if inspect.isawaitable(result):
                result = await result
        except Exception as error:
            wrapped = self._wrap_error(error, "prep")
            raise wrapped from wrapped.__cause__
        return result

    async def resume(self, args: NodeArgs[Any, Any]) -> Any:
        """Run ``post`` with the resume value in ``args.exec_res``: the action to go on with."""
        try:
            action = self.post(args)
            if inspect.isawaitable(action):
                action = await action
        except Exception as error:
            wrapped = self._wrap_error(error, "post")
            raise wrapped from wrapped.__cause__
        return DEFAULT_ACTION if action is None else action


class SleepNode(WaitNode):
    """A durable timer: the run parks for ``seconds`` (a number, or ``"2s"``, ``"5m"``,
    ``"24h"``, ``"7d"``) and goes on by itself; no process or task is held meanwhile.

    Raises:
        GraphError: the duration is negative or cannot be read.
    """

    wait_kind: ClassVar[str] = "timer"

    def __init__(self, seconds: Any = None, *, data: dict[str, Any] | None = None, **_deps: Any) -> None:
        duration = seconds if seconds is not None else (data or {}).get("duration")
        if duration is None:
            raise GraphError("SleepNode needs a duration: SleepNode(3600) or data={'duration': '1h'}")
        super().__init__(wait_timeout=duration)
        self.seconds = self.wait_timeout

    def post(self, args: NodeArgs[Any, Any]) -> Any:
        """Go on with the default action."""
        return DEFAULT_ACTION


class _GraphWaitNode(WaitNode):
    """The graph JSON built-in ``{"type": "wait"}``: ``data.actions``, ``data.timeout``
    (seconds or a duration string), ``data.onTimeout``; ``post`` stores the resume value
    under ``data.output`` when given."""

    def __init__(self, data: dict[str, Any] | None = None, **_deps: Any) -> None:
        data = dict(data or {})
        self.output = data.get("output")
        actions = data.get("actions")
        try:
            super().__init__(
                actions=actions if actions is not None else None,
                wait_timeout=data.get("timeout"),
                on_timeout=data.get("onTimeout"),
            )
        except GraphError as error:  # name the graph's node, not this class
            node_id = data.get("nodeId")
            text = str(error).replace(f"Wait node {type(self).__name__}", "").lstrip(": ")
            text = text.replace(f"{type(self).__name__}.wait_timeout", "data.timeout")
            raise GraphError(f"Wait node {node_id!r}: {text}", node_id=node_id) from None

    async def post(self, args: NodeArgs[Any, Any]) -> Any:
        """Store the resume value under ``data.output`` (if given); go on with the resume action."""
        if self.output:
            await args.ctx.set(str(self.output), args.exec_res)
        return args.resume_action


BUILTIN_NODE_TYPES: dict[str, Any] = {"wait": _GraphWaitNode, "sleep": SleepNode}
"""Graph JSON node types that need no registry entry (a registry entry of the same name wins)."""

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: Any, *, owner: str = "duration") -> float:
    """Seconds from a number or a string like ``"90"``, ``"2s"``, ``"5m"``, ``"24h"``, ``"7d"``.

    Raises:
        GraphError: negative, not finite, or unreadable (names ``owner``).
    """
    if isinstance(value, bool):
        raise GraphError(f"{owner}: expected seconds or a duration like '5m', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        if value.strip().startswith("-"):
            raise GraphError(f"{owner}: a duration must be >= 0, got {value!r}")
        match = _DURATION.match(value)
        if match is None:
            raise GraphError(f"{owner}: cannot read {value!r} as a duration (use seconds, or '2s', '5m', '24h', '7d')")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise GraphError(f"{owner}: expected seconds or a duration like '5m', got {type(value).__name__} {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise GraphError(f"{owner}: a duration must be a finite number of seconds >= 0, got {value!r}")
    return seconds
