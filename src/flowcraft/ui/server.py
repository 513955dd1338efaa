"""Serving the dashboard with uvicorn."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .backend import Backend
from .security import Guard

__all__ = ["serve"]


def serve(
    backend: Backend,
    *,
    host: str = "127.0.0.1",
    port: int = 8600,
    token: str | None = None,
    factories: bool = False,
    log_level: str = "warning",
) -> None:
    """Serve the dashboard over ``backend`` until interrupted (blocks).

    Raises:
        ValueError: ``host`` is not a loopback address and no ``token`` is given.
    """
    guard = Guard(host, token)
    app = create_app(backend, guard, factories=factories)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on", proxy_headers=False)
    uvicorn.Server(config).run()
