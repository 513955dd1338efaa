"""The import guard of the optional extra: fail early, naming the install command."""

from __future__ import annotations

__all__: list[str] = []

try:
    import bullmq  # type: ignore[import-untyped]  # noqa: F401
    import redis  # noqa: F401
except ImportError as error:
    raise ImportError(
        f"flowcraft.distributed needs the 'redis' extra ({error.name or 'a dependency'} is missing): "
        "pip install 'flowcraft-py[redis]'",
        name=error.name,
    ) from error
