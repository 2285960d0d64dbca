"""The web UI and REST API: a Starlette app where every route declares who may use it.

Request pipeline (outermost first)
----------------------------------
1. :class:`SecurityHeaders`: CSP without inline script or eval,
   ``frame-ancestors 'none'``, nosniff, Referrer-Policy, COOP/CORP,
   ``Cache-Control: no-store``, HSTS under TLS; on every response.
2. Host check: the ``Host`` header must name this server (defeats DNS
   rebinding: a page of another site that resolves to 127.0.0.1 is refused).
3. Errors: an unexpected exception becomes ``500 {"error", "correlation_id"}``;
   the traceback goes to the log under the same id, never to the client.
4. Per route (:data:`ROUTES`): authentication (session cookie or
   ``Authorization: Bearer`` token), the route's permission
   (:func:`phalanx.web.rbac.allowed`, deny by default; anonymous gets 401,
   a signed-in user without the permission 403), and for state-changing
   methods with a session: the ``X-CSRF-Token`` header must equal the
   session's token and ``Origin`` (or ``Referer``) must be this server.
   State never changes through GET: state-changing routes accept POST only.

Bodies are limited (:data:`MAX_BODY_BYTES`) and validated with bounds; a
bad value is a 400 with a message that names the field. Names, messages and
hosts reach the browser as JSON and are put into the page with
``textContent`` only (see ``static/app.js``); HTML pages are Jinja2
templates with autoescaping.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from phalanx.core.workers import WorkerSummary
from phalanx.engine.runner import RunStatus
from phalanx.security.audit_chain import AuditEntry
from phalanx.stats import StatsSnapshot
from phalanx.web.openapi import build_openapi
from phalanx.web.rbac import Permission, Role, allowed
from phalanx.web.sessions import Session, SessionStore
from phalanx.web.throttle import LoginThrottle

log = logging.getLogger("phalanx.web")

MAX_BODY_BYTES: Final = 64 * 1024
SESSION_COOKIE: Final = "phalanx_session"
MAX_USERS_FIELD: Final = 10_000_000
MAX_RATE_FIELD: Final = 1_000_000.0
_HERE: Final = Path(__file__).parent
_STATIC: Final = {"app.js": "text/javascript", "app.css": "text/css",
                   "admin.js": "text/javascript"}

CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is making a request (from a session or a token)."""

    user: str
    role: Role
    session: Session | None = None  # None for token requests (no cookie: no CSRF)


class Authenticator(Protocol):
    """What the app needs of the account store (see :mod:`phalanx.web.accounts`)."""

    async def check_password(self, user: str, password: str) -> Identity | None: ...
    def check_token(self, token: str) -> Identity | None: ...
    def epoch_of(self, user: str) -> int | None: ...


class RunControl(Protocol):
    """What the app needs of the runner (local) or the master driver."""

    def status(self) -> RunStatus: ...
    @property
    def latest(self) -> StatsSnapshot | None: ...
    def change_target(self, users: int, spawn_rate: float | None = None) -> None: ...
    def request_stop(self) -> None: ...


class RunRequestError(Exception):
    """A control request that cannot be honoured now or with these values (its message is
    safe to show: the handler answers 409 for :class:`RunConflict`, 400 otherwise)."""


class RunConflict(RunRequestError):
    """The request does not fit the current state (e.g. start while a test runs)."""


@dataclass(frozen=True, slots=True)
class StartRequest:
    """A test to start from the UI (already type- and bound-checked by the app)."""

    users: int
    spawn_rate: float
    host: str | None
    run_time: float | None


class SessionControl(RunControl, Protocol):
    """A control that can also start tests and reset stats (a UI-driven local session)."""

    def start(self, request: StartRequest) -> None: ...
    def reset_stats(self) -> None: ...


AuditFn = Callable[[str, str, str, Mapping[str, Any]], None]
"""``audit(actor, source, action, details)``."""


@dataclass(frozen=True, slots=True)
class WebContext:
    """Everything a route handler may use."""

    control: RunControl
    auth: Authenticator
    sessions: SessionStore
    throttle: LoginThrottle
    clock: Callable[[], float]
    allowed_hosts: frozenset[str]
    origins: frozenset[str]
    tls: bool
    audit: AuditFn | None = None
    audit_recent: Callable[[], Sequence[AuditEntry]] | None = None
    behind_tls_proxy: bool = False  # requests must arrive through a trusted proxy as https
    max_users: int = MAX_USERS_FIELD  # the run's --max-users: the UI cannot go above it
    max_spawn_rate: float = MAX_RATE_FIELD  # the run's --max-spawn-rate
    workers: Callable[[], Sequence[WorkerSummary]] | None = None
    run_info: Mapping[str, Any] | None = None


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


Handler = Callable[[Request, WebContext, Identity | None], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route: its method, path, the permission it needs (None: public) and handler."""

    method: str
    path: str
    permission: Permission | None
    handler: Handler


# --- handlers ----------------------------------------------------------------------------


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _page(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_env.get_template(name).render(**context))


async def login_page(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    if who is not None:
        return RedirectResponse("/", status_code=303)
    return _page("login.html", error="")


async def login(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    _check_origin(request, ctx, required=True)
    form = await request.form()
    user = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:1024]
    address = _client(request)
    now = ctx.clock()
    wait = ctx.throttle.wait_needed(user, address, now)
    if wait > 0:
        raise HttpError(429, "too many failed logins; try again later",
                        {"Retry-After": str(math.ceil(wait))})
    if not ctx.throttle.try_begin(user, address):
        raise HttpError(429, "another sign-in for this account or address is in progress",
                        {"Retry-After": "1"})
    try:
        identity = await ctx.auth.check_password(user, password) if user and password else None
    finally:
        ctx.throttle.end(user, address)
    if identity is None:
        ctx.throttle.failed(user, address, ctx.clock())
        # The name only if it is an account: a password typed into the name field must
        # not stay in a log that cannot be edited.
        known = bool(user) and ctx.auth.epoch_of(user) is not None
        _audit(ctx, user if known else "-", address, "login_failed", {"known_user": known})
        # One message for a wrong password and an unknown user: no enumeration.
        return _page("login.html", error="wrong user name or password")
    ctx.throttle.succeeded(user)
    old = request.cookies.get(SESSION_COOKIE)
    ctx.sessions.logout(old)  # rotation: a pre-login id never becomes a session
    epoch = ctx.auth.epoch_of(identity.user) or 0
    session = ctx.sessions.create(identity.user, identity.role.value, epoch, ctx.clock())
    _audit(ctx, identity.user, address, "login", {"role": identity.role.value})
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="strict",
                        secure=ctx.tls, path="/")
    return response


async def logout(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    if who is not None and who.session is not None:
        ctx.sessions.logout(who.session.id)
        _audit(ctx, who.user, _client(request), "logout", {})
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=ctx.tls)
    return response


async def dashboard(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    if who is None:  # pragma: no cover - the route requires view_stats
        raise HttpError(401, "sign in first")
    csrf = who.session.csrf if who.session else ""
    host = (ctx.run_info or {}).get("host") or "the script's host"
    return _page("dashboard.html", user=who.user, role=who.role.value,
                 can_control=allowed(who.role, Permission.RUN_CONTROL), csrf=csrf,
                 default_host=str(host), can_admin=allowed(who.role, Permission.MANAGE_USERS))


async def static(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    name = request.path_params["name"]
    media = _STATIC.get(name)
    if media is None:
        raise HttpError(404, "not found")
    return FileResponse(_HERE / "static" / name, media_type=media)


async def api_status(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    """Run state, users, workers and what the run targets."""
    status = ctx.control.status()
    workers = ctx.workers() if ctx.workers is not None else ()
    return JSONResponse({
        "state": status.state.value,
        "users": status.users,
        "target_users": status.target_users,
        "spawn_rate": status.spawn_rate,
        "elapsed_s": round(status.elapsed, 3),
        "run_time_s": status.run_time,
        "cpu_percent": round(status.cpu_percent, 1),
        "spawn_paused": status.spawn_paused,
        "workers": [
            {"name": w.name, "fingerprint": w.fingerprint, "state": w.state, "users": w.users,
             "cpu_percent": round(w.cpu_percent, 1), "cpu_warning": w.cpu_warning}
            for w in workers
        ],
        "run": dict(ctx.run_info or {}),
        "can_start": hasattr(ctx.control, "start"),
        "user": who.user if who else None,
        "role": who.role.value if who else None,
    })


def _snapshot(ctx: WebContext) -> StatsSnapshot:
    snapshot = ctx.control.latest
    if snapshot is None:
        raise HttpError(404, "no statistics yet")
    return snapshot


async def api_stats(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    """Per-endpoint statistics, failures and exceptions, now."""
    from phalanx.exporters.json_summary import entry_dict

    snapshot = _snapshot(ctx)
    return JSONResponse({
        "duration_s": round(snapshot.duration, 3),
        "total": _live_entry(entry_dict(snapshot.total), snapshot.total),
        "entries": [_live_entry(entry_dict(e), e) for e in snapshot.entries],
        "errors": [{"method": e.method, "name": e.name, "kind": e.kind, "message": e.message,
                    "count": e.count} for e in snapshot.errors],
        "exceptions": [{"task": e.task, "type": e.error_type, "message": e.message,
                        "location": e.location, "count": e.count}
                       for e in snapshot.exceptions],
    })


def _live_entry(row: dict[str, Any], entry: Any) -> dict[str, Any]:
    row["current_rps"] = round(entry.current_rps, 3)
    row["current_failures_per_s"] = round(entry.current_failures_per_s, 3)
    row["current_percentiles_ms"] = {
        f"{q * 100:g}": round(v * 1000.0, 3) for q, v in entry.current_percentiles
    }
    return row


async def stats_csv(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    from phalanx.exporters.csv_files import stats_rows

    snapshot = _snapshot(ctx)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in stats_rows(snapshot):
        writer.writerow(row)
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="phalanx_stats.csv"'})


async def stats_json(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    response = await api_stats(request, ctx, who)
    response.headers["Content-Disposition"] = 'attachment; filename="phalanx_stats.json"'
    return response


async def run_change(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    """Ramp the running test to a new number of users (and spawn rate)."""
    body = await _json_body(request)
    users = _int_field(body, "users", 0, ctx.max_users)
    rate = body.get("spawn_rate")
    spawn_rate = None if rate is None else _float_field(body, "spawn_rate", 0.001,
                                                        ctx.max_spawn_rate)
    unknown = sorted(set(body) - {"users", "spawn_rate"})
    if unknown:
        raise HttpError(400, f"unknown field(s): {', '.join(unknown)[:200]}")
    _call(lambda: ctx.control.change_target(users, spawn_rate))
    _audit(ctx, _who(who), _client(request), "run_change",
           {"users": users, "spawn_rate": spawn_rate})
    return JSONResponse({"ok": True, "users": users, "spawn_rate": spawn_rate})


async def run_stop(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    """Stop the running test gracefully."""
    _call(ctx.control.request_stop)
    _audit(ctx, _who(who), _client(request), "run_stop", {})
    return JSONResponse({"ok": True})


def _session(ctx: WebContext) -> SessionControl:
    control = ctx.control
    if not (hasattr(control, "start") and hasattr(control, "reset_stats")):
        raise HttpError(409, "this run was started from the command line: starting and "
                             "resetting from the UI are not available")
    return control  # type: ignore[return-value]


def _call(action: Callable[[], None]) -> None:
    try:
        action()
    except RunConflict as exc:
        raise HttpError(409, str(exc)[:300]) from None
    except RunRequestError as exc:
        raise HttpError(400, str(exc)[:300]) from None


async def run_start(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    """Start a test (a UI-driven session only)."""
    session = _session(ctx)
    body = await _json_body(request)
    unknown = sorted(set(body) - {"users", "spawn_rate", "host", "run_time"})
    if unknown:
        raise HttpError(400, f"unknown field(s): {', '.join(unknown)[:200]}")
    users = _int_field(body, "users", 1, ctx.max_users)
    spawn_rate = _float_field(body, "spawn_rate", 0.001, ctx.max_spawn_rate)
    host = body.get("host")
    if host is not None and (not isinstance(host, str) or len(host) > 2048):
        raise HttpError(400, "host: expected a URL of at most 2048 characters")
    run_time = body.get("run_time")
    if run_time is not None:
        run_time = _float_field(body, "run_time", 1.0, 30 * 86_400.0)
    start = StartRequest(users=users, spawn_rate=spawn_rate, host=host or None,
                         run_time=run_time)
    _call(lambda: session.start(start))
    _audit(ctx, _who(who), _client(request), "run_start",
           {"users": users, "spawn_rate": spawn_rate, "host": host or None,
            "run_time_s": run_time,
            "script_sha256": (ctx.run_info or {}).get("script_sha256")})
    return JSONResponse({"ok": True})


async def run_reset(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    """Reset the statistics."""
    session = _session(ctx)
    _call(session.reset_stats)
    _audit(ctx, _who(who), _client(request), "run_reset", {})
    return JSONResponse({"ok": True})


async def api_audit(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    """The latest audit log entries and the chain's head hash."""
    entries = ctx.audit_recent() if ctx.audit_recent is not None else ()
    return JSONResponse({
        "enabled": ctx.audit_recent is not None,
        "head": entries[-1].hash if entries else None,
        "entries": [entry.as_dict() for entry in entries],
    })


async def api_runs(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    """The tests of this session, oldest first (the current one last)."""
    history = getattr(ctx.control, "runs", None)
    runs = list(history()) if callable(history) else []
    return JSONResponse({"runs": runs})


async def health(request: Request, ctx: WebContext, who: Identity | None) -> Response:
    return PlainTextResponse("ok")


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/healthz", None, health),
    RouteSpec("GET", "/login", None, login_page),
    RouteSpec("POST", "/login", None, login),
    RouteSpec("POST", "/logout", Permission.VIEW_STATS, logout),
    RouteSpec("GET", "/static/{name}", None, static),
    RouteSpec("GET", "/", Permission.VIEW_STATS, dashboard),
    RouteSpec("GET", "/api/v1/status", Permission.VIEW_STATS, api_status),
    RouteSpec("GET", "/api/v1/stats", Permission.VIEW_STATS, api_stats),
    RouteSpec("GET", "/download/stats.csv", Permission.VIEW_REPORTS, stats_csv),
    RouteSpec("GET", "/download/stats.json", Permission.VIEW_REPORTS, stats_json),
    RouteSpec("POST", "/api/v1/run/change", Permission.RUN_CONTROL, run_change),
    RouteSpec("POST", "/api/v1/run/stop", Permission.RUN_CONTROL, run_stop),
    RouteSpec("POST", "/api/v1/run/start", Permission.RUN_CONTROL, run_start),
    RouteSpec("POST", "/api/v1/run/reset", Permission.RUN_CONTROL, run_reset),
    RouteSpec("GET", "/api/v1/audit", Permission.VIEW_AUDIT, api_audit),
    RouteSpec("GET", "/api/v1/runs", Permission.VIEW_REPORTS, api_runs),
)
"""Every route of the app. A test enumerates it against the role table."""


# --- plumbing ----------------------------------------------------------------------------


def _who(who: Identity | None) -> str:
    return who.user if who is not None else "-"


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "-"


def _audit(ctx: WebContext, actor: str, source: str, action: str,
           details: Mapping[str, Any]) -> None:
    if ctx.audit is not None:
        ctx.audit(actor, source, action, details)


async def _json_body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HttpError(415, "send application/json")
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise HttpError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object")
    return body


def _int_field(body: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise HttpError(400, f"{name}: expected an integer")
    if not low <= value <= high:
        raise HttpError(400, f"{name}: must be between {low} and {high}")
    return value


def _float_field(body: Mapping[str, Any], name: str, low: float, high: float) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HttpError(400, f"{name}: expected a number")
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high):
        raise HttpError(400, f"{name}: must be between {low:g} and {high:g}")
    return number


def _origin_of(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def _check_origin(request: Request, ctx: WebContext, *, required: bool) -> None:
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        origin = _origin_of(referer) if referer else None
    if origin is None:
        if required:
            raise HttpError(403, "missing Origin: cross-site requests are refused")
        return
    if origin.lower() not in ctx.origins:
        raise HttpError(403, "cross-origin request refused")


async def _identify(request: Request, ctx: WebContext) -> Identity | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        identity = ctx.auth.check_token(header[7:].strip())
        if identity is None:
            raise HttpError(401, "invalid or expired token")
        return identity
    session = ctx.sessions.get(request.cookies.get(SESSION_COOKIE), ctx.clock())
    if session is None:
        return None
    try:
        role = Role(session.role)
    except ValueError:  # pragma: no cover - sessions are created with valid roles
        return None
    return Identity(user=session.user, role=role, session=session)


def _endpoint(spec: RouteSpec, ctx: WebContext) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        who = await _identify(request, ctx)
        if spec.permission is not None:
            if who is None:
                if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                    return RedirectResponse("/login", status_code=303)
                raise HttpError(401, "sign in first", {"WWW-Authenticate": "Bearer"})
            if not allowed(who.role, spec.permission):
                raise HttpError(403, "your role does not allow this")
            if spec.method == "POST" and who.session is not None:
                _check_origin(request, ctx, required=True)
                if not who.session.csrf_matches(request.headers.get("x-csrf-token")):
                    raise HttpError(403, "missing or wrong CSRF token")
            elif spec.method == "POST":
                _check_origin(request, ctx, required=False)
        return await spec.handler(request, ctx, who)

    return endpoint


class SecurityHeaders:
    """Adds the security headers to every response; checks Host; hides internal errors."""

    def __init__(self, app: ASGIApp, ctx: WebContext) -> None:
        self._app = app
        self._ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        host = headers.get("host", "").lower()
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"cross-origin-resource-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                    (b"cache-control", b"no-store"),
                ]
                if self._ctx.tls:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        if host not in self._ctx.allowed_hosts:
            await _send_error(send_with_headers, 421, "unknown host name", None)
            return
        if self._ctx.behind_tls_proxy and scope.get("scheme") != "https":
            # uvicorn sets https only for a trusted proxy's X-Forwarded-Proto: anything
            # else came around the proxy, or through it in clear.
            await _send_error(send_with_headers, 403, "connect through the HTTPS proxy", None)
            return
        try:
            await self._app(scope, receive, send_with_headers)
        except Exception:  # logged (with its correlation id) by internal_error below
            if not started:  # pragma: no cover - Starlette answers before re-raising
                await _send_error(send_with_headers, 500, "internal error", None)


async def _send_error(send: Callable[[Message], Awaitable[None]], status: int, message: str,
                      correlation: str | None, headers: Mapping[str, str] | None = None) -> None:
    payload: dict[str, Any] = {"error": message}
    if correlation is not None:
        payload["correlation_id"] = correlation
    body = json.dumps(payload).encode()
    raw_headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def create_app(ctx: WebContext, extra_routes: Sequence[RouteSpec] = ()) -> ASGIApp:
    """The ASGI app for ``ctx``: :data:`ROUTES` (and ``extra_routes``, e.g. the admin
    pages) behind :class:`SecurityHeaders`."""
    specs = [*ROUTES, *extra_routes]
    document = build_openapi(specs, _version())

    async def openapi(request: Request, ctx: WebContext, who: Identity | None) -> Response:
        """This document."""
        return JSONResponse(document)

    specs.append(RouteSpec("GET", "/api/v1/openapi.json", Permission.VIEW_STATS, openapi))
    routes = [Route(spec.path, _endpoint(spec, ctx), methods=[spec.method]) for spec in specs]

    app = Starlette(
        routes=routes,
        exception_handlers={HttpError: http_error, 404: http_status, 405: http_status,
                            413: http_status, Exception: internal_error},
        max_body_size=MAX_BODY_BYTES,
    )
    return SecurityHeaders(app, ctx)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("phalanx")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


_STATUS_MESSAGES: Final = {
    404: "not found",
    405: "method not allowed (state never changes through GET)",
    413: f"request body over {MAX_BODY_BYTES} bytes",
}


async def http_error(request: Request, exc: Exception) -> Response:
    status = exc.status if isinstance(exc, HttpError) else 400
    message = exc.message if isinstance(exc, HttpError) else "bad request"
    headers = exc.headers if isinstance(exc, HttpError) else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def http_status(request: Request, exc: Exception) -> Response:
    status = int(getattr(exc, "status_code", 400))
    return JSONResponse({"error": _STATUS_MESSAGES.get(status, "request refused")},
                        status_code=status)


async def internal_error(request: Request, exc: Exception) -> Response:
    """No traceback, path or secret to the client: a correlation id that the log line has."""
    correlation = secrets.token_hex(8)
    log.error("internal error in %s %s (correlation id %s)", request.method, request.url.path,
              correlation, exc_info=exc)
    return JSONResponse({"error": "internal error", "correlation_id": correlation},
                        status_code=500)
