"""Loggers: the :class:`Logger` protocol and three implementations.

A run logs retry warnings, fallbacks and executor messages to the logger passed to
``run(logger=...)``; the default :class:`NullLogger` is silent.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any, Literal, Protocol, TextIO, runtime_checkable

__all__ = ["ConsoleLogger", "LogLevel", "Logger", "NullLogger", "StdlibLogger"]

LogLevel = Literal["debug", "info", "warn", "error"]
_LEVELS: dict[str, int] = {"debug": 10, "info": 20, "warn": 30, "error": 40}


@runtime_checkable
class Logger(Protocol):
    """Anything with ``debug/info/warn/error(message, **context)``.

    Example::

        class PrintLogger:
            def debug(self, message: str, /, **context: Any) -> None: ...
            def info(self, message: str, /, **context: Any) -> None: print(message, context)
            def warn(self, message: str, /, **context: Any) -> None: print("WARN", message)
            def error(self, message: str, /, **context: Any) -> None: print("ERROR", message)
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


class ConsoleLogger:
    """Writes ``[LEVEL] message {context}`` lines to a stream (stderr by default)."""

    def __init__(self, level: LogLevel = "info", *, stream: TextIO | None = None) -> None:
        if level not in _LEVELS:
            raise ValueError(f"ConsoleLogger level must be one of {sorted(_LEVELS)}, got {level!r}")
        self.level: LogLevel = level
        self._threshold = _LEVELS[level]
        self._stream = stream

    def _write(self, level: str, message: str, context: Mapping[str, Any] | None, fields: dict[str, Any]) -> None:
        if _LEVELS[level] < self._threshold:
            return
        data = _merge(context, fields)
        line = f"[{level.upper()}] {message}" + (f" {data}" if data else "")
        print(line, file=self._stream if self._stream is not None else sys.stderr)

    def debug(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Log a debug message."""
        self._write("debug", message, context, fields)

    def info(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Log an informational message."""
        self._write("info", message, context, fields)

    def warn(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Log a warning."""
        self._write("warn", message, context, fields)

    def error(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Log an error."""
        self._write("error", message, context, fields)


class StdlibLogger:
    """Adapts a :class:`logging.Logger`; the context goes into the record's ``extra``."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger if logger is not None else logging.getLogger("flowcraft")

    def _log(self, level: int, message: str, context: Mapping[str, Any] | None, fields: dict[str, Any]) -> None:
        if self.logger.isEnabledFor(level):
            data = _merge(context, fields)
            self.logger.log(level, message, extra={"flowcraft": data} if data else None)

    def debug(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Log a debug message."""
        self._log(logging.DEBUG, message, context, fields)

    def info(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Log an informational message."""
        self._log(logging.INFO, message, context, fields)

    def warn(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Log a warning."""
        self._log(logging.WARNING, message, context, fields)

    def error(self, message: str, context: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Log an error."""
        self._log(logging.ERROR, message, context, fields)
