"""The executor contract: the :class:`Executor` protocol, :class:`RunOptions`, and the
kit a custom executor is built from (:class:`WalkScope`, :func:`resolve_options`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..abort import NEVER_ABORTED, AbortController, AbortSignal
from ..loggers import Logger, NullLogger
from ..middleware import Middleware, NextFn

if TYPE_CHECKING:
    from ..context import Context
    from ..events import EventEmitter, EventListener
    from ..flow import Flow
    from ..node import AbstractNode
    from .joins import JoinGate

__all__ = ["Executor", "RunOptions", "WalkScope", "first_successor", "resolve_options"]

NULL_LOGGER = NullLogger()


@dataclasses.dataclass(slots=True)
class RunOptions:
    """Options of one run: ``params``, ``logger``, ``signal``, ``controller``, ``executor``, ``on_event``.

    When both ``signal`` and ``controller`` are given, ``signal`` wins.
    """

    params: Mapping[str, Any] | None = None
    logger: Logger | None = None
    signal: AbortSignal | None = None
    controller: AbortController | None = None
    executor: Executor | None = None
    on_event: EventListener | None = None


@runtime_checkable
class Executor(Protocol):
    """Runs a flow: walks its graph, applies middleware, picks the next node.

    Example — an executor that logs every node it runs, built on the in-memory one::

        class LoggingExecutor(InMemoryExecutor):
            async def run_node(self, args):
                print("running", args.name)
                return await super().run_node(args)
    """

    async def run(self, flow: Flow, context: Context | None = None, options: RunOptions | None = None) -> Any:
        """Run ``flow`` with ``context`` and return its final action."""
        ...

    def get_next_node(self, curr: AbstractNode, action: Any) -> AbstractNode | None:
        """The node to run after ``curr`` returned ``action`` (``None`` ends the walk)."""
        ...


def first_successor(curr: AbstractNode, action: Any) -> AbstractNode | None:
    """The first successor registered for ``action``; ``None`` when there is none.

    An unhashable action (a collection helper's list) has no successors.
    """
    try:
        bucket = curr.successors.get(action)
    except TypeError:
        return None
    return bucket[0] if bucket else None


@dataclasses.dataclass(slots=True)
class WalkScope:
    """Everything the nodes of one walk share: the run's context and signal, the
    params they inherit, the middleware that wraps them, and fan-in bookkeeping.

    ``chain`` is the middleware composed once for the scope (``None`` when there is no
    middleware); ``inherited`` is what nested flows inherit (``use(mw, inherit=True)``).
    """

    ctx: Context
    params: dict[str, Any]
    signal: AbortSignal
    logger: Logger
    executor: Any
    middleware: tuple[Middleware, ...] = ()
    inherited: tuple[Middleware, ...] = ()
    chain: NextFn | None = None
    gate: JoinGate | None = None
    events: EventEmitter | None = None


def resolve_options(flow: Flow, options: RunOptions | None) -> tuple[dict[str, Any], AbortSignal, Logger]:
    """The top-level params (flow params < run params), signal and logger of a run."""
    if options is None:
        return flow.params, NEVER_ABORTED, NULL_LOGGER
    params = {**flow.params, **options.params} if options.params else flow.params
    signal = options.signal
    if signal is None:
        signal = options.controller.signal if options.controller is not None else NEVER_ABORTED
    logger = options.logger if options.logger is not None else NULL_LOGGER
    return params, signal, logger
