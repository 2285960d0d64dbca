"""A recording TCP relay on 127.0.0.1: what an eavesdropper on the wire would see.

Use::

    async with RecordingProxy("127.0.0.1", upstream_port) as proxy:
        port = proxy.port                  # or: port = await proxy.start()
        ... connect a client to 127.0.0.1:port ...
    assert b"secret" not in proxy.captured()

Behaviour
---------
- Listens on ``127.0.0.1`` (an ephemeral port) and relays each accepted
  connection to ``upstream_host:upstream_port``; the upstream must be an IPv4
  loopback literal (``127.x.x.x``), anything else (``localhost`` included) is
  refused with ``ValueError``. If the upstream cannot be reached within
  :data:`IO_TIMEOUT` the client connection is closed.
- Every byte relayed is recorded. :meth:`RecordingProxy.captured` returns all
  bytes that went client -> upstream (in arrival order, all connections
  interleaved as they arrived), followed by all bytes that went upstream ->
  client (likewise). Recording stops at ``capture_limit`` bytes in all
  (64 MiB by default; :attr:`RecordingProxy.truncated` then says so); relaying
  goes on.
- Half-close is relayed: EOF from one side is passed on with ``write_eof``,
  and the connection is closed once both directions ended. An error on either
  side closes both sides.

Bounds
------
Reads take at most :data:`CHUNK` bytes and each write is drained before the
next read (the transport's flow control bounds what is buffered), so a
connection holds at most about two chunks per direction. Connecting, draining
and closing each wait at most :data:`IO_TIMEOUT`; a connection that carried no
byte in either direction for ``idle_timeout`` seconds is closed.

Ownership
---------
Each relayed connection is one task in a set the proxy owns. :meth:`close`
(idempotent; also the end of ``async with``) stops the listener, cancels
those tasks, closes every relayed socket and awaits it all. An unexpected
exception in a relay task (a bug: connection errors end only that
connection) is raised from :meth:`close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from types import TracebackType
from typing import Final, Self

CHUNK: Final = 64 * 1024
"""Largest single read."""
DEFAULT_CAPTURE_LIMIT: Final = 64 * 1024 * 1024
"""Most bytes recorded (both directions together)."""
IO_TIMEOUT: Final = 5.0
"""Longest wait to connect upstream, to drain a write, or to close a socket."""
DEFAULT_IDLE_TIMEOUT: Final = 60.0
"""A connection with no traffic in either direction for this long is closed."""


def _check_loopback(host: str) -> str:
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        raise ValueError(f"upstream must be an IPv4 loopback literal (127.x.x.x), not {host!r}")\
            from None
    if not address.is_loopback:
        raise ValueError(f"upstream must be an IPv4 loopback literal (127.x.x.x), not {host!r}")
    return host


class _Link:
    """One relayed connection: its two writers and when it last carried a byte."""

    __slots__ = ("client", "last_activity", "upstream")

    def __init__(self, client: asyncio.StreamWriter, now: float) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.last_activity = now


class RecordingProxy:
    """A TCP relay on 127.0.0.1 that records every byte both ways (see the module docstring)."""

    def __init__(self, upstream_host: str, upstream_port: int, *,
                 capture_limit: int = DEFAULT_CAPTURE_LIMIT,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
        if isinstance(upstream_port, bool) or not isinstance(upstream_port, int) \
                or not 0 < upstream_port < 65536:
            raise ValueError(f"upstream_port must be 1..65535, not {upstream_port!r}")
        if capture_limit < 0:
            raise ValueError("capture_limit must be >= 0")
        if not idle_timeout > 0:
            raise ValueError("idle_timeout must be > 0")
        self._upstream_host = _check_loopback(upstream_host)
        self._upstream_port = upstream_port
        self._capture_limit = capture_limit
        self._idle_timeout = idle_timeout
        self._to_upstream = bytearray()
        self._to_client = bytearray()
        self._truncated = False
        self._connections = 0
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._failures: list[BaseException] = []
        self._closed = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> int:
        """Listen on 127.0.0.1 (an ephemeral port) and return the port; once only."""
        if self._server is not None or self._closed:
            raise RuntimeError("a RecordingProxy starts once")
        # A plain (non-coroutine) callback: asyncio starts no task of its own, _accept does.
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=CHUNK)
        port: int = self._server.sockets[0].getsockname()[1]
        self._port = port
        return port

    async def close(self) -> None:
        """Stop listening, close every relayed connection and await its task; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), IO_TIMEOUT)
        if self._server is not None:
            await asyncio.wait_for(self._server.wait_closed(), IO_TIMEOUT)
        if self._failures:
            raise BaseExceptionGroup("RecordingProxy relay tasks failed", self._failures)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    # --- what it saw -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The listening port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("the proxy is not started")
        return self._port

    @property
    def connections(self) -> int:
        """How many client connections were accepted."""
        return self._connections

    @property
    def truncated(self) -> bool:
        """Whether bytes were relayed but not recorded (``capture_limit`` reached)."""
        return self._truncated

    def captured(self) -> bytes:
        """Every recorded byte: all client -> upstream bytes, then all upstream -> client bytes."""
        return bytes(self._to_upstream) + bytes(self._to_client)

    # --- relaying ----------------------------------------------------------------------------

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closed:
            writer.close()
            return
        self._connections += 1
        task = asyncio.get_running_loop().create_task(self._relay(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._failures.append(error)

    async def _relay(self, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        link = _Link(client_writer, asyncio.get_running_loop().time())
        try:
            try:
                upstream_reader, upstream_writer = await asyncio.wait_for(
                    asyncio.open_connection(self._upstream_host, self._upstream_port, limit=CHUNK),
                    IO_TIMEOUT)
            except (OSError, TimeoutError):
                return
            link.upstream = upstream_writer
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._pump(link, client_reader, upstream_writer,
                                                 self._to_upstream))
                    group.create_task(self._pump(link, upstream_reader, client_writer,
                                                 self._to_client))
            except* (OSError, TimeoutError):
                pass  # a broken or stuck side ends this connection only
        finally:
            await self._close_link(link)

    async def _pump(self, link: _Link, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, record: bytearray) -> None:
        """Copy ``reader`` to ``writer`` until EOF; then pass the EOF on."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await asyncio.wait_for(reader.read(CHUNK), self._idle_timeout)
            except TimeoutError:
                if loop.time() - link.last_activity < self._idle_timeout:
                    continue  # the other direction is busy: the link is not idle
                raise
            if not data:
                break
            link.last_activity = loop.time()
            self._record(record, data)
            writer.write(data)
            await asyncio.wait_for(writer.drain(), IO_TIMEOUT)
        if writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()

    def _record(self, record: bytearray, data: bytes) -> None:
        room = self._capture_limit - len(self._to_upstream) - len(self._to_client)
        if len(data) > room:
            self._truncated = True
            data = data[:max(room, 0)]
        record += data

    @staticmethod
    async def _close_link(link: _Link) -> None:
        writers = [w for w in (link.client, link.upstream) if w is not None]
        for writer in writers:
            writer.close()
        for writer in writers:
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), IO_TIMEOUT)
