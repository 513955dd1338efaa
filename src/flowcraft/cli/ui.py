"""``flowcraft ui``: serve the run dashboard (the ``ui`` extra) over a store file or Redis."""

from __future__ import annotations

import os
import sys
from typing import Any

from .errors import EXIT_ENVIRONMENT, EXIT_USAGE, CliError
from .loading import RedisTarget, StoreTarget, ensure_cwd_importable
from .remote import require_distributed

__all__ = ["require_ui", "ui_command"]

TOKEN_VARIABLE = "FLOWCRAFT_UI_TOKEN"


def require_ui() -> Any:
    """The ``flowcraft.ui`` module, or a [`CliError`][flowcraft.cli.CliError] (exit 3)
    naming the extra to install."""
    try:
        # local import: the ui extra is optional; only `flowcraft ui` loads it
        import flowcraft.ui as ui
    except ImportError as error:
        raise CliError(
            f"flowcraft ui needs the ui extra ({error.name or 'a dependency'} is missing): "
            "pip install 'flowcraft-py[ui]'",
            EXIT_ENVIRONMENT,
        ) from None
    return ui


def ui_command(
    target: StoreTarget | RedisTarget,
    *,
    host: str,
    port: int,
    token: str | None,
    registry: str | None,
    factories: bool,
) -> int:
    """Serve the dashboard until interrupted."""
    ui = require_ui()
    token = token if token is not None else os.environ.get(TOKEN_VARIABLE) or None
    try:
        guard = ui.Guard(host, token)
    except ValueError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    if isinstance(target, StoreTarget):
        if not os.path.isfile(target.path):
            raise CliError(f"--store {target.path!r} does not exist (give the file `flowcraft run --store` wrote)")
        ensure_cwd_importable()  # --registry and stored registries resolve as for `flowcraft resume`
        backend = ui.SqliteBackend(target.path, registry=registry)
    else:
        require_distributed()
        backend = ui.RedisBackend(
            target.url, queue=target.queue, prefix=target.prefix, cluster=target.cluster,
            queue_shards=target.queue_shards,
        )  # fmt: skip
    shown = f"[{host}]" if ":" in host else host
    address = f"http://{shown}:{port}/"
    print(
        f"flowcraft ui: {backend.description} at {address}" + (f"?token={token}" if guard.token else "")
        + " (Ctrl-C stops it)",
        file=sys.stderr, flush=True,
    )  # fmt: skip
    if factories:
        ensure_cwd_importable()
    try:
        ui.serve(backend, host=host, port=port, token=token, factories=factories)
    except OSError as error:
        raise CliError(f"cannot listen on {host}:{port}: {error}", EXIT_ENVIRONMENT) from None
    return 0
