"""The two built-in actions: [`DEFAULT_ACTION`][flowcraft.DEFAULT_ACTION] and
[`FILTER_FAILED`][flowcraft.FILTER_FAILED]."""

from __future__ import annotations

from typing import Any, ClassVar, Final

__all__ = ["DEFAULT_ACTION", "FILTER_FAILED", "ActionSentinel", "action_label"]


class ActionSentinel:
    """A named singleton action. Identity survives ``copy``, ``deepcopy`` and ``pickle``."""

    __slots__ = ("_name",)
    _name: str
    _registry: ClassVar[dict[str, ActionSentinel]] = {}

    def __new__(cls, name: str) -> ActionSentinel:
        existing = cls._registry.get(name)
        if existing is not None:
            return existing
        self = super().__new__(cls)
        self._name = name
        cls._registry[name] = self
        return self

    @property
    def name(self) -> str:
        """The sentinel's name, e.g. ``"default"``."""
        return self._name

    def __repr__(self) -> str:
        return self._name.upper() + "_ACTION" if self._name == "default" else self._name.upper()

    def __reduce__(self) -> tuple[type[ActionSentinel], tuple[str]]:
        return (ActionSentinel, (self._name,))

    def __copy__(self) -> ActionSentinel:
        return self

    def __deepcopy__(self, memo: object) -> ActionSentinel:
        return self


DEFAULT_ACTION: Final = ActionSentinel("default")
"""The action of a node whose ``post`` returns ``None``; ``a.next(b)`` wires it."""

FILTER_FAILED: Final = ActionSentinel("filter_failed")
"""The action of a ``filter``-ed node whose predicate rejected the result."""


def action_label(action: Any) -> Any:
    """An action as JSON or a log line shows it: sentinels by name (``"default"``), others unchanged."""
    return action.name if isinstance(action, ActionSentinel) else action
