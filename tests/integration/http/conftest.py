"""Fixtures for the HTTP client tests: a real target on 127.0.0.1, sessions that
are always closed, and a recorder that keeps what it was given.

Every test here runs twice: on the default asyncio loop and on uvloop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, NamedTuple

import pytest
import uvloop
from tests.support.target import TargetServer, serve

from phalanx.core.results import RequestFailure
from phalanx.http import HttpOptions, HttpSession, TlsContexts


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


class Recorded(NamedTuple):
    method: str
    name: str
    elapsed: float
    response_bytes: int
    failure: RequestFailure | None


class FakeRecorder:
    """A RequestRecorder that appends to lists."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.exceptions: list[tuple[str, str, str, str]] = []

    def record(
        self,
        method: str,
        name: str,
        elapsed: float,
        response_bytes: int,
        failure: RequestFailure | None,
    ) -> None:
        self.requests.append(Recorded(method, name, elapsed, response_bytes, failure))

    def record_exception(self, task: str, error_type: str, message: str, location: str) -> None:
        self.exceptions.append((task, error_type, message, location))

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.requests]

    @property
    def kinds(self) -> list[str | None]:
        return [None if r.failure is None else r.failure.kind for r in self.requests]


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
