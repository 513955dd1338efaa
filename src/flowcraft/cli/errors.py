"""The command line's exit codes and the error that carries one."""

from __future__ import annotations

__all__ = ["EXIT_AWAITING", "EXIT_ENVIRONMENT", "EXIT_FAILED", "EXIT_OK", "EXIT_TIMEOUT", "EXIT_USAGE", "CliError"]

EXIT_OK = 0
"""Success."""
EXIT_FAILED = 1
"""The workflow ran and failed or was cancelled; ``validate`` found errors."""
EXIT_USAGE = 2
"""Bad invocation or input: arguments, registry, context, params, graph file, unknown run,
a run id taken by another graph, a file that is not a run store."""
EXIT_ENVIRONMENT = 3
"""A service or tool is unavailable: Redis unreachable, Graphviz or an extra not installed."""
EXIT_AWAITING = 4
"""The run paused on a wait for input (``flowcraft resume`` goes on with it)."""

EXIT_TIMEOUT = 124
"""``run --timeout``: the run did not end in time; it goes on (as ``timeout(1)`` exits)."""


class CliError(Exception):
    """An error shown to the user as one line on stderr, exiting with ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
