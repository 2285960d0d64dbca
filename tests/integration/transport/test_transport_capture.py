"""What an eavesdropper on the wire sees: a relay between worker and master records every byte.

Under CURVE no known plaintext (target host, class names, worker name,
reason texts) appears in the capture; in the plaintext development mode, the
control run, it does: proof that the capture would have seen it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from phalanx.protocol import PROTOCOL_VERSION, Bye, Hello, Start
from phalanx.transport import (
    KeyDir,
    MasterSecurity,
    MasterSocket,
    PlaintextDev,
    WorkerSecurity,
    WorkerSocket,
)

WAIT = 5.0
HOST = "https://secret-target.internal.test"
MARKERS = (b"secret-target.internal.test", b"SecretShopperClass", b"worker-marker-name",
           b"marker-reason-text")


@contextlib.asynccontextmanager
async def relay(upstream_port: int, captured: bytearray) -> AsyncIterator[int]:
    """A TCP relay on 127.0.0.1 that forwards both ways and appends every byte to ``captured``.

    It owns its connection handlers: on exit every connection is closed and
    every handler awaited.
    """
    handlers: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                captured.extend(data)
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        writers.append(client_writer)
        server_reader, server_writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", upstream_port), WAIT)
        writers.append(server_writer)
        async with asyncio.TaskGroup() as group:
            group.create_task(pump(client_reader, server_writer))
            group.create_task(pump(server_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()
        if handlers:
            await asyncio.wait_for(asyncio.gather(*handlers, return_exceptions=True), WAIT)
        for writer in writers:
            with contextlib.suppress(ConnectionError):
                await asyncio.wait_for(writer.wait_closed(), WAIT)
        await asyncio.wait_for(server.wait_closed(), WAIT)


async def exchange(master_security: MasterSecurity, worker_security: WorkerSecurity) -> bytes:
    captured = bytearray()
    async with MasterSocket("tcp://127.0.0.1:0", master_security) as master:
        port = int(master.endpoint.rsplit(":", 1)[1])
        async with relay(port, captured) as relay_port, \
                WorkerSocket(f"tcp://127.0.0.1:{relay_port}", worker_security) as worker:
            hello = Hello(protocol_version=PROTOCOL_VERSION, worker_name="worker-marker-name",
                          script_sha256="0" * 64, phalanx_version="0.1.0", cpu_count=1)
            assert await worker.send(hello, timeout=WAIT)
            item = await master.recv(timeout=WAIT)
            assert item is not None
            start = Start(run_id="r1", host=HOST, users_per_class={"SecretShopperClass": 3},
                          spawn_rate=1.0, stop_timeout=1.0)
            assert master.send(item[0], start)
            assert await worker.recv(timeout=WAIT) == start
            assert await worker.send(Bye(reason="marker-reason-text"), timeout=WAIT)
            assert await master.recv(timeout=WAIT) == (item[0], Bye(reason="marker-reason-text"))
    return bytes(captured)


async def test_curve_traffic_shows_none_of_the_known_plaintext(keys: KeyDir) -> None:
    captured = await exchange(keys.curve_server(), keys.curve_client("w1"))
    assert len(captured) > 200
    for marker in MARKERS:
        assert marker not in captured


async def test_plaintext_control_run_shows_the_known_plaintext() -> None:
    captured = await exchange(PlaintextDev(), PlaintextDev())
    for marker in MARKERS:
        assert marker in captured
