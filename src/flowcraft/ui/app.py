"""The dashboard's routes: the runs list, a run's page, its live stream, resume and cancel.

```text
GET  /                         runs: ?state=S&q=TEXT&page=N
GET  /runs/{id}                a run: graph, timeline, waits, context, error
GET  /runs/{id}/panel          the run page's side panel (the page reloads it live)
GET  /runs/{id}/stream         server-sent events: node states and new timeline rows
POST /runs/{id}/resume         wait, value (JSON), action, key (idempotency), csrf
POST /runs/{id}/cancel         csrf
GET  /static/...               the page's CSS and script, and the vendored Mermaid
```
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..engine.errors import RunNotFoundError
from ..events import RunEvent, RunStarted
from ..waits import InvalidResumeValue, UnknownWaitError, WaitAlreadyResolved
from .backend import RUN_STATES, Backend, RunView, StoreUnavailable
from .graph import diagram_of
from .security import SESSION_COOKIE, TOKEN_COOKIE, TOKEN_HEADER, Guard
from .timeline import NODE_STATES, node_states, timeline_rows
from .views import environment

__all__ = ["PAGE_SIZE", "create_app"]

PAGE_SIZE = 50
"""Runs on one page of the list."""
MAX_BODY = 256 * 1024
"""Bytes a POST may send."""
STREAM_POLL = 0.4
"""Seconds between two looks at a run for its live stream."""

STATIC = Path(__file__).with_name("static")
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class _PageError(Exception):
    def __init__(self, code: int, title: str, message: str) -> None:
        super().__init__(message)
        self.code, self.title, self.message = code, title, message


class _Guarded:
    """ASGI middleware: Host and token checks, the session cookie, security headers."""

    def __init__(self, app: ASGIApp, guard: Guard, error_page: Callable[[int, str, str], Response]) -> None:
        self.app, self.guard, self.error_page = app, guard, error_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        guard = self.guard
        refusal: Response | None = None
        if not guard.host_allowed(request.headers.get("host")):
            refusal = self.error_page(
                400, "Host not allowed",
                "This dashboard listens on a loopback address and answers only requests for localhost "
                "or 127.0.0.1 (another host name could be a DNS rebinding attack).",
            )  # fmt: skip
        elif guard.token is not None:
            query_token = request.query_params.get("token")
            if query_token is not None and guard.token_ok(query_token):
                # first visit with ?token=: keep it in a cookie, drop it from the address bar
                rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                target = request.url.path + ("?" + urllib.parse.urlencode(rest) if rest else "")
                refusal = RedirectResponse(target, status_code=303)
                refusal.set_cookie(TOKEN_COOKIE, query_token, httponly=True, samesite="strict")
            else:
                presented = request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE)
                auth = request.headers.get("authorization", "")
                if auth.lower().startswith("bearer "):
                    presented = auth[7:].strip()
                if not guard.token_ok(presented):
                    refusal = self.error_page(
                        401, "Token required",
                        "This dashboard needs its access token: open the address `flowcraft ui` printed "
                        "(…/?token=…), or send the header 'Authorization: Bearer TOKEN'.",
                    )  # fmt: skip
        if refusal is not None:
            await self._secured(refusal, None)(scope, receive, send)
            return
        session = request.cookies.get(SESSION_COOKIE)
        new_session = None
        if not session:
            new_session = session = guard.new_session()
        scope.setdefault("state", {})["session"] = session

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.encode(), v.encode()) for k, v in _security_headers().items()]
                if new_session is not None:
                    cookie: SimpleCookie = SimpleCookie()
                    cookie[SESSION_COOKIE] = new_session
                    cookie[SESSION_COOKIE]["httponly"] = True
                    cookie[SESSION_COOKIE]["samesite"] = "Strict"
                    cookie[SESSION_COOKIE]["path"] = "/"
                    headers.append((b"set-cookie", cookie.output(header="").strip().encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _secured(self, response: Response, _: None) -> Response:
        for key, value in _security_headers().items():
            response.headers[key] = value
        return response


def _security_headers() -> dict[str, str]:
    return {
        "content-security-policy": _CSP,
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
    }


def create_app(backend: Backend, guard: Guard, *, factories: bool = False, root_path: str = "") -> Starlette:
    """The dashboard as an ASGI app over ``backend``, guarded by ``guard``.

    Args:
        backend: where the runs are ([`SqliteBackend`][flowcraft.ui.backend.SqliteBackend]
            or [`RedisBackend`][flowcraft.ui.backend.RedisBackend]).
        guard: the access rules ([`Guard`][flowcraft.ui.security.Guard]).
        factories: draw factory flows by importing their factory (``--factories``).
        root_path: the path prefix the app is mounted under, if any.
    """
    env = environment()
    root = root_path.rstrip("/")
    resume_note = (
        "Waits on Redis cannot be resumed from here yet (use a run store file)."
        if not backend.can_resume
        else "This wait cannot be resumed from here."
    )

    def render(name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = env.get_template(name).render(root=root, where=backend.description, **values)
        return HTMLResponse(html, status_code=status)

    def error_page(code: int, title: str, message: str) -> Response:
        return render("error.html", code, code=code, title=title, message=message)

    def csrf_of(request: Request) -> str:
        return guard.csrf_token(str(request.scope["state"]["session"]))

    def page(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except _PageError as error:
                return error_page(error.code, error.title, error.message)
            except RunNotFoundError as error:
                return error_page(404, "Run not found", str(error))
            except StoreUnavailable as error:
                return error_page(503, "Run store unavailable", str(error))

        wrapped.__name__ = handler.__name__
        return wrapped

    # ---- the list ----

    @page
    async def runs(request: Request) -> Response:
        params = request.query_params
        state = params.get("state") or None
        if state is not None and state not in RUN_STATES:
            raise _PageError(400, "Unknown state", f"No run state {state!r}: one of {', '.join(RUN_STATES)}")
        search = (params.get("q") or "").strip()
        if len(search) > 200:
            raise _PageError(400, "Search too long", "Search for at most 200 characters of a run id")
        try:
            number = int(params.get("page") or "1")
        except ValueError:
            raise _PageError(
                400, "Bad page number", f"page must be a whole number, got {params.get('page')!r}"
            ) from None
        if number < 1:
            raise _PageError(400, "Bad page number", f"page must be 1 or more, got {number}")
        listing = await backend.listing(state, search, (number - 1) * PAGE_SIZE, PAGE_SIZE)
        pages = max(1, -(-listing.total // PAGE_SIZE))

        def query(**changes: Any) -> str:
            current = {"state": state, "q": search or None, "page": number if number > 1 else None}
            current.update(changes)
            kept = {k: v for k, v in current.items() if v is not None and not (k == "page" and v == 1)}
            return "?" + urllib.parse.urlencode(kept) if kept else ""

        return render(
            "runs.html", listing=listing, state=state, search=search, page=number, pages=pages, states=RUN_STATES,
            counts=listing.counts, total_all=sum(listing.counts.values()), query=query,
        )  # fmt: skip

    # ---- a run ----

    def panel_values(request: Request, view: RunView, values: Mapping[str, str] | None = None) -> dict[str, Any]:
        return {
            "view": view, "csrf": csrf_of(request), "can_resume": backend.can_resume, "resume_note": resume_note,
            "new_key": lambda: uuid.uuid4().hex, "values": dict(values or {}),
        }  # fmt: skip

    async def run_page(request: Request, run_id: str, status: int = 200, **extra: Any) -> Response:
        view = await backend.run(run_id)
        entries = await backend.events(run_id, "0-0") if view.events else []
        started = _started(entries, view)
        diagram = diagram_of(view.graph, factories=factories)
        nodes = node_states([event for _, event in entries], view.waits, view.status)
        data = {
            "ids": diagram.ids if diagram else {}, "nodes": nodes, "state": view.status.state,
            "after": entries[-1][0] if entries else "0-0",
            "stream": f"{root}/runs/{urllib.parse.quote(run_id, safe='')}/stream",
            "panel": f"{root}/runs/{urllib.parse.quote(run_id, safe='')}/panel",
            "waits": [wait.id for wait in view.waits], "started": started,
        }  # fmt: skip
        return render(
            "run.html", status, diagram=diagram, rows=timeline_rows(entries, started), data=data,
            node_states=NODE_STATES, notice=extra.pop("notice", None), problem=extra.pop("problem", None),
            **panel_values(request, view, extra.pop("values", None)),
        )  # fmt: skip

    @page
    async def run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        notice = None
        if "resumed" in request.query_params:
            notice = f"Wait {request.query_params['resumed']} resumed: the run goes on."
        elif "cancelled" in request.query_params:
            notice = f"Run {request.query_params['cancelled']}."
        return await run_page(request, run_id, notice=notice)

    @page
    async def panel(request: Request) -> Response:
        view = await backend.run(request.path_params["run_id"])
        return render("panel.html", **panel_values(request, view))

    async def stream(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        after = request.query_params.get("after") or "0-0"
        try:
            view = await backend.run(run_id)
        except RunNotFoundError as error:
            return error_page(404, "Run not found", str(error))
        except StoreUnavailable as error:
            return error_page(503, "Run store unavailable", str(error))
        return StreamingResponse(
            _updates(backend, run_id, after, view, request), media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )  # fmt: skip

    # ---- changes ----

    async def form_of(request: Request) -> dict[str, str]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise _PageError(415, "Unsupported form", "Send the form as application/x-www-form-urlencoded")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise _PageError(413, "Form too large", f"A form may send at most {MAX_BODY} bytes")
        try:
            fields = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError) as error:
            raise _PageError(400, "Unreadable form", f"The form could not be read: {error}") from None
        form = {key: values[-1] for key, values in fields.items()}
        if not guard.csrf_ok(request.cookies.get(SESSION_COOKIE), form.get("csrf")):
            raise _PageError(
                403, "Form expired",
                "The form's CSRF token does not match this browser's session (a page of another site, or the "
                "dashboard restarted): reload the run's page and submit again.",
            )  # fmt: skip
        return form

    @page
    async def resume(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        form = await form_of(request)
        wait_id = form.get("wait", "")
        text = form.get("value", "").strip()
        action = form.get("action") or None
        key = form.get("key", "")
        if not wait_id or len(wait_id) > 500:
            raise _PageError(400, "No wait named", "The form names no wait: reload the run's page")
        if not key or len(key) > 200:
            raise _PageError(400, "No idempotency key", "The form has no idempotency key: reload the run's page")
        view = await backend.run(run_id)
        wait = next((w for w in view.waits if w.id == wait_id), None)
        if wait is None:
            raise _PageError(
                404, "Wait not found",
                f"Run {run_id} has no open wait {wait_id!r} (open waits: "
                f"{', '.join(w.id for w in view.waits) or 'none'}); it may have been resumed already.",
            )  # fmt: skip
        try:
            value = json.loads(text) if text else None
        except json.JSONDecodeError as error:
            return await run_page(
                request, run_id, 400, values={wait_id: text},
                problem=f"The value for {wait_id} is not JSON ({error.msg} at line {error.lineno} column "
                f"{error.colno}): write a JSON value, e.g. \"text\" in quotes, 42, true or {{\"k\": 1}}; the wait "
                "stays open.",
            )  # fmt: skip
        if wait.actions and action not in wait.actions:
            return await run_page(
                request, run_id, 400, values={wait_id: text},
                problem=f"Wait {wait_id} allows the actions {', '.join(wait.actions)}, not {action!r}; the wait "
                "stays open.",
            )  # fmt: skip
        if not wait.actions and action == "default":
            action = None
        try:
            await backend.resume(run_id, wait_id, value, action, key)
        except (InvalidResumeValue, WaitAlreadyResolved, UnknownWaitError) as error:
            return await run_page(request, run_id, 409, values={wait_id: text}, problem=str(error))
        quoted = urllib.parse.quote(run_id, safe="")
        return RedirectResponse(f"{root}/runs/{quoted}?resumed={urllib.parse.quote(wait_id)}", status_code=303)

    @page
    async def cancel(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        await form_of(request)
        before = (await backend.run(run_id)).status
        if before.finished:
            state, word = before.state, f"had already ended ({before.state}): nothing to cancel"
        else:
            state = await backend.cancel(run_id, "cancelled from the dashboard")
            word = "cancelled" if state == "cancelled" else f"had already ended ({state}): nothing to cancel"
        quoted = urllib.parse.quote(run_id, safe="")
        return RedirectResponse(f"{root}/runs/{quoted}?cancelled={urllib.parse.quote(word)}", status_code=303)

    async def not_found(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code == 405:
            return error_page(405, "Method not allowed", f"{request.method} is not allowed on {request.url.path}")
        return error_page(404, "Page not found", f"There is no page at {request.url.path}")

    async def server_error(request: Request, exc: Exception) -> Response:
        return error_page(500, "Internal error", f"The dashboard failed: {type(exc).__name__}: {exc}")

    routes = [
        Route("/", runs),
        Route("/runs/{run_id}", run),
        Route("/runs/{run_id}/panel", panel),
        Route("/runs/{run_id}/stream", stream),
        Route("/runs/{run_id}/resume", resume, methods=["POST"]),
        Route("/runs/{run_id}/cancel", cancel, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await backend.aclose()

    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found, 405: not_found, 500: server_error},
        lifespan=lifespan,
    )
    app.add_middleware(_Guarded, guard=guard, error_page=error_page)
    return app


def _started(entries: list[tuple[str, RunEvent]], view: RunView) -> float | None:
    for _, event in entries:
        if isinstance(event, RunStarted):
            return event.time
    return view.status.created_at


def _sse(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n".encode()


async def _updates(backend: Backend, run_id: str, after: str, view: RunView, request: Request) -> AsyncIterator[bytes]:
    """The run's live stream: an ``update`` at once, then whenever its state, waits or
    events change; the last one (``final``) once it has stopped, with every event."""
    every = await backend.events(run_id, "0-0") if view.events else []
    started = _started(every, view)
    events = [event for _, event in every]
    last = every[-1][0] if every else "0-0"
    rows = [(entry_id, event) for entry_id, event in every if _after(entry_id, after)]
    signature = (view.status.state, tuple(w.id for w in view.waits))
    changed, quiet = True, 0.0
    try:
        while True:
            if changed or rows:
                final = view.status.finished
                yield _sse("update", {
                    "state": view.status.state, "nodes": node_states(events, view.waits, view.status),
                    "rows": timeline_rows(rows, started), "after": last, "waits": [w.id for w in view.waits],
                    "final": final,
                })  # fmt: skip
                rows, changed, quiet = [], False, 0.0
                if final:
                    return
            await asyncio.sleep(STREAM_POLL)
            quiet += STREAM_POLL
            if quiet > 15:
                quiet = 0.0
                yield b": keep-alive\n\n"
            if await request.is_disconnected():
                return
            view = await backend.run(run_id)  # first: once it has stopped, every event is written
            new = await backend.events(run_id, last) if view.events else []
            if new:
                last = new[-1][0]
                events += [event for _, event in new]
                rows += new
            now = (view.status.state, tuple(w.id for w in view.waits))
            changed, signature = now != signature, now
    except (StoreUnavailable, RunNotFoundError) as error:
        yield _sse("gone", {"message": str(error)})


def _after(entry_id: str, mark: str) -> bool:
    def key(text: str) -> tuple[int, int]:
        head, _, tail = text.partition("-")
        return (int(head) if head.isdigit() else 0, int(tail) if tail.isdigit() else 0)

    return key(entry_id) > key(mark)
