"""The admin pages and API on a real uvicorn on 127.0.0.1, with a real user store.

Everything is real but the run: the account store file (cheap argon2id
parameters), the :class:`StoreAuthenticator` that re-reads it (recheck 0:
every request looks at the file), the session store, the hash-chained audit
log file, and the app's own pipeline (RBAC, CSRF, Origin).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import argon2
import pytest
from tests.support.web import DeferredApp, Reply, fetch, session_cookie

from phalanx.engine.runner import RunState, RunStatus
from phalanx.security.audit import AuditLog
from phalanx.stats import StatsSnapshot
from phalanx.web.accounts import UserStore, add_user
from phalanx.web.admin import AccountAdmin, admin_routes
from phalanx.web.app import SESSION_COOKIE, RouteSpec, WebContext, create_app
from phalanx.web.auth import StoreAuthenticator
from phalanx.web.passwords import Passwords
from phalanx.web.rbac import Role, allowed
from phalanx.web.server import WebServer
from phalanx.web.sessions import SessionStore
from phalanx.web.throttle import LoginThrottle

CHEAP = argon2.Parameters(type=argon2.Type.ID, version=19, salt_len=16, hash_len=32,
                          time_cost=1, memory_cost=8, parallelism=1)
XSS = '<script>alert("x")</script>"><img src=x onerror=alert(1)>'
PASSWORDS = {"vera": ("viewer-password!", Role.VIEWER),
             "otto": ("operator-password!", Role.OPERATOR),
             "ada": ("admin-password!!", Role.ADMIN)}
AS_ROLE = {Role.VIEWER: "vera", Role.OPERATOR: "otto", Role.ADMIN: "ada"}
NEW_PASSWORD = "a-brand-new-secret-1"
STATIC = Path(__file__).parents[3] / "src/phalanx/web"


class _Control:
    """A run that is just there: the admin pages never touch it."""

    def status(self) -> RunStatus:
        return RunStatus(state=RunState.RUNNING, users=1, target_users=1, spawn_rate=1.0,
                         class_counts=(("U", 1),), elapsed=1.0, run_time=None)

    @property
    def latest(self) -> StatsSnapshot | None:
        return None

    def change_target(self, users: int, spawn_rate: float | None = None) -> None:
        raise AssertionError("the admin pages never control the run")

    def request_stop(self) -> None:
        raise AssertionError("the admin pages never control the run")



@dataclass
class Site:
    server: WebServer
    store_path: Path
    audit_path: Path
    audit: AuditLog
    accounts: AccountAdmin
    routes: tuple[RouteSpec, ...]
    clients: ThreadPoolExecutor

    @property
    def origin(self) -> str:
        return self.server.url

    async def request(self, method: str, path: str, *, body: bytes | None = None,
                      headers: Mapping[str, str] | None = None) -> Reply:
        def call() -> Reply:
            return fetch(self.server.port, method, path, body=body, headers=headers)

        # Its own threads: the server's work runs in the loop's default executor, and
        # clients blocked there waiting for answers would starve it.
        return await asyncio.get_running_loop().run_in_executor(self.clients, call)

    async def login(self, user: str, password: str) -> Reply:
        form = f"username={user}&password={password}".encode()
        return await self.request("POST", "/login", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Origin": self.origin})

    async def session(self, user: str, password: str | None = None) -> dict[str, str]:
        """Sign in; headers for requests in that session (cookie, CSRF token, Origin)."""
        reply = await self.login(user, password if password is not None else PASSWORDS[user][0])
        assert reply.status == 303, reply.body
        cookie = {"Cookie": f"{SESSION_COOKIE}={session_cookie(reply)}"}
        page = await self.request("GET", "/", headers=cookie)
        text = page.body.decode()
        marker = 'name="csrf-token" content="'
        start = text.index(marker) + len(marker)
        return {**cookie, "X-CSRF-Token": text[start:text.index('"', start)],
                "Origin": self.origin}

    async def post(self, path: str, body: Mapping[str, Any], headers: Mapping[str, str]
                   ) -> Reply:
        return await self.request("POST", path, body=json.dumps(body).encode(),
                                  headers={**headers, "Content-Type": "application/json"})

    def audit_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit_path.read_text().splitlines()]

    def actions(self) -> list[str]:
        return [entry["action"] for entry in self.audit_lines()
                if entry["action"] not in ("login", "login_failed", "logout")]




@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    passwords = Passwords(CHEAP)
    store_path = tmp_path / "users.json"
    store = UserStore.open(store_path, create=True)
    for name, (password, role) in PASSWORDS.items():
        add_user(store, name, role, password, passwords=passwords, now=time.time())
    auth = StoreAuthenticator(store, passwords, time.time, recheck=0.0)
    accounts = AccountAdmin(store_path, passwords)
    routes = admin_routes(accounts)
    audit_path = tmp_path / "audit.jsonl"
    with AuditLog(audit_path) as audit, ThreadPoolExecutor(8) as clients:
        def record(actor: str, source: str, action: str, details: Mapping[str, Any]) -> None:
            audit.append(actor, source, action, details)

        deferred = DeferredApp()
        server = WebServer(deferred, "127.0.0.1", 0)
        await server.start()
        try:
            ctx = WebContext(
                control=_Control(), auth=auth, sessions=SessionStore(auth.epoch_of),
                throttle=LoginThrottle(), clock=asyncio.get_running_loop().time,
                allowed_hosts=frozenset({f"127.0.0.1:{server.port}"}),
                origins=frozenset({server.url}), tls=False,
                audit=record,
                audit_recent=lambda: audit.recent,
            )
            deferred.target = create_app(ctx, extra_routes=routes)
            yield Site(server, store_path, audit_path, audit, accounts, routes, clients)
        finally:
            await server.stop()


async def _as(site: Site, role: Role | None) -> dict[str, str]:
    return {"Origin": site.origin} if role is None else await site.session(AS_ROLE[role])


# --- who may do what --------------------------------------------------------------------


def _bodies(token_id: str) -> dict[str, dict[str, Any]]:
    """A body for each POST route that succeeds for an admin, in route order."""
    return {
        "/api/v1/users/add": {"name": "newbie", "role": "viewer", "password": NEW_PASSWORD},
        "/api/v1/users/reset-password": {"name": "newbie", "password": NEW_PASSWORD + "2"},
        "/api/v1/users/set-role": {"name": "newbie", "role": "operator"},
        "/api/v1/users/disable": {"name": "newbie"},
        "/api/v1/users/enable": {"name": "newbie"},
        "/api/v1/users/remove": {"name": "newbie"},
        "/api/v1/tokens/create": {"role": "viewer", "expires": "1d", "label": "ci"},
        "/api/v1/tokens/revoke": {"token_id": token_id},
    }


@pytest.mark.parametrize("role", [None, Role.VIEWER, Role.OPERATOR, Role.ADMIN],
                         ids=["anonymous", "viewer", "operator", "admin"])
async def test_every_admin_route_answers_exactly_as_the_role_table_says(
        site: Site, role: Role | None) -> None:
    info, _token = await site.accounts.create_token(Role.VIEWER, 3600.0, "to revoke")
    bodies = _bodies(info.token_id)
    headers = await _as(site, role)
    before = site.store_path.read_bytes()
    assert {spec.path for spec in site.routes if spec.method == "POST"} == set(bodies)
    for spec in site.routes:
        if spec.method == "POST":
            reply = await site.post(spec.path, bodies[spec.path], headers)
        else:
            reply = await site.request("GET", spec.path, headers=headers)
        assert spec.permission is not None
        if role is None:
            assert reply.status == 401, (spec.path, reply.status)
        elif allowed(role, spec.permission):
            assert reply.status == 200, (spec.path, reply.status, reply.body)
        else:
            assert reply.status == 403, (spec.path, role, reply.status)
    if role is not Role.ADMIN:
        assert site.store_path.read_bytes() == before  # nothing changed
        assert site.actions() == []
    else:
        assert site.actions() == ["user_add", "user_password", "settings_change",
                                  "settings_change", "settings_change", "user_remove",
                                  "token_create", "token_revoke"]


async def test_an_anonymous_browser_is_sent_to_the_login_page(site: Site) -> None:
    for path in ("/admin", "/admin/audit"):
        reply = await site.request("GET", path, headers={"Accept": "text/html"})
        assert reply.status == 303
        assert reply.headers["location"] == "/login"


async def test_an_api_token_never_reaches_the_admin_routes(site: Site) -> None:
    _info, token = await site.accounts.create_token(Role.OPERATOR, 3600.0, "ci")
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await site.request("GET", "/api/v1/status", headers=bearer)).status == 200
    before = site.store_path.read_bytes()
    for spec in site.routes:
        body = json.dumps(_bodies("0" * 12).get(spec.path, {})).encode()
        reply = await site.request(spec.method, spec.path, body=body, headers={
            **bearer, "Content-Type": "application/json"})
        assert reply.status == 403, spec.path
    assert site.store_path.read_bytes() == before


async def test_admin_posts_need_both_the_csrf_token_and_this_origin(site: Site) -> None:
    headers = await site.session("ada")
    before = site.store_path.read_bytes()
    body = {"name": "mallory", "role": "admin", "password": NEW_PASSWORD}
    attempts = [
        {"Cookie": headers["Cookie"], "Origin": site.origin},
        {**headers, "X-CSRF-Token": "guess"},
        {**headers, "Origin": "http://evil.example"},
        {"Cookie": headers["Cookie"], "X-CSRF-Token": headers["X-CSRF-Token"]},
    ]
    for attempt in attempts:
        for path, payload in [("/api/v1/users/add", body),
                              ("/api/v1/users/remove", {"name": "otto"}),
                              ("/api/v1/tokens/create", {"role": "operator"})]:
            reply = await site.post(path, payload, attempt)
            assert reply.status == 403, (path, attempt)
    for path in ("/api/v1/users/add", "/api/v1/tokens/create", "/api/v1/users/remove"):
        assert (await site.request("GET", path, headers=headers)).status == 405
    assert site.store_path.read_bytes() == before
    assert site.actions() == []


# --- users ------------------------------------------------------------------------------


async def test_an_added_user_can_sign_in_with_the_given_password(site: Site) -> None:
    admin = await site.session("ada")
    reply = await site.post("/api/v1/users/add", {"name": "nina", "role": "operator",
                                               "password": NEW_PASSWORD}, admin)
    assert reply.status == 200, reply.body
    assert reply.json()["user"]["name"] == "nina"
    nina = await site.session("nina", NEW_PASSWORD)
    status = await site.request("GET", "/api/v1/status", headers=nina)
    assert status.json()["role"] == "operator"
    listed = (await site.request("GET", "/api/v1/users", headers=admin)).json()
    assert [u["name"] for u in listed["users"]] == ["ada", "nina", "otto", "vera"]
    assert listed["you"] == "ada"


async def test_a_password_reset_ends_the_users_sessions_and_only_the_new_password_works(
        site: Site) -> None:
    admin = await site.session("ada")
    otto = await site.session("otto")
    assert (await site.request("GET", "/api/v1/status", headers=otto)).status == 200
    reply = await site.post("/api/v1/users/reset-password", {"name": "otto",
                                                          "password": NEW_PASSWORD}, admin)
    assert reply.status == 200, reply.body
    assert (await site.request("GET", "/api/v1/status", headers=otto)).status == 401
    assert (await site.login("otto", PASSWORDS["otto"][0])).status == 200  # the form again
    again = await site.session("otto", NEW_PASSWORD)
    assert (await site.request("GET", "/api/v1/status", headers=again)).status == 200
    assert (await site.request("GET", "/api/v1/users", headers=admin)).status == 200  # admin stays


async def test_a_removed_user_loses_their_session_and_cannot_sign_in(site: Site) -> None:
    admin = await site.session("ada")
    vera = await site.session("vera")
    reply = await site.post("/api/v1/users/remove", {"name": "vera"}, admin)
    assert reply.status == 200, reply.body
    assert (await site.request("GET", "/api/v1/status", headers=vera)).status == 401
    assert (await site.login("vera", PASSWORDS["vera"][0])).status == 200  # no cookie: refused
    listed = (await site.request("GET", "/api/v1/users", headers=admin)).json()
    assert "vera" not in [u["name"] for u in listed["users"]]


async def test_a_role_change_or_disabling_ends_the_session_and_enabling_allows_login(
        site: Site) -> None:
    admin = await site.session("ada")
    otto = await site.session("otto")
    reply = await site.post("/api/v1/users/set-role", {"name": "otto", "role": "viewer"}, admin)
    assert reply.json()["user"]["role"] == "viewer"
    assert (await site.request("GET", "/api/v1/status", headers=otto)).status == 401
    otto = await site.session("otto")
    assert (await site.post("/api/v1/run/stop", {}, otto)).status == 403  # now a viewer
    assert (await site.post("/api/v1/users/disable", {"name": "otto"}, admin)).status == 200
    assert (await site.request("GET", "/api/v1/status", headers=otto)).status == 401
    assert (await site.login("otto", PASSWORDS["otto"][0])).cookies == []
    assert (await site.post("/api/v1/users/enable", {"name": "otto"}, admin)).status == 200
    assert (await site.session("otto"))["Cookie"]


async def test_the_last_admin_cannot_be_removed_demoted_or_disabled(site: Site) -> None:
    admin = await site.session("ada")
    before = site.store_path.read_bytes()
    for path, body in [("/api/v1/users/remove", {"name": "ada"}),
                       ("/api/v1/users/set-role", {"name": "ada", "role": "operator"}),
                       ("/api/v1/users/disable", {"name": "ada"})]:
        reply = await site.post(path, body, admin)
        assert reply.status == 400, path
        assert "last enabled admin" in reply.json()["error"]
    assert site.store_path.read_bytes() == before
    assert (await site.request("GET", "/api/v1/users", headers=admin)).status == 200


async def test_concurrent_changes_are_applied_one_at_a_time_and_none_is_lost(
        site: Site) -> None:
    admin = await site.session("ada")
    names = [f"user{i}" for i in range(6)]
    replies = await asyncio.gather(*(
        site.post("/api/v1/users/add", {"name": name, "role": "viewer",
                                     "password": NEW_PASSWORD}, admin) for name in names))
    assert [r.status for r in replies] == [200] * len(names)
    stored = {user.name for user in UserStore.open(site.store_path).users()}
    assert set(names) <= stored


async def test_a_change_made_meanwhile_from_the_command_line_is_kept(site: Site) -> None:
    admin = await site.session("ada")
    cli_store = UserStore.open(site.store_path)  # as 'phalanx users add' would
    add_user(cli_store, "cli-made", Role.VIEWER, NEW_PASSWORD, passwords=Passwords(CHEAP),
             now=time.time())
    reply = await site.post("/api/v1/users/add", {"name": "web-made", "role": "viewer",
                                               "password": NEW_PASSWORD}, admin)
    assert reply.status == 200, reply.body
    stored = {user.name for user in UserStore.open(site.store_path).users()}
    assert {"cli-made", "web-made"} <= stored


# --- tokens -----------------------------------------------------------------------------


async def test_a_created_token_works_as_bearer_until_it_is_revoked(site: Site) -> None:
    admin = await site.session("ada")
    reply = await site.post("/api/v1/tokens/create", {"role": "operator", "expires": "2h",
                                                   "label": "ci"}, admin)
    assert reply.status == 200, reply.body
    created = reply.json()
    token, token_id = created["token"], created["token_id"]
    assert token.startswith(f"phx_{token_id}_")
    assert 7100 < created["expires"] - created["created"] <= 7200
    bearer = {"Authorization": f"Bearer {token}"}
    status = await site.request("GET", "/api/v1/status", headers=bearer)
    assert status.status == 200
    assert status.json()["role"] == "operator"
    listed = await site.request("GET", "/api/v1/tokens", headers=admin)
    assert [t["token_id"] for t in listed.json()["tokens"]] == [token_id]
    assert token.encode() not in listed.body  # shown once: never again
    reply = await site.post("/api/v1/tokens/revoke", {"token_id": token_id}, admin)
    assert reply.status == 200
    assert (await site.request("GET", "/api/v1/status", headers=bearer)).status == 401
    assert (await site.request("GET", "/api/v1/tokens", headers=admin)).json()["tokens"] == []


async def test_a_token_defaults_to_thirty_days_and_cannot_be_an_admin(site: Site) -> None:
    admin = await site.session("ada")
    created = (await site.post("/api/v1/tokens/create", {"role": "viewer"}, admin)).json()
    assert created["expires"] - created["created"] == pytest.approx(30 * 86400, abs=5)
    assert created["label"] == ""
    reply = await site.post("/api/v1/tokens/create", {"role": "admin"}, admin)
    assert reply.status == 400
    assert "cannot have the role admin" in reply.json()["error"]


# --- what never leaves the server -------------------------------------------------------


async def test_responses_never_carry_hashes_digests_or_epochs(site: Site) -> None:
    admin = await site.session("ada")
    _info, token = await site.accounts.create_token(Role.VIEWER, 3600.0, "x")
    users = await site.request("GET", "/api/v1/users", headers=admin)
    tokens = await site.request("GET", "/api/v1/tokens", headers=admin)
    for reply in (users, tokens):
        assert b"argon2" not in reply.body
        assert not re.search(rb"[0-9a-f]{64}", reply.body)
        assert token.encode() not in reply.body
    assert set(users.json()["users"][0]) == {"name", "role", "disabled", "created",
                                              "password_changed"}
    assert set(tokens.json()["tokens"][0]) == {"token_id", "role", "label", "created",
                                               "expires", "last_used", "expired"}


async def test_every_change_is_audited_with_who_and_where_and_without_secrets(
        site: Site) -> None:
    admin = await site.session("ada")
    steps = [
        ("/api/v1/users/add", {"name": "nina", "role": "viewer", "password": NEW_PASSWORD}),
        ("/api/v1/users/reset-password", {"name": "nina", "password": NEW_PASSWORD + "!"}),
        ("/api/v1/users/set-role", {"name": "nina", "role": "operator"}),
        ("/api/v1/users/disable", {"name": "nina"}),
        ("/api/v1/users/enable", {"name": "nina"}),
        ("/api/v1/users/remove", {"name": "nina"}),
        ("/api/v1/tokens/create", {"role": "viewer", "label": "nightly"}),
    ]
    for path, body in steps:
        reply = await site.post(path, body, admin)
        assert reply.status == 200, (path, reply.body)
    created = reply.json()
    reply = await site.post("/api/v1/tokens/revoke", {"token_id": created["token_id"]}, admin)
    assert reply.status == 200
    entries = [e for e in site.audit_lines() if e["action"] not in ("login",)]
    assert [e["action"] for e in entries] == [
        "user_add", "user_password", "settings_change", "settings_change", "settings_change",
        "user_remove", "token_create", "token_revoke"]
    assert {(e["actor"], e["source"]) for e in entries} == {("ada", "127.0.0.1")}
    assert entries[0]["details"] == {"user": "nina", "role": "viewer"}
    assert entries[2]["details"] == {"setting": "role", "user": "nina", "role": "operator"}
    assert entries[3]["details"] == {"setting": "disabled", "user": "nina", "disabled": True}
    assert entries[6]["details"]["token_id"] == created["token_id"]
    assert entries[6]["details"]["label"] == "nightly"
    text = site.audit_path.read_text()
    secret = created["token"].split("_", 2)[2]
    for forbidden in (NEW_PASSWORD, secret, "argon2"):
        assert forbidden not in text
    page = await site.request("GET", "/api/v1/audit", headers=admin)
    assert [e["action"] for e in page.json()["entries"]][-1] == "token_revoke"


@pytest.mark.parametrize(("path", "body", "message"), [
    ("/api/v1/users/add", {"name": "nina", "role": "viewer"}, "missing field(s): password"),
    ("/api/v1/users/add", {"name": "nina", "role": "viewer", "password": NEW_PASSWORD,
                        "admin": True}, "unknown field(s): admin"),
    ("/api/v1/users/add", {"name": "nina", "role": "root", "password": NEW_PASSWORD}, "role"),
    ("/api/v1/users/add", {"name": "nina", "role": "Admin", "password": NEW_PASSWORD}, "role"),
    ("/api/v1/users/add", {"name": 7, "role": "viewer", "password": NEW_PASSWORD}, "name"),
    ("/api/v1/users/add", {"name": "n" * 65, "role": "viewer", "password": NEW_PASSWORD}, "name"),
    ("/api/v1/users/add", {"name": XSS[:60], "role": "viewer", "password": NEW_PASSWORD},
     "invalid user name"),
    ("/api/v1/users/add", {"name": "nina", "role": "viewer", "password": "short"}, "too short"),
    ("/api/v1/users/add", {"name": "nina", "role": "viewer", "password": "x" * 1025},
     "password"),
    ("/api/v1/users/add", {"name": "nina", "role": "viewer", "password": "nina" * 3 + "\n"},
     "control character"),
    ("/api/v1/users/add", {"name": "otto", "role": "viewer", "password": NEW_PASSWORD},
     "already exists"),
    ("/api/v1/users/reset-password", {"name": "ghost", "password": NEW_PASSWORD}, "no user"),
    ("/api/v1/users/reset-password", {"name": "otto", "password": "o" * 14},
     "one character repeated"),
    ("/api/v1/users/set-role", {"name": "otto", "role": None}, "role"),
    ("/api/v1/users/disable", {"name": ["otto"]}, "name"),
    ("/api/v1/users/remove", {}, "missing field(s): name"),
    ("/api/v1/tokens/create", {"role": "viewer", "expires": "forever"}, "lifetime"),
    ("/api/v1/tokens/create", {"role": "viewer", "expires": "400d"}, "366d"),
    ("/api/v1/tokens/create", {"role": "viewer", "expires": 30}, "expires"),
    ("/api/v1/tokens/create", {"role": "viewer", "label": "x" * 101}, "label"),
    ("/api/v1/tokens/create", {"role": "viewer", "label": "line\nbreak"}, "printable"),
    ("/api/v1/tokens/create", {"role": "viewer", "secret": "mine"}, "unknown field(s): secret"),
    ("/api/v1/tokens/revoke", {"token_id": "../../etc"}, "token_id"),
    ("/api/v1/tokens/revoke", {"token_id": "0123456789ab"}, "no token"),
])
async def test_bad_input_gets_a_400_that_names_the_problem_and_changes_nothing(
        site: Site, path: str, body: dict[str, Any], message: str) -> None:
    admin = await site.session("ada")
    before = site.store_path.read_bytes()
    reply = await site.post(path, body, admin)
    assert reply.status == 400, reply.body
    error = reply.json()["error"]
    assert message in error
    assert str(site.store_path) not in error  # no file layout to the client
    assert NEW_PASSWORD not in error
    assert site.store_path.read_bytes() == before
    assert site.actions() == []


async def test_bodies_that_are_not_json_objects_are_refused(site: Site) -> None:
    admin = await site.session("ada")
    for body, content_type, status in [(b"name=otto", "application/x-www-form-urlencoded", 415),
                                       (b'["otto"]', "application/json", 400),
                                       (b'{"name": ', "application/json", 400)]:
        reply = await site.request("POST", "/api/v1/users/remove", body=body, headers={
            **admin, "Content-Type": content_type})
        assert reply.status == status
    assert (await site.request("GET", "/api/v1/users", headers=admin)).json()["users"][1][
        "name"] == "otto"


async def test_markup_in_a_token_label_comes_back_only_as_json_text(site: Site) -> None:
    admin = await site.session("ada")
    reply = await site.post("/api/v1/tokens/create", {"role": "viewer", "label": XSS}, admin)
    assert reply.status == 200, reply.body
    listed = await site.request("GET", "/api/v1/tokens", headers=admin)
    assert listed.headers["content-type"].startswith("application/json")
    assert listed.json()["tokens"][0]["label"] == XSS
    page = await site.request("GET", "/admin", headers=admin)
    assert b"<script>alert" not in page.body
    audit = await site.request("GET", "/admin/audit", headers=admin)
    assert b"<script>alert" not in audit.body


async def test_the_pages_carry_no_inline_script_or_style_and_the_script_no_html_sinks(
        site: Site) -> None:
    admin = await site.session("ada")
    for path, marker in [("/admin", b'id="users-table"'), ("/admin/audit", b'id="audit-table"')]:
        page = await site.request("GET", path, headers=admin)
        assert page.status == 200
        assert page.headers["content-type"].startswith("text/html")
        assert marker in page.body
        assert admin["X-CSRF-Token"].encode() in page.body
        scripts = re.findall(rb"<script[^>]*>", page.body)
        assert scripts == [b'<script src="/static/admin.js" defer>']
        assert b"style=" not in page.body
        assert not re.search(rb"\son[a-z]+=", page.body)
    script = (STATIC / "static/admin.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):
        assert sink not in script
    assert "X-CSRF-Token" in script
