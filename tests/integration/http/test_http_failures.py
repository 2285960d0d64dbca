"""Transport failures become recorded kinds, never exceptions (cancellation aside)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from phalanx.core.results import ErrorKind


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_closed_port_is_connection_refused(make_session, recorder):
    port = _closed_port()
    session = make_session(f"http://127.0.0.1:{port}")

    response = await session.get("/items?token=x")

    assert response.status_code == 0
    assert not response.ok
    assert response.error is not None
    assert response.error.kind == ErrorKind.CONNECTION_REFUSED
    assert recorder.kinds == [ErrorKind.CONNECTION_REFUSED]
    assert recorder.names == ["/items"]
    assert recorder.requests[0].response_bytes == 0


async def test_stalled_body_is_a_read_timeout(target, make_session, recorder):
    session = make_session(target.url, read_timeout=0.2)

    response = await session.get("/stall")

    assert response.error is not None
    assert response.error.kind == ErrorKind.READ_TIMEOUT
    assert recorder.kinds == [ErrorKind.READ_TIMEOUT]
    assert session.connection_count == 0


async def test_slow_headers_are_a_read_timeout(target, make_session, recorder):
    session = make_session(target.url, read_timeout=0.2)

    response = await session.get("/slow?delay=5")

    assert response.error is not None
    assert response.error.kind == ErrorKind.READ_TIMEOUT


async def test_request_timeout_argument_is_the_total_deadline(target, make_session, recorder):
    session = make_session(target.url, read_timeout=10)

    response = await session.get("/slow?delay=5", timeout=0.2)

    assert response.error is not None
    assert response.error.kind == ErrorKind.TIMEOUT
    assert recorder.kinds == [ErrorKind.TIMEOUT]


async def test_timed_out_connection_is_replaced_for_the_next_request(target, make_session):
    session = make_session(target.url, read_timeout=0.2)

    await session.get("/stall")
    response = await session.get("/")

    assert response.ok
    assert target.stats.connections == 2


async def test_garbage_response_is_bad_http(target, make_session, recorder):
    session = make_session(target.url)

    response = await session.get("/bad")

    assert response.error is not None
    assert response.error.kind == ErrorKind.BAD_HTTP
    assert recorder.kinds == [ErrorKind.BAD_HTTP]


async def test_server_closing_idle_connections_does_not_fail_the_next_request(
    target, make_session, recorder
):
    session = make_session(target.url)
    await session.get("/")

    target.close_connections()
    response = await session.get("/")

    assert response.ok
    assert recorder.kinds == [None, None]
    assert target.stats.connections == 2


async def test_cancelled_request_propagates_records_nothing_and_frees_the_connection(
    target, make_session, recorder
):
    session = make_session(target.url)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(session.get("/slow?delay=10"), timeout=0.2)
    response = await session.get("/")

    assert response.ok
    assert recorder.names == ["/"]
    assert session.connection_count == 1


async def test_waiting_for_a_busy_pool_is_bounded_by_the_total_timeout(
    target, make_session, recorder
):
    session = make_session(target.url, max_connections_per_origin=1)

    slow, waiting = await asyncio.gather(
        session.get("/slow?delay=0.6", timeout=5), session.get("/", timeout=0.1)
    )

    assert slow.ok
    assert waiting.error is not None
    assert waiting.error.kind == ErrorKind.TIMEOUT


class _DropsSecondRequest:
    """A raw server whose first connection answers once, then drops the next request
    unanswered (a keep-alive connection the server closed as it was reused)."""

    def __init__(self) -> None:
        self.connections = 0
        self.handlers: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.connections += 1
        first_connection = self.connections == 1
        served = 0
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                if first_connection and served == 1:
                    break
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
                served += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.handlers.discard(task)


async def _serve_dropping() -> tuple[asyncio.Server, _DropsSecondRequest]:
    behaviour = _DropsSecondRequest()
    server = await asyncio.start_server(behaviour.handle, "127.0.0.1", 0)
    return server, behaviour


async def _stop(server: asyncio.Server, behaviour: _DropsSecondRequest) -> None:
    server.close()
    await server.wait_closed()
    if behaviour.handlers:
        await asyncio.wait(behaviour.handlers, timeout=5)


async def test_idempotent_request_on_a_dropped_keep_alive_connection_is_retried(
    make_session, recorder
):
    server, behaviour = await _serve_dropping()
    port = server.sockets[0].getsockname()[1]
    session = make_session(f"http://127.0.0.1:{port}")
    try:
        first = await session.get("/a")
        second = await session.get("/b")
        await session.close()
    finally:
        await _stop(server, behaviour)

    assert first.ok
    assert second.ok
    assert behaviour.connections == 2
    assert recorder.kinds == [None, None]


async def test_post_on_a_dropped_keep_alive_connection_is_not_retried(make_session, recorder):
    server, behaviour = await _serve_dropping()
    port = server.sockets[0].getsockname()[1]
    session = make_session(f"http://127.0.0.1:{port}")
    try:
        await session.get("/a")
        second = await session.post("/b", data=b"once")
        await session.close()
    finally:
        await _stop(server, behaviour)

    assert second.error is not None
    assert second.error.kind == ErrorKind.CONNECTION_RESET
    assert behaviour.connections == 1


async def _never_resolves(*args: object) -> list[object]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def test_connect_phase_longer_than_connect_timeout_is_connect_timeout(
    make_session, recorder, monkeypatch
):
    monkeypatch.setattr("phalanx.http.connector.resolve", _never_resolves)
    session = make_session("http://127.0.0.1:9", connect_timeout=0.05)

    response = await session.get("/")

    assert response.error is not None
    assert response.error.kind == ErrorKind.CONNECT_TIMEOUT
    assert recorder.kinds == [ErrorKind.CONNECT_TIMEOUT]


async def test_connect_phase_cut_by_the_total_deadline_is_timeout(
    make_session, recorder, monkeypatch
):
    monkeypatch.setattr("phalanx.http.connector.resolve", _never_resolves)
    session = make_session("http://127.0.0.1:9", connect_timeout=10)

    response = await session.get("/", timeout=0.05)

    assert response.error is not None
    assert response.error.kind == ErrorKind.TIMEOUT


async def test_resolver_failure_is_dns(make_session, recorder, monkeypatch):
    async def fails(*args: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr("phalanx.http.connector.resolve", fails)
    session = make_session("http://name.invalid")

    response = await session.get("/")

    assert response.error is not None
    assert response.error.kind == ErrorKind.DNS
    assert recorder.kinds == [ErrorKind.DNS]
