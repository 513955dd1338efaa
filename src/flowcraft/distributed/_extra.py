"""The import guard of the optional extra: fail early, naming the install command."""

from __future__ import annotations

import importlib.util

__all__: list[str] = []

for _package in ("bullmq", "redis"):
    if importlib.util.find_spec(_package) is None:
        raise ImportError(
            f"flowcraft.distributed needs the 'redis' extra ({_package} is missing): pip install 'flowcraft-py[redis]'",
            name=_package,
        )
