"""``flowcraft ui``: a run dashboard in the browser (the ``ui`` extra).

See runs live, where each one is in its graph, what failed and why; approve or reject
waits for people; cancel runs. Serves a local web app (Starlette on uvicorn) over a run
store file (``--store``) or Redis (``--redis``); nothing is loaded from another host
(Mermaid, which draws the graphs, is vendored into the package from the npm registry by
``scripts/vendor_ui_assets.py``).

Install it with ``pip install 'flowcraft-py[ui]'``; the core stays dependency-free.

Examples:
    ```python
    from flowcraft.ui import Guard, SqliteBackend, create_app

    app = create_app(SqliteBackend("runs.db"), Guard("127.0.0.1"))
    # serve `app` with any ASGI server, or: serve(...)
    ```
"""

from __future__ import annotations

try:
    import jinja2  # noqa: F401
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as _missing:  # pragma: no cover - exercised by the CLI test in a bare env
    raise ImportError(
        f"flowcraft.ui needs the ui extra ({_missing.name} is not installed): pip install 'flowcraft-py[ui]'"
    ) from _missing

from .app import PAGE_SIZE, create_app
from .backend import Backend, RedisBackend, RunListing, RunView, SqliteBackend, StoreUnavailable
from .security import Guard, is_loopback
from .server import serve

__all__ = [
    "PAGE_SIZE",
    "Backend",
    "Guard",
    "RedisBackend",
    "RunListing",
    "RunView",
    "SqliteBackend",
    "StoreUnavailable",
    "create_app",
    "is_loopback",
    "serve",
]
