"""The recording TCP relay used to look at the wire (tests.support.tcp_proxy), on 127.0.0.1.

Plain asyncio servers check the relay itself; the last tests relay a real
ZeroMQ link: under CURVE a known label never appears in the capture, in the
plaintext development mode (the control) it does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from tests.support.tcp_proxy import RecordingProxy

from phalanx.protocol import PROTOCOL_VERSION, Hello
from phalanx.transport import (
    AllowEntry,
    CurveClient,
    CurveServer,
    MasterSecurity,
    MasterSocket,
    PlaintextDev,
    WorkerSecurity,
    WorkerSocket,
    generate_keypair,
)
from phalanx.transport.allowlist import write_allow_list

WAIT = 5.0
"""Upper bound of any wait for something that should happen (it happens in milliseconds)."""
LABEL = "proxy-probe-label-5f1c9e"


@contextlib.asynccontextmanager
async def serve(answer: Callable[[bytes], bytes] = lambda data: data) -> AsyncIterator[int]:
    """A server on 127.0.0.1 that writes ``answer(chunk)`` for each chunk until EOF; its port.

    It owns its connection tasks: on exit they are cancelled and awaited.
    """
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    writer.write(answer(data))
                    await asyncio.wait_for(writer.drain(), WAIT)
        finally:
            writer.close()

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(handle(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        pending = list(tasks)
        for task in pending:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), WAIT)
        await asyncio.wait_for(server.wait_closed(), WAIT)


@contextlib.asynccontextmanager
async def connect(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(writer.wait_closed(), WAIT)


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything until the peer closes (a reset counts as the end)."""
    try:
        return await asyncio.wait_for(reader.read(), WAIT)
    except ConnectionResetError:
        return b""


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   data: bytes, expect: int) -> bytes:
    writer.write(data)
    await asyncio.wait_for(writer.drain(), WAIT)
    return await asyncio.wait_for(reader.readexactly(expect), WAIT)


# --- the relay -----------------------------------------------------------------------------


async def test_bytes_are_relayed_both_ways_and_recorded_upstream_direction_first() -> None:
    async with serve(bytes.upper) as upstream, RecordingProxy("127.0.0.1", upstream) as proxy, \
            connect(proxy.port) as (reader, writer):
        assert await exchange(reader, writer, b"ping-one;", 9) == b"PING-ONE;"
        assert await exchange(reader, writer, b"ping-two;", 9) == b"PING-TWO;"
        writer.write_eof()
        assert await read_to_eof(reader) == b""
    assert proxy.captured() == b"ping-one;ping-two;PING-ONE;PING-TWO;"
    assert proxy.connections == 1
    assert not proxy.truncated


async def test_start_returns_the_port_it_listens_on() -> None:
    async with serve() as upstream:
        proxy = RecordingProxy("127.0.0.1", upstream)
        try:
            port = await proxy.start()
            assert port == proxy.port
            async with connect(port) as (reader, writer):
                assert await exchange(reader, writer, b"x", 1) == b"x"
        finally:
            await proxy.close()


async def test_a_megabyte_each_way_arrives_intact() -> None:
    payload = bytes(range(256)) * 4096
    async with serve() as upstream, RecordingProxy("127.0.0.1", upstream) as proxy, \
            connect(proxy.port) as (reader, writer):

        async def write_all() -> None:
            writer.write(payload)
            await asyncio.wait_for(writer.drain(), WAIT)
            writer.write_eof()

        async with asyncio.TaskGroup() as group:
            group.create_task(write_all())
            echoed = group.create_task(read_to_eof(reader))
    assert echoed.result() == payload
    assert proxy.captured() == payload + payload


async def test_each_client_connection_is_counted_and_relayed_on_its_own() -> None:
    async with serve() as upstream, RecordingProxy("127.0.0.1", upstream) as proxy:
        for n in range(3):
            async with connect(proxy.port) as (reader, writer):
                assert await exchange(reader, writer, b"conn%d" % n, 5) == b"conn%d" % n
        assert proxy.connections == 3
        assert proxy.captured() == b"conn0conn1conn2conn0conn1conn2"


async def test_recording_stops_at_the_capture_limit_while_relaying_goes_on() -> None:
    async with serve() as upstream, \
            RecordingProxy("127.0.0.1", upstream, capture_limit=10) as proxy, \
            connect(proxy.port) as (reader, writer):
        assert await exchange(reader, writer, b"0123456789abcdef", 16) == b"0123456789abcdef"
    assert proxy.captured() == b"0123456789"
    assert proxy.truncated


async def test_closing_the_proxy_closes_its_client_connections() -> None:
    async with serve() as upstream:
        proxy = RecordingProxy("127.0.0.1", upstream)
        await proxy.start()
        async with connect(proxy.port) as (reader, writer):
            assert await exchange(reader, writer, b"hello", 5) == b"hello"
            await proxy.close()
            assert await read_to_eof(reader) == b""
        await proxy.close()  # idempotent


async def test_a_new_connection_is_refused_once_the_proxy_is_closed() -> None:
    async with serve() as upstream:
        proxy = RecordingProxy("127.0.0.1", upstream)
        port = await proxy.start()
        await proxy.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT)


async def test_an_unreachable_upstream_closes_the_client_connection() -> None:
    async with serve() as free_port:
        pass  # the port is free again: nothing listens there
    async with RecordingProxy("127.0.0.1", free_port) as proxy, \
            connect(proxy.port) as (reader, _):
        assert await read_to_eof(reader) == b""
    assert proxy.connections == 1


async def test_a_connection_idle_in_both_directions_is_closed() -> None:
    async with serve() as upstream, \
            RecordingProxy("127.0.0.1", upstream, idle_timeout=0.1) as proxy, \
            connect(proxy.port) as (reader, writer):
        assert await exchange(reader, writer, b"hi", 2) == b"hi"
        assert await read_to_eof(reader) == b""


@pytest.mark.parametrize("host", ["localhost", "0.0.0.0", "10.0.0.1", "192.168.1.10",
                                  "::1", "example.com", "", "127.0.0.1:80"])
def test_an_upstream_other_than_an_ipv4_loopback_literal_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        RecordingProxy(host, 5557)


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_an_invalid_upstream_port_is_refused(port: int) -> None:
    with pytest.raises(ValueError, match="port"):
        RecordingProxy("127.0.0.1", port)


def test_any_127_address_is_a_loopback_upstream() -> None:
    RecordingProxy("127.0.0.2", 5557)


# --- a real ZeroMQ link through the relay --------------------------------------------------


async def relay_hello(master_security: MasterSecurity, worker_security: WorkerSecurity) -> bytes:
    """A worker says Hello (worker_name=LABEL) to a master through the proxy; the capture."""
    hello = Hello(protocol_version=PROTOCOL_VERSION, worker_name=LABEL,
                  script_sha256="0" * 64, phalanx_version="0.1.0", cpu_count=1)
    async with MasterSocket("tcp://127.0.0.1:0", master_security) as master:
        master_port = int(master.endpoint.rsplit(":", 1)[1])
        async with RecordingProxy("127.0.0.1", master_port) as proxy:
            async with WorkerSocket(f"tcp://127.0.0.1:{proxy.port}", worker_security) as worker:
                assert await worker.send(hello, timeout=WAIT)
                item = await master.recv(timeout=WAIT)
                assert item is not None
                assert item[1] == hello
            assert proxy.connections >= 1
    return proxy.captured()


async def test_curve_traffic_through_the_proxy_hides_the_worker_name(tmp_path: Path) -> None:
    master_keys, worker_keys = generate_keypair(), generate_keypair()
    allow_list = tmp_path / "authorized_workers"
    write_allow_list(allow_list, [AllowEntry(key=worker_keys.public, name="w1")])
    captured = await relay_hello(
        CurveServer(keypair=master_keys, allow_list=allow_list),
        CurveClient(keypair=worker_keys, master_public=master_keys.public),
    )
    assert captured
    assert LABEL.encode() not in captured


async def test_plaintext_traffic_through_the_proxy_shows_the_worker_name() -> None:
    captured = await relay_hello(PlaintextDev(), PlaintextDev())
    assert LABEL.encode() in captured
