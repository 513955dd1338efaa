"""Loggers: the [`Logger`][flowcraft.Logger] protocol and three implementations.

A run logs retry warnings, fallbacks and executor messages to the logger passed to
``run(logger=...)``; the default [`NullLogger`][flowcraft.NullLogger] is silent.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, TextIO, runtime_checkable

if TYPE_CHECKING:
    import logging

__all__ = ["ConsoleLogger", "LevelLogger", "LogLevel", "Logger", "NullLogger", "StdlibLogger"]

LogLevel = Literal["debug", "info", "warn", "error"]
# The standard library's level numbers (logging.DEBUG ... logging.ERROR), so StdlibLogger
# passes them on unchanged without `import flowcraft` loading `logging`.
_LEVELS: dict[str, int] = {"debug": 10, "info": 20, "warn": 30, "error": 40}


@runtime_checkable
class Logger(Protocol):
    """Anything with ``debug/info/warn/error(message, **context)``.

    Examples:
        ```python
        class PrintLogger:
            def debug(self, message: str, /, **context: Any) -> None: ...
            def info(self, message: str, /, **context: Any) -> None: print(message, context)
            def warn(self, message: str, /, **context: Any) -> None: print("WARN", message)
            def error(self, message: str, /, **context: Any) -> None: print("ERROR", message)
        ```
    """

    def debug(self, message: str, /, **context: Any) -> None:
        """Log a debug message."""

    def info(self, message: str, /, **context: Any) -> None:
        """Log an informational message."""

    def warn(self, message: str, /, **context: Any) -> None:
        """Log a warning."""

    def error(self, message: str, /, **context: Any) -> None:
        """Log an error."""


def _merge(context: Mapping[str, Any] | None, fields: dict[str, Any]) -> dict[str, Any]:
    if not context:
        return fields
    merged = dict(context)
    merged.update(fields)
    return merged


class NullLogger:
    """A logger that discards everything (the default)."""

    __slots__ = ()

    def debug(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Discard a debug message."""

    def info(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Discard an informational message."""

    def warn(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Discard a warning."""

    def error(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Discard an error."""


class LevelLogger:
    """Base for loggers: implement `log`; ``debug/info/warn/error`` are provided.

    Examples:
        ```python
        class ListLogger(LevelLogger):
            def __init__(self):
                self.lines = []
            def log(self, level, message, context):
                self.lines.append((level, message, context))
        ```
    """

    def log(self, level: LogLevel, message: str, context: dict[str, Any]) -> None:
        """Handle one message; ``context`` merges the mapping and the keyword fields."""
        raise NotImplementedError(f"{type(self).__name__} must implement log()")

    def debug(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Log a debug message."""
        self.log("debug", message, _merge(context, fields))

    def info(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Log an informational message."""
        self.log("info", message, _merge(context, fields))

    def warn(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Log a warning."""
        self.log("warn", message, _merge(context, fields))

    def error(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Log an error."""
        self.log("error", message, _merge(context, fields))


class ConsoleLogger(LevelLogger):
    """Writes ``[LEVEL] message {context}`` lines to a stream (stderr by default)."""

    def __init__(self, level: LogLevel = "info", *, stream: TextIO | None = None) -> None:
        if level not in _LEVELS:
            raise ValueError(f"ConsoleLogger level must be one of {sorted(_LEVELS)}, got {level!r}")
        self.level: LogLevel = level
        self._threshold = _LEVELS[level]
        self._stream = stream

    def log(self, level: LogLevel, message: str, context: dict[str, Any]) -> None:
        """Print the line when ``level`` reaches the logger's level."""
        if _LEVELS[level] < self._threshold:
            return
        line = f"[{level.upper()}] {message}" + (f" {context}" if context else "")
        print(line, file=self._stream if self._stream is not None else sys.stderr)


class StdlibLogger(LevelLogger):
    """Adapts a [`logging.Logger`][flowcraft.Logger]; the context goes into the record's ``extra``."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        if logger is None:
            import logging

            logger = logging.getLogger("flowcraft")
        self.logger = logger

    def log(self, level: LogLevel, message: str, context: dict[str, Any]) -> None:
        """Pass the message to the standard-library logger (``warn`` is ``WARNING``)."""
        number = _LEVELS[level]
        if self.logger.isEnabledFor(number):
            self.logger.log(number, message, extra={"flowcraft": context} if context else None)
