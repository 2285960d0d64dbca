"""The web app served by a real uvicorn on 127.0.0.1: each security control attacked.

The account store is a small in-test authenticator (argon2 has its own
tests); the runner is a stand-in with a real stats snapshot whose names
carry markup.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import ssl
import warnings
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from tests.support.web import DeferredApp, Reply, fetch, session_cookie

from phalanx.core.results import RequestFailure
from phalanx.engine.runner import RunState, RunStatus
from phalanx.stats import Aggregator, Recorder, StatsSnapshot
from phalanx.web.app import (
    CSP,
    MAX_BODY_BYTES,
    ROUTES,
    SESSION_COOKIE,
    Identity,
    RunRequestError,
    StartRequest,
    WebContext,
    create_app,
)
from phalanx.web.rbac import Role, allowed
from phalanx.web.server import WebServer, check_bind
from phalanx.web.sessions import SessionStore
from phalanx.web.throttle import LoginThrottle

XSS = '<script>alert("x")</script>"><img src=x onerror=alert(1)>'
PASSWORDS = {"vera": ("viewer-password!", Role.VIEWER), "otto": ("operator-password!",
             Role.OPERATOR), "ada": ("admin-password!!", Role.ADMIN)}
TOKEN = "phx_test_token_value"


class FakeAuth:
    def __init__(self) -> None:
        self.epochs = {name: 1 for name in PASSWORDS}
        self.delay = 0.0
        self.checks = 0

    async def check_password(self, user: str, password: str) -> Identity | None:
        self.checks += 1
        if self.delay:
            await asyncio.sleep(self.delay)  # what argon2 in a thread takes
        known = PASSWORDS.get(user)
        if known is None or known[0] != password:
            return None
        return Identity(user=user, role=known[1])

    def check_token(self, token: str) -> Identity | None:
        return Identity(user="ci", role=Role.OPERATOR) if token == TOKEN else None

    def epoch_of(self, user: str) -> int | None:
        return self.epochs.get(user)


def _snapshot() -> StatsSnapshot:
    recorder = Recorder(0.0)
    recorder.record("GET", f"/items/{XSS}", 0.01, 10, None)
    recorder.record("POST", "/login", 0.02, 10, RequestFailure("http_500", f"boom {XSS}"))
    aggregator = Aggregator(start=0.0)
    aggregator.apply(recorder.take_delta(1.0))
    return aggregator.snapshot(1.0)


@dataclass
class FakeControl:
    stopped: bool = False
    changes: list[tuple[int, float | None]] = field(default_factory=list)
    started: list[StartRequest] = field(default_factory=list)
    resets: int = 0
    explode: bool = False
    snapshot: StatsSnapshot = field(default_factory=_snapshot)

    def status(self) -> RunStatus:
        if self.explode:
            raise RuntimeError("secret internal detail /srv/app/private.py")
        return RunStatus(state=RunState.RUNNING, users=5, target_users=5, spawn_rate=1.0,
                         class_counts=(("U", 5),), elapsed=3.0, run_time=None)

    @property
    def latest(self) -> StatsSnapshot | None:
        return self.snapshot

    def change_target(self, users: int, spawn_rate: float | None = None) -> None:
        self.changes.append((users, spawn_rate))

    def request_stop(self) -> None:
        self.stopped = True

    def start(self, request: StartRequest) -> None:
        if request.host is not None and "forbidden" in request.host:
            raise RunRequestError(f"host {request.host} is outside the allowed targets")
        self.started.append(request)

    def reset_stats(self) -> None:
        self.resets += 1



@dataclass
class Site:
    server: WebServer
    control: FakeControl
    auth: FakeAuth
    audit: list[tuple[str, str, str, Mapping[str, Any]]]
    ssl_context: ssl.SSLContext | None = None

    @property
    def origin(self) -> str:
        return self.server.url

    async def request(self, method: str, path: str, *, body: bytes | None = None,
                      headers: Mapping[str, str] | None = None) -> Reply:
        def call() -> Reply:
            return fetch(self.server.port, method, path, body=body, headers=headers,
                         ssl_context=self.ssl_context)

        return await asyncio.to_thread(call)

    async def login(self, user: str, password: str | None = None) -> str:
        """Sign in; return the session cookie value."""
        secret = password if password is not None else PASSWORDS[user][0]
        form = f"username={user}&password={secret}".encode()
        reply = await self.request("POST", "/login", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Origin": self.origin})
        assert reply.status == 303, reply.body
        return session_cookie(reply)

    async def csrf(self, cookie: str) -> str:
        page = await self.request("GET", "/", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
        text = page.body.decode()
        marker = 'name="csrf-token" content="'
        start = text.index(marker) + len(marker)
        return text[start:text.index('"', start)]



@pytest.fixture
async def site() -> AsyncIterator[Site]:
    async with _site(tls=None) as running:
        yield running


@contextlib.asynccontextmanager
async def _site(tls: tuple[str, str] | None, ssl_context: ssl.SSLContext | None = None
                ) -> AsyncIterator[Site]:
    control = FakeControl()
    auth = FakeAuth()
    audit: list[tuple[str, str, str, Mapping[str, Any]]] = []
    clock = asyncio.get_running_loop().time
    sessions = SessionStore(auth.epoch_of)
    ctx_args: dict[str, Any] = dict(
        control=control, auth=auth, sessions=sessions,
        throttle=LoginThrottle(free_failures=3, base_delay=30.0),
        clock=clock, tls=tls is not None,
        audit=lambda actor, source, action, details: audit.append(
            (actor, source, action, details)),
    )
    # The port is known once bound: bind first with a placeholder app, then set the origins.
    deferred = DeferredApp()
    server = WebServer(deferred, "127.0.0.1", 0,
                       certfile=tls[0] if tls else None, keyfile=tls[1] if tls else None)
    await server.start()
    try:
        host = f"127.0.0.1:{server.port}"
        ctx = WebContext(allowed_hosts=frozenset({host}), origins=frozenset({server.url}),
                         max_users=200_000, **ctx_args)
        deferred.target = create_app(ctx)
        yield Site(server, control, auth, audit, ssl_context)
    finally:
        await server.stop()



def _session(cookie: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={cookie}"}


async def _as(site: Site, role: Role | None) -> dict[str, str]:
    """Headers that make a request as ``role`` (None: anonymous), CSRF token included."""
    if role is None:
        return {"Origin": site.origin}
    user = {Role.VIEWER: "vera", Role.OPERATOR: "otto", Role.ADMIN: "ada"}[role]
    cookie = await site.login(user)
    return {**_session(cookie), "X-CSRF-Token": await site.csrf(cookie), "Origin": site.origin}


@pytest.mark.parametrize("role", [None, Role.VIEWER, Role.OPERATOR, Role.ADMIN],
                         ids=["anonymous", "viewer", "operator", "admin"])
async def test_every_route_answers_exactly_as_the_role_table_says(site: Site,
                                                                   role: Role | None) -> None:
    headers = await _as(site, role)
    for spec in ROUTES:
        if spec.path == "/logout":
            continue  # ends the session: checked on its own
        path = spec.path.replace("{name}", "app.js")
        body = {"/api/v1/run/change": b'{"users": 3}',
                "/api/v1/run/start": b'{"users": 3, "spawn_rate": 1}'}.get(spec.path, b"{}")
        extra = {"Content-Type": "application/json"} if spec.method == "POST" else {}
        if spec.path == "/login":
            extra = {"Content-Type": "application/x-www-form-urlencoded"}
            body = b"username=nobody&password=wrong-password"
        reply = await site.request(spec.method, path, body=body if spec.method == "POST" else None,
                                   headers={**headers, **extra})
        if spec.permission is None:
            assert reply.status < 400, (spec, reply.status, reply.body)
        elif role is None:
            assert reply.status == 401, (spec, reply.status)
        elif allowed(role, spec.permission):
            assert reply.status < 400, (spec, role, reply.status, reply.body)
        else:
            assert reply.status == 403, (spec, role, reply.status)


async def test_every_response_carries_the_security_headers(site: Site) -> None:
    for method, path in [("GET", "/login"), ("GET", "/api/v1/stats"), ("GET", "/nope"),
                         ("GET", "/static/app.js"), ("POST", "/api/v1/run/stop")]:
        reply = await site.request(method, path, headers={"Origin": site.origin})
        csp = reply.headers["content-security-policy"]
        assert csp == CSP
        assert "'unsafe-inline'" not in csp
        assert "'unsafe-eval'" not in csp
        assert "frame-ancestors 'none'" in csp
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["referrer-policy"] == "same-origin"
        assert reply.headers["cross-origin-opener-policy"] == "same-origin"
        assert reply.headers["cross-origin-resource-policy"] == "same-origin"
        assert "access-control-allow-origin" not in reply.headers
        assert "strict-transport-security" not in reply.headers  # plain HTTP on loopback


async def test_state_never_changes_through_get(site: Site) -> None:
    headers = await _as(site, Role.ADMIN)
    for path in ("/api/v1/run/stop", "/api/v1/run/change"):
        reply = await site.request("GET", path, headers=headers)
        assert reply.status == 405
    assert not site.control.stopped


async def test_csrf_token_and_origin_are_both_required(site: Site) -> None:
    headers = await _as(site, Role.OPERATOR)
    cookie_only = {"Cookie": headers["Cookie"], "Origin": site.origin}
    attempts = [
        cookie_only,
        {**cookie_only, "X-CSRF-Token": "guess"},
        {**headers, "Origin": "http://evil.example"},
        {"Cookie": headers["Cookie"], "X-CSRF-Token": headers["X-CSRF-Token"]},
        {"Cookie": headers["Cookie"], "X-CSRF-Token": headers["X-CSRF-Token"],
         "Referer": "http://evil.example/page"},
    ]
    for attempt in attempts:
        reply = await site.request("POST", "/api/v1/run/stop", headers=attempt)
        assert reply.status == 403, attempt
    assert not site.control.stopped
    referer_ok = {"Cookie": headers["Cookie"], "X-CSRF-Token": headers["X-CSRF-Token"],
                  "Referer": f"{site.origin}/"}
    assert (await site.request("POST", "/api/v1/run/stop", headers=referer_ok)).status == 200
    assert site.control.stopped
    assert site.audit[-1][:3] == ("otto", "127.0.0.1", "run_stop")


async def test_a_foreign_host_name_is_refused(site: Site) -> None:
    reply = await site.request("GET", "/login", headers={"Host": "rebind.evil.example:8089"})
    assert reply.status == 421


async def test_login_gives_one_message_for_unknown_users_and_wrong_passwords(site: Site) -> None:
    pages = []
    for user, password in [("nobody", "whatever-password"), ("vera", "wrong-password!!")]:
        reply = await site.request("POST", "/login", body=f"username={user}&password={password}"
                                   .encode(), headers={
                                       "Content-Type": "application/x-www-form-urlencoded",
                                       "Origin": site.origin})
        assert reply.status == 200
        assert not reply.cookies
        pages.append(reply.body)
    assert pages[0] == pages[1]
    assert b"wrong user name or password" in pages[0]
    assert [entry[2] for entry in site.audit] == ["login_failed", "login_failed"]
    # an unknown name (perhaps a password typed into the wrong field) is not kept
    assert [entry[0] for entry in site.audit] == ["-", "vera"]


async def test_repeated_failed_logins_are_throttled_with_429(site: Site) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": site.origin}
    statuses = []
    for _ in range(6):
        reply = await site.request("POST", "/login", body=b"username=ada&password=nope-nope-nope",
                                   headers=form)
        statuses.append(reply.status)
    assert statuses[:4] == [200, 200, 200, 200]
    assert statuses[4:] == [429, 429]
    # Even the right password waits now: the throttle does not reveal it.
    right = f"username=ada&password={PASSWORDS['ada'][0]}".encode()
    reply = await site.request("POST", "/login", body=right, headers=form)
    assert reply.status == 429
    assert int(reply.headers["retry-after"]) > 0


async def test_login_rotates_the_session_and_logout_ends_it(site: Site) -> None:
    planted = "attacker-chosen-session-id"
    form = f"username=vera&password={PASSWORDS['vera'][0]}".encode()
    reply = await site.request("POST", "/login", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Origin": site.origin,
        "Cookie": f"{SESSION_COOKIE}={planted}"})
    cookie = session_cookie(reply)
    assert cookie != planted
    header = next(h for h in reply.cookies if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in header
    assert "SameSite=strict" in header or "SameSite=Strict" in header
    assert "Secure" not in header  # plain HTTP on loopback
    assert (await site.request("GET", "/api/v1/status", headers=_session(planted))).status == 401
    assert (await site.request("GET", "/api/v1/status", headers=_session(cookie))).status == 200
    token = await site.csrf(cookie)
    out = await site.request("POST", "/logout", headers={
        **_session(cookie), "X-CSRF-Token": token, "Origin": site.origin})
    assert out.status == 303
    assert (await site.request("GET", "/api/v1/status", headers=_session(cookie))).status == 401


async def test_a_password_change_ends_existing_sessions(site: Site) -> None:
    cookie = await site.login("otto")
    assert (await site.request("GET", "/api/v1/status", headers=_session(cookie))).status == 200
    site.auth.epochs["otto"] += 1  # what a reset-password or role change does
    assert (await site.request("GET", "/api/v1/status", headers=_session(cookie))).status == 401


async def test_bearer_tokens_work_without_cookies_and_bad_ones_are_refused(site: Site) -> None:
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert (await site.request("GET", "/api/v1/status", headers=good)).status == 200
    reply = await site.request("POST", "/api/v1/run/change", body=b'{"users": 7}',
                               headers={**good, "Content-Type": "application/json"})
    assert reply.status == 200
    assert site.control.changes == [(7, None)]
    bad = {"Authorization": "Bearer phx_forged"}
    assert (await site.request("GET", "/api/v1/status", headers=bad)).status == 401


@pytest.mark.parametrize(("body", "status", "message"), [
    (b'{"users": -1}', 400, "users"),
    (b'{"users": "10"}', 400, "users"),
    (b'{"users": true}', 400, "users"),
    (b'{"users": 99999999999}', 400, "users"),
    (b'{"users": 5, "spawn_rate": 0}', 400, "spawn_rate"),
    (b'{"users": 5, "spawn_rate": NaN}', 400, "spawn_rate"),
    (b'{"users": 5, "spawn_rate": Infinity}', 400, "spawn_rate"),
    (b'{"users": 5, "host": "http://evil"}', 400, "unknown field"),
    (b'[1, 2]', 400, "object"),
    (b'{"users": ', 400, "JSON"),
])
async def test_bad_input_gets_a_clear_4xx_and_changes_nothing(
        site: Site, body: bytes, status: int, message: str) -> None:
    headers = {**await _as(site, Role.OPERATOR), "Content-Type": "application/json"}
    reply = await site.request("POST", "/api/v1/run/change", body=body, headers=headers)
    assert reply.status == status
    assert message in reply.json()["error"]
    assert site.control.changes == []


async def test_oversized_and_non_json_bodies_are_refused(site: Site) -> None:
    headers = await _as(site, Role.OPERATOR)
    big = b'{"users": 1, "pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    reply = await site.request("POST", "/api/v1/run/change", body=big,
                               headers={**headers, "Content-Type": "application/json"})
    assert reply.status == 413
    reply = await site.request("POST", "/api/v1/run/change", body=b"users=1",
                               headers={**headers, "Content-Type": "text/plain"})
    assert reply.status == 415
    assert site.control.changes == []


async def test_internal_errors_show_a_correlation_id_and_nothing_else(
        site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="phalanx.web")
    headers = await _as(site, Role.VIEWER)
    site.control.explode = True
    reply = await site.request("GET", "/api/v1/status", headers=headers)
    assert reply.status == 500
    payload = reply.json()
    assert set(payload) == {"error", "correlation_id"}
    assert b"secret internal detail" not in reply.body
    assert b"Traceback" not in reply.body
    assert b".py" not in reply.body
    logged = [r for r in caplog.records if payload["correlation_id"] in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None


async def test_markup_in_names_and_messages_reaches_the_browser_only_as_json_text(
        site: Site) -> None:
    headers = await _as(site, Role.VIEWER)
    reply = await site.request("GET", "/api/v1/stats", headers=headers)
    assert reply.headers["content-type"].startswith("application/json")
    names = [entry["name"] for entry in reply.json()["entries"]]
    assert f"/items/{XSS}" in names
    page = await site.request("GET", "/", headers=headers)
    assert b"<script>alert" not in page.body
    script = (Path(__file__).parents[3] / "src/phalanx/web/static/app.js").read_text()
    assert "innerHTML" not in script
    assert "insertAdjacentHTML" not in script


async def test_downloads_are_formula_safe_csv_and_json(site: Site) -> None:
    headers = await _as(site, Role.VIEWER)
    csv_reply = await site.request("GET", "/download/stats.csv", headers=headers)
    assert csv_reply.status == 200
    assert csv_reply.headers["content-disposition"].startswith("attachment")
    assert csv_reply.body.decode().splitlines()[0].startswith("Type,Name,Request Count")
    json_reply = await site.request("GET", "/download/stats.json", headers=headers)
    assert json_reply.json()["total"]["requests"] == 2


def test_a_non_loopback_bind_without_tls_is_refused() -> None:
    from phalanx.core.errors import ConfigError

    check_bind("127.0.0.1", tls=False)
    check_bind("::1", tls=False)
    check_bind("0.0.0.0", tls=True)
    for host in ("0.0.0.0", "10.1.2.3", "::", "example.test"):
        with pytest.raises(ConfigError, match="in clear"):
            check_bind(host, tls=False)


async def test_under_tls_cookies_are_secure_and_hsts_is_sent(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with _site((str(cert_file), str(key_file)), context) as running:
        assert running.origin.startswith("https://")
        form = f"username=vera&password={PASSWORDS['vera'][0]}".encode()
        reply = await running.request("POST", "/login", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Origin": running.origin})
        header = next(h for h in reply.cookies if h.startswith(SESSION_COOKIE))
        assert "Secure" in header
        assert reply.headers["strict-transport-security"].startswith("max-age=")
        # Python's default may already refuse TLS 1.1; the server must say so itself.
        assert running.server.tls_minimum_version is ssl.TLSVersion.TLSv1_2
        old_tls = ssl.create_default_context()
        ca.configure_trust(old_tls)
        with warnings.catch_warnings():  # asking for TLS 1.1 on purpose
            warnings.simplefilter("ignore", DeprecationWarning)
            old_tls.minimum_version = ssl.TLSVersion.TLSv1
            old_tls.maximum_version = ssl.TLSVersion.TLSv1_1
        with contextlib.suppress(ssl.SSLError):  # some builds cannot even offer TLS 1.1
            old_tls.set_ciphers("DEFAULT:@SECLEVEL=0")
        refused = Site(running.server, running.control, running.auth, running.audit, old_tls)
        with pytest.raises((ssl.SSLError, OSError)):
            await refused.request("GET", "/login")


async def test_starting_from_the_ui_validates_and_checks_the_host_with_the_scope(
        site: Site) -> None:
    headers = {**await _as(site, Role.OPERATOR), "Content-Type": "application/json"}
    bad = [
        (b'{"users": 0, "spawn_rate": 1}', "users"),
        (b'{"users": 5}', "spawn_rate"),
        (b'{"users": 5, "spawn_rate": 1, "run_time": 0}', "run_time"),
        (b'{"users": 5, "spawn_rate": 1, "host": 7}', "host"),
        (b'{"users": 5, "spawn_rate": 1, "script": "x.py"}', "unknown field"),
        (b'{"users": 5, "spawn_rate": 1, "host": "http://forbidden.test"}', "allowed targets"),
    ]
    for body, message in bad:
        reply = await site.request("POST", "/api/v1/run/start", body=body, headers=headers)
        assert reply.status == 400, body
        assert message in reply.json()["error"]
    assert site.control.started == []
    good = b'{"users": 5, "spawn_rate": 2.5, "host": "http://127.0.0.1:9", "run_time": 30}'
    reply = await site.request("POST", "/api/v1/run/start", body=good, headers=headers)
    assert reply.status == 200
    assert site.control.started == [StartRequest(5, 2.5, "http://127.0.0.1:9", 30.0)]
    assert (await site.request("POST", "/api/v1/run/reset", headers=headers)).status == 200
    assert site.control.resets == 1
    assert [entry[2] for entry in site.audit][-2:] == ["run_start", "run_reset"]


async def test_behind_a_tls_proxy_only_its_https_requests_are_served() -> None:
    control, auth = FakeControl(), FakeAuth()
    deferred = DeferredApp()
    server = WebServer(deferred, "127.0.0.1", 0, trusted_proxies=("127.0.0.1",))
    await server.start()
    try:
        ctx = WebContext(control=control, auth=auth, sessions=SessionStore(auth.epoch_of),
                         throttle=LoginThrottle(), clock=asyncio.get_running_loop().time,
                         allowed_hosts=frozenset({"phalanx.test"}),
                         origins=frozenset({"https://phalanx.test"}), tls=True,
                         behind_tls_proxy=True)
        deferred.target = create_app(ctx)

        def call(headers: Mapping[str, str], source: str = "127.0.0.1") -> Reply:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10,
                                              source_address=(source, 0))
            try:
                conn.request("POST", "/login", body=f"username=vera&password="
                             f"{PASSWORDS['vera'][0]}".encode(),
                             headers={"Host": "phalanx.test", "Origin": "https://phalanx.test",
                                      "Content-Type": "application/x-www-form-urlencoded",
                                      **headers})
                response = conn.getresponse()
                return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                             response.headers.get_all("set-cookie") or [], response.read())
            finally:
                conn.close()

        proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
        through = await asyncio.to_thread(call, proxied)
        assert through.status == 303
        assert "Secure" in next(h for h in through.cookies if h.startswith(SESSION_COOKIE))
        assert through.headers["strict-transport-security"].startswith("max-age=")
        # In clear through the proxy, or straight to the port around it: refused.
        assert (await asyncio.to_thread(call, {})).status == 403
        around = await asyncio.to_thread(call, proxied, "127.0.0.2")  # not a trusted proxy
        assert around.status == 403
    finally:
        await server.stop()


async def test_forwarded_headers_are_ignored_without_trusted_proxies(site: Site) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": site.origin,
            "X-Forwarded-For": "198.51.100.9"}
    await site.request("POST", "/login", body=b"username=x&password=wrong-password",
                       headers=form)
    assert site.audit[-1][1] == "127.0.0.1"  # the real peer, not the forged header


def test_trusted_proxies_come_with_a_public_https_url() -> None:
    from phalanx.config.settings import build_settings
    from phalanx.core.errors import ConfigError

    settings, _ = build_settings(cli={"web_trusted_proxies": ["10.0.0.0/24"],
                                      "web_public_url": "https://Phalanx.Example.com"},
                                 environ={})
    assert settings.web_public_url == "https://phalanx.example.com"
    check_bind("0.0.0.0", tls=False, behind_tls_proxy=True)
    for cli, message in [({"web_trusted_proxies": ["10.0.0.1"]}, "needs --web-public-url"),
                         ({"web_public_url": "https://x.test"}, "is for HTTPS"),
                         ({"web_trusted_proxies": ["0.0.0.0/0"], "web_public_url":
                           "https://x.test"}, "every address"),
                         ({"web_trusted_proxies": ["proxy.local"], "web_public_url":
                           "https://x.test"}, "not an IP"),
                         ({"web_trusted_proxies": ["10.0.0.1"], "web_public_url":
                           "http://x.test"}, "https")]:
        with pytest.raises(ConfigError, match=message):
            build_settings(cli=cli, environ={})


async def test_parallel_guesses_are_not_checked_in_parallel(site: Site) -> None:
    site.auth.delay = 0.3
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": site.origin}
    replies = await asyncio.gather(*(
        site.request("POST", "/login", body=b"username=ada&password=guess-guess-guess",
                     headers=form) for _ in range(12)))
    statuses = sorted(reply.status for reply in replies)
    assert statuses.count(200) == 1  # one check at a time per account and address
    assert statuses.count(429) == 11
    assert site.auth.checks == 1


async def test_the_ui_cannot_go_above_the_runs_limits(site: Site) -> None:
    headers = {**await _as(site, Role.OPERATOR), "Content-Type": "application/json"}
    reply = await site.request("POST", "/api/v1/run/change", body=b'{"users": 200001}',
                               headers=headers)
    assert reply.status == 400
    assert "users" in reply.json()["error"]
    assert site.control.changes == []


async def test_deeply_nested_json_is_a_400_not_a_crash(site: Site) -> None:
    headers = {**await _as(site, Role.OPERATOR), "Content-Type": "application/json"}
    reply = await site.request("POST", "/api/v1/run/change", body=b"[" * 60_000, headers=headers)
    assert reply.status == 400


async def test_huge_request_headers_are_refused_and_the_server_goes_on(site: Site) -> None:
    with contextlib.suppress(OSError, http.client.HTTPException):
        reply = await site.request("GET", "/login", headers={"X-Big": "a" * 1_000_000})
        assert reply.status >= 400
    assert (await site.request("GET", "/login")).status == 200


async def test_anonymous_api_calls_are_told_how_to_authenticate(site: Site) -> None:
    reply = await site.request("GET", "/api/v1/status")
    assert reply.status == 401
    assert reply.headers["www-authenticate"] == "Bearer"


async def test_the_openapi_document_describes_the_api_for_signed_in_users(site: Site) -> None:
    assert (await site.request("GET", "/api/v1/openapi.json")).status == 401
    headers = await _as(site, Role.VIEWER)
    reply = await site.request("GET", "/api/v1/openapi.json", headers=headers)
    document = reply.json()
    assert document["openapi"] == "3.1.0"
    start = document["paths"]["/api/v1/run/start"]["post"]
    assert start["x-phalanx-permission"] == "run_control"
    assert start["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "users", "spawn_rate"]
    runs = await site.request("GET", "/api/v1/runs", headers=headers)
    assert runs.json() == {"runs": []}
