"""Schemathesis fuzzes the running REST API from its own OpenAPI document: never a 500.

A real uvicorn on 127.0.0.1 (in a thread with its own loop) serves the app
with a stand-in runner and a real account store; every operation of the
document gets generated valid and invalid bodies with an admin token, so
every handler (admin pages included) sees them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import argon2
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from tests.integration.web.test_web_app import FakeControl

from phalanx.web.accounts import UserStore, add_user
from phalanx.web.admin import AccountAdmin, admin_routes
from phalanx.web.app import ROUTES, Identity, WebContext, create_app
from phalanx.web.openapi import BODIES, build_openapi
from phalanx.web.passwords import Passwords
from phalanx.web.rbac import Role
from phalanx.web.server import WebServer
from phalanx.web.sessions import SessionStore
from phalanx.web.throttle import LoginThrottle

TOKEN = "phx_fuzz_admin_token"
CHEAP = argon2.Parameters(type=argon2.Type.ID, version=19, salt_len=16, hash_len=32,
                          time_cost=1, memory_cost=8, parallelism=1)


class AdminTokenAuth:
    async def check_password(self, user: str, password: str) -> Identity | None:
        return None

    def check_token(self, token: str) -> Identity | None:
        return Identity(user="fuzzer", role=Role.ADMIN) if token == TOKEN else None

    def epoch_of(self, user: str) -> int | None:
        return None


class Served:
    """The app on a loop in a background thread."""

    def __init__(self, store: Path) -> None:
        self.url = ""
        self.document: dict[str, object] = {}
        self._store = store
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> Served:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        auth = AdminTokenAuth()
        holder: dict[str, object] = {}

        async def app(scope: object, receive: object, send: object) -> None:
            await holder["app"](scope, receive, send)  # type: ignore[operator]

        server = WebServer(app, "127.0.0.1", 0)
        await server.start()
        extra = admin_routes(AccountAdmin(self._store, Passwords(CHEAP)))
        ctx = WebContext(control=FakeControl(), auth=auth, sessions=SessionStore(auth.epoch_of),
                         throttle=LoginThrottle(), clock=time.monotonic,
                         allowed_hosts=frozenset({f"127.0.0.1:{server.port}"}),
                         origins=frozenset({server.url}), tls=False, max_users=1_000_000)
        holder["app"] = create_app(ctx, extra_routes=extra)
        self.document = build_openapi([*ROUTES, *extra], "test")
        self.url = server.url
        self._ready.set()
        await self._stop.wait()
        await server.stop()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    store = UserStore.open(tmp_path / "users.json", create=True)
    add_user(store, "admin", Role.ADMIN, "fuzz-admin-password", passwords=Passwords(CHEAP),
             now=time.time())
    with Served(tmp_path / "users.json") as running:
        yield running


def test_every_post_route_has_a_body_schema_in_the_document(served: Served) -> None:
    paths = served.document["paths"]
    assert isinstance(paths, dict)
    posts = {path for path, operations in paths.items() if "post" in operations}
    assert posts == set(BODIES)
    assert "/api/v1/stats" in paths


@pytest.mark.timeout(120)
def test_generated_requests_never_get_a_500(served: Served) -> None:
    schema = schemathesis.openapi.from_dict(served.document)
    failures: list[str] = []
    seen: list[int] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @settings(max_examples=15, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=served.url, headers={
                "Authorization": f"Bearer {TOKEN}"}, timeout=10)
            seen.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path} {case.body!r}: "
                                f"{response.status_code} {response.text[:200]}")

        check()
    assert failures == []
    # The requests reached the handlers: some were done, some refused as bad input.
    assert 200 in seen
    assert 400 in seen
