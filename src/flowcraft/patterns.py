"""Ready-made flow shapes: sequences, parallel blocks and batches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from .actions import DEFAULT_ACTION
from .executors.base import BatchOutcome
from .flow import Flow, executor_of
from .node import _DEFAULTS_UNOBSERVED, AbstractNode, NodeArgs

__all__ = ["BatchFlow", "ParallelBatchFlow", "ParallelFlow", "SequenceFlow"]


def _check_concurrency(owner: object, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"concurrency of {type(owner).__name__} must be an int >= 1 or None, got {value!r}")
    return value


class _Bounded(Flow):
    """A flow with a ``concurrency`` limit (an int >= 1, or ``None`` for none), given as a
    constructor keyword or a class attribute and checked whenever it is set."""

    concurrency: int | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "concurrency":
            value = _check_concurrency(self, value)
        super().__setattr__(name, value)


_DEFAULTS_UNOBSERVED.add(_Bounded.__setattr__)  # it checks `concurrency` only


class SequenceFlow(Flow):
    """A flow running ``nodes`` one after another (each ``next``-ed to the following one).

    An empty sequence runs nothing and returns ``DEFAULT_ACTION`` (as in Flowcraft TS).
    """

    def __init__(self, *nodes: AbstractNode) -> None:
        super().__init__()
        if nodes:
            current = self.start(nodes[0])
            for node in nodes[1:]:
                current = current.next(node)

    async def exec(self, args: NodeArgs[Any, Any]) -> Any:
        """Walk the sequence; the last action (``DEFAULT_ACTION`` when it is empty)."""
        if self.start_node is None:
            return DEFAULT_ACTION
        return await executor_of(args).run_subflow(self, args)


class ParallelFlow(_Bounded):
    """Runs ``nodes`` as concurrent branches, then continues with its own successors.

    Each branch walks on along its successors; a node several branches reach runs once,
    after all of them have reached it (fan-in). A failing branch cancels the others and
    its error propagates. ``concurrency`` bounds how many branches run at once.

    ``exec`` returns the final actions of the branch walks; ``post`` returns the default
    action so ``parallel.next(after)`` always fires.
    """

    _nodes_to_run: tuple[AbstractNode, ...]

    def __init__(self, nodes: Iterable[AbstractNode] = (), *, concurrency: int | None = None) -> None:
        super().__init__()
        self.nodes_to_run = list(nodes)
        self.concurrency = concurrency if concurrency is not None else type(self).concurrency

    @property
    def nodes_to_run(self) -> tuple[AbstractNode, ...]:
        """The nodes each branch starts at."""
        return self._nodes_to_run

    @nodes_to_run.setter
    def nodes_to_run(self, nodes: Iterable[AbstractNode]) -> None:
        branches = tuple(nodes)
        for i, node in enumerate(branches):
            if not isinstance(node, AbstractNode):
                raise TypeError(f"{type(self).__name__} branch {i} is not a node: {type(node).__name__}: {node!r}")
        object.__setattr__(self, "_nodes_to_run", branches)
        self._rewired()

    @property
    def branches(self) -> tuple[AbstractNode, ...]:
        """The nodes each branch starts at (``nodes_to_run``)."""
        return self._nodes_to_run

    async def exec(self, args: NodeArgs[Any, Any]) -> list[Any]:
        """Run the branches concurrently; the final actions of the walks that ended."""
        return await executor_of(args).run_parallel(self, self._nodes_to_run, args, self.concurrency)

    def post(self, args: NodeArgs[Any, Any]) -> Any:
        """The default action (override to branch on ``args.exec_res``)."""
        return DEFAULT_ACTION


class _BatchBase(Flow):
    node_to_run: AbstractNode | None = None
    _concurrent: ClassVar[bool] = False

    def __init__(self, node_to_run: AbstractNode | None = None) -> None:
        super().__init__()
        if node_to_run is not None:
            self.node_to_run = node_to_run

    def prep(self, args: NodeArgs[Any, Any]) -> Any:
        """Return an iterable of per-item param dicts (override)."""
        return ()

    async def exec(self, args: NodeArgs[Any, Any]) -> list[BatchOutcome]:
        """Run ``node_to_run`` once per item of ``args.prep_res``."""
        node = self.node_to_run
        if node is None:
            raise TypeError(
                f"{type(self).__name__} has no node_to_run: set the attribute or pass it to the constructor"
            )
        if not isinstance(node, AbstractNode):
            raise TypeError(f"{type(self).__name__}.node_to_run must be a node, got {type(node).__name__}")
        items = _batch_items(self, args.prep_res)
        limit = getattr(self, "concurrency", None)
        return await executor_of(args).run_batch(self, node, items, args, concurrent=self._concurrent, limit=limit)

    def post(self, args: NodeArgs[Any, Any]) -> Any:
        """The default action; ``args.exec_res`` holds the per-item outcomes."""
        return DEFAULT_ACTION


def _batch_items(owner: AbstractNode, prepared: Any) -> Sequence[Mapping[str, Any]]:
    if prepared is None:
        return ()
    if isinstance(prepared, (str, bytes, Mapping)) or not isinstance(prepared, Iterable):
        raise TypeError(
            f"{type(owner).__name__}.prep() must return an iterable of param dicts, got {type(prepared).__name__}"
        )
    items = list(prepared)
    for i, item in enumerate(items):
        if type(item) is not dict and not isinstance(item, Mapping):  # (the ABC check alone: ~0.25 µs an item)
            raise TypeError(
                f"{type(owner).__name__}.prep() item {i} must be a dict of params, got {type(item).__name__}: {item!r}"
            )
    return items


class BatchFlow(_BatchBase):
    """Runs ``node_to_run`` once per item returned by ``prep``, in order.

    Each item is a dict of params merged over the inherited ones (item params win).
    The first failing item stops the batch.
    """


class ParallelBatchFlow(_Bounded, _BatchBase):
    """Runs ``node_to_run`` once per item, concurrently (at most ``concurrency`` at once).

    Every item runs; a failing item is logged and reported in its [`BatchOutcome`][flowcraft.BatchOutcome]
    (``args.exec_res`` in ``post``) rather than stopping the others.
    """

    _concurrent = True

    def __init__(self, node_to_run: AbstractNode | None = None, *, concurrency: int | None = None) -> None:
        super().__init__(node_to_run)
        self.concurrency = concurrency if concurrency is not None else type(self).concurrency
