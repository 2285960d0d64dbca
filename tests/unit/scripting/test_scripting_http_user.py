"""HttpUser: host resolution and validation, lazy client, closing, tls_verify warnings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from phalanx import HttpUser, User, task
from phalanx.core.errors import ScriptError
from phalanx.scripting.context import UserContext
from phalanx.scripting.user import validate_user_classes

TIMEOUT = 5.0


class FakeSession:
    """Stands in for phalanx.http.session.HttpSession (same constructor, close())."""

    instances: list[FakeSession]

    def __init__(self, base_url: str | None, recorder: object, *, options: Any, tls: Any) -> None:
        self.base_url = base_url
        self.recorder = recorder
        self.options = options
        self.tls = tls
        self.closed = 0
        FakeSession.instances.append(self)

    async def close(self) -> None:
        self.closed += 1


@pytest.fixture
def fake_sessions(monkeypatch: pytest.MonkeyPatch) -> list[FakeSession]:
    from phalanx.http import session as session_module
    FakeSession.instances = []
    monkeypatch.setattr(session_module, "HttpSession", FakeSession)
    return FakeSession.instances


class Shop(HttpUser):
    host = "http://127.0.0.1:8089"

    @task
    async def browse(self) -> None:
        self.client  # noqa: B018 - touching the client creates it
        self.request_stop()


class NoHost(HttpUser):
    @task
    async def browse(self) -> None: ...


class Insecure(HttpUser):
    host = "https://127.0.0.1:8443"
    tls_verify = False

    @task
    async def browse(self) -> None: ...


class AlsoInsecure(Insecure):
    pass


def test_the_run_host_overrides_the_class_host() -> None:
    assert Shop.effective_host(None) == "http://127.0.0.1:8089"
    assert Shop.effective_host("https://127.0.0.1:9000") == "https://127.0.0.1:9000"
    assert NoHost.effective_host(None) is None


def test_validate_reports_an_http_user_without_host() -> None:
    assert validate_user_classes([Shop, NoHost], None) == [
        'NoHost has no host: set `host = "https://..."` on the class or pass --host'
    ]
    assert validate_user_classes([Shop, NoHost], "http://127.0.0.1:1") == []


def test_validate_reports_a_host_that_is_not_an_http_url() -> None:
    problems = validate_user_classes([Shop], "ftp://127.0.0.1")
    assert problems == ["Shop: host 'ftp://127.0.0.1' is not an http:// or https:// URL"]
    assert validate_user_classes([Shop], "127.0.0.1:8080") != []


def test_validate_accepts_a_plain_user_without_host_and_checks_weights() -> None:
    class Plain(User):
        @task
        async def work(self) -> None: ...

    class Heavy(Plain):
        weight = 0
        fixed_count = -1

    assert validate_user_classes([Plain], None) == []
    assert validate_user_classes([Heavy], None) == [
        "Heavy: weight must be an integer >= 1, got 0",
        "Heavy: fixed_count must be an integer >= 0, got -1",
    ]


def test_the_client_is_created_on_first_access_and_reused(
    context: UserContext, fake_sessions: list[FakeSession]
) -> None:
    user = Shop(context)
    assert fake_sessions == []
    client = user.client
    assert user.client is client
    assert fake_sessions == [client]  # type: ignore[comparison-overlap]
    assert client.base_url == "http://127.0.0.1:8089"  # type: ignore[attr-defined]
    assert client.recorder is context.recorder  # type: ignore[attr-defined]


def test_the_client_uses_the_run_host_and_one_shared_tls_cache(
    make_context: Callable[..., UserContext], fake_sessions: list[FakeSession]
) -> None:
    context = make_context(host="http://127.0.0.1:9999")
    first, second = Shop(context).client, Shop(context).client
    assert first.base_url == "http://127.0.0.1:9999"  # type: ignore[attr-defined]
    assert first.tls is second.tls  # type: ignore[attr-defined]
    assert first.tls is not None  # type: ignore[attr-defined]
    assert first.options is second.options  # type: ignore[attr-defined]


def test_a_client_without_any_host_is_a_clear_error(
    context: UserContext, fake_sessions: list[FakeSession]
) -> None:
    with pytest.raises(ScriptError, match="NoHost has no host"):
        NoHost(context).client  # noqa: B018


async def test_the_client_is_closed_when_the_run_ends(
    context: UserContext, fake_sessions: list[FakeSession]
) -> None:
    user = Shop(context)
    await asyncio.wait_for(user.run(), TIMEOUT)
    [session] = fake_sessions
    assert session.closed == 1


async def test_a_user_that_never_used_its_client_creates_none(
    context: UserContext, fake_sessions: list[FakeSession]
) -> None:
    user = NoHost(context)
    user.request_stop()
    await asyncio.wait_for(user.run(), TIMEOUT)
    assert fake_sessions == []


async def test_the_client_is_closed_even_when_the_user_is_cancelled(
    context: UserContext, fake_sessions: list[FakeSession]
) -> None:
    inside = asyncio.Event()

    class Hanging(Shop):
        @task
        async def browse(self) -> None:
            self.client  # noqa: B018
            inside.set()
            await asyncio.Event().wait()

    runner = asyncio.create_task(Hanging(context).run())
    await asyncio.wait_for(inside.wait(), TIMEOUT)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert fake_sessions[0].closed == 1


def test_tls_verify_false_disables_verification_and_warns_once_per_class(
    context: UserContext, fake_sessions: list[FakeSession], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="phalanx.test.user"):
        sessions = [Insecure(context).client for _ in range(3)]
        other = AlsoInsecure(context).client
        secure = Shop(context).client
    assert all(s.options.verify_tls is False for s in [*sessions, other])  # type: ignore[attr-defined]
    assert secure.options.verify_tls is True  # type: ignore[attr-defined]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "Insecure" in warnings[0]
    assert "AlsoInsecure" in warnings[1]


def test_tls_verify_false_keeps_the_other_run_options(
    make_context: Callable[..., UserContext], fake_sessions: list[FakeSession]
) -> None:
    from phalanx.http import options as options_module
    options = options_module.HttpOptions(connect_timeout=3.0)
    client = Insecure(make_context(http_options=options)).client
    assert client.options.connect_timeout == 3.0  # type: ignore[attr-defined]
    assert client.options.verify_tls is False  # type: ignore[attr-defined]


async def test_a_real_http_session_is_created_lazily_and_closed(context: UserContext) -> None:
    from phalanx.http import session as session_module
    user = Shop(context)
    client = user.client
    assert isinstance(client, session_module.HttpSession)
    await asyncio.wait_for(user.run(), TIMEOUT)
    assert user._client is None
