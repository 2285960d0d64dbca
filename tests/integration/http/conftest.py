"""Fixtures for the HTTP client tests: a real target on 127.0.0.1, sessions that
are always closed, and a recorder that keeps what it was given.

Every test here runs twice: on the default asyncio loop and on uvloop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
import uvloop
from tests.support.fakes import FakeRecorder
from tests.support.target import TargetServer, serve

from phalanx.http import HttpOptions, HttpSession, TlsContexts


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


SessionFactory = Callable[..., HttpSession]


@pytest.fixture
def recorder() -> FakeRecorder:
    return FakeRecorder()


@pytest.fixture
async def target() -> AsyncIterator[TargetServer]:
    async with serve() as server:
        yield server


@pytest.fixture
async def tls_target() -> AsyncIterator[TargetServer]:
    async with serve(tls=True) as server:
        yield server


@pytest.fixture
def tls_contexts() -> TlsContexts:
    return TlsContexts()


@pytest.fixture
async def make_session(
    recorder: FakeRecorder, tls_contexts: TlsContexts
) -> AsyncIterator[SessionFactory]:
    """``make_session(base_url, **options)``: a session closed at teardown."""
    sessions: list[HttpSession] = []

    def factory(
        base_url: str | None, *, recorder_: Any = None, **option_values: Any
    ) -> HttpSession:
        session = HttpSession(
            base_url,
            recorder_ if recorder_ is not None else recorder,
            options=HttpOptions(**option_values),
            tls=tls_contexts,
        )
        sessions.append(session)
        return session

    yield factory
    for session in sessions:
        await session.close()
