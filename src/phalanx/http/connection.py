"""One keep-alive HTTP/1.1 connection: an :class:`asyncio.Protocol` fed to
``httptools.HttpResponseParser`` (llhttp, in C).

Why a protocol and not streams: this is the load generator's hot path. A
protocol receives bytes in a callback and hands them straight to the C
parser; there is no StreamReader buffer, no per-read coroutine and no task per
request. Measured on one core against nginx: aiohttp ~15k req/s, Locust
FastHttpUser ~10k, a protocol-level client with httptools + uvloop ~85k.

One exchange at a time (no pipelining). :meth:`HttpConnection.exchange`
writes preformatted request bytes and returns a future that resolves to a
:class:`~phalanx.http.response.Response` or to a
:class:`~phalanx.core.results.RequestFailure`. It never resolves with an
exception: failures are values, which keeps the await path free of raise /
catch costs. Per request the connection allocates one future and the response.

Timeouts: one timer per connection enforces both the read timeout (the
longest silence between bytes, including the wait for the first byte) and
the request deadline. Bytes only record the loop time; an exchange keeps a
pending timer that fires no later than needed, and the timer re-arms itself
when it fires early, so a busy connection creates a timer about once per
read timeout, not once per request or chunk.

Head: the parser is given no per-field callback (each would cost a Python
call and two bytes objects per header line); when llhttp says the head is
complete, the connection cuts the header block out of the bytes it received
(kept across reads while the head is unfinished, at most
:data:`MAX_HEAD_BYTES`) and looks only for what matters before the body:
``Content-Encoding`` and ``Set-Cookie``. The response splits the block into
fields only when someone reads its headers. Trailer fields are not kept.

Body: kept up to ``limit`` bytes (after decompression), the rest counted and
discarded (``truncated``). ``wire_bytes`` counts body bytes as received.
Framing comes from llhttp (Content-Length, chunked, read-until-close; 1xx
interim responses skipped; 204/304 without body); HEAD responses are ended
at the end of their headers, because httptools cannot be told to skip a body.

Invariants: after a failure, the transport is closed and the connection is
never reused; ``reusable`` is True only after a complete response that allows
keep-alive, with nothing unexpected received.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Final, cast

import httptools

from phalanx.core.results import ErrorKind, RequestFailure
from phalanx.http.decoding import BodyDecodeError, Decompressor, decoder_for
from phalanx.http.headers import split_fields
from phalanx.http.response import Response

__all__ = ["ExchangeResult", "HttpConnection"]

ExchangeResult = Response | RequestFailure

_TIMER_SLACK: Final = 0.001  # uvloop timers have millisecond resolution


MAX_HEAD_BYTES: Final = 64 * 1024
"""Largest response head (status line and header fields) a connection accepts."""


class _EndOfHeadResponse(Exception):
    """Raised from the header callback to stop parsing a HEAD response's body."""


_LINE_ENDS: Final = (b"\r", b"\n")


class _HeadTooLarge(Exception):
    """Raised from the header callback when the head is over :data:`MAX_HEAD_BYTES`."""


class HttpConnection(asyncio.Protocol):
    """A client connection; created by the connector, owned by an origin pool."""

    __slots__ = (
        "_body_room",
        "_chunks",
        "_closed_waiter",
        "_deadline",
        "_decoder",
        "_fields",
        "_head",
        "_head_chunk",
        "_head_from",
        "_head_parts",
        "_head_size",
        "_in_head",
        "_interim",
        "_last_rx",
        "_loop",
        "_lost",
        "_parser",
        "_read_timeout",
        "_received_any",
        "_set_cookie",
        "_status",
        "_timer",
        "_timer_when",
        "_transport",
        "_truncated",
        "_waiter",
        "_wire",
        "on_lost",
        "reusable",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[ExchangeResult] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._closed_waiter: asyncio.Future[None] | None = None
        self._lost = False
        # Called once when the transport is gone (the run's connection budget).
        self.on_lost: Callable[[], None] | None = None
        # True only between a clean, keep-alive exchange and the next one, while
        # the peer has neither closed nor sent anything unasked.
        self.reusable = False
        self._deadline = 0.0
        self._read_timeout = 0.0
        self._last_rx = 0.0
        # Per-exchange state, reset by exchange().
        self._in_head = False  # the response head has not ended yet
        self._head_chunk = b""  # the bytes being parsed while in the head
        self._head_parts: list[bytes] = []  # earlier bytes of the head (when it spans reads)
        self._head_size = 0
        self._head_from = 0  # where the head starts in parts + chunk (after a 1xx head)
        self._fields = b""  # the response's head: status line, b"\r\nName: value" per field
        self._chunks: list[bytes] = []
        self._status = 0
        self._head = False
        self._body_room = 0
        self._wire = 0
        self._truncated = False
        self._decoder: Decompressor | None = None
        self._interim = False  # inside a 1xx response
        self._set_cookie = False
        self._received_any = False

    @property
    def received_any(self) -> bool:
        """Whether any byte of a response arrived during the last exchange."""
        return self._received_any

    # -- exchange --------------------------------------------------------------------

    def exchange(
        self,
        payload: bytes,
        head: bool,
        limit: int,
        read_timeout: float,
        deadline: float,
    ) -> asyncio.Future[ExchangeResult]:
        """Send one request (``payload`` = head + body bytes) and return the
        future of its result. The caller must await it before the next call.
        """
        loop = self._loop
        waiter: asyncio.Future[ExchangeResult] = loop.create_future()
        transport = self._transport
        if transport is None or self._lost or transport.is_closing():
            waiter.set_result(
                RequestFailure(ErrorKind.CONNECTION_RESET, "connection closed before the request")
            )
            return waiter
        # A completed exchange leaves fresh lists behind; a failed one may not.
        if self._head_parts:
            self._head_parts = []
            self._head_size = 0
        if self._chunks:
            self._chunks = []
        self._in_head = True
        self._head_from = 0
        self._status = 0
        self._head = head
        self._body_room = limit
        self._wire = 0
        self._truncated = False
        self._decoder = None
        self._interim = False
        self._set_cookie = False
        self._received_any = False
        self.reusable = False
        self._waiter = waiter
        now = loop.time()
        self._last_rx = now
        self._read_timeout = read_timeout
        self._deadline = deadline
        when = now + read_timeout
        if deadline < when:
            when = deadline
        # One timer per connection, not per request: a pending timer that fires
        # no later than needed is kept (it re-arms itself when it fires early).
        timer = self._timer
        if timer is None or self._timer_when > when:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(when, self._on_timer)
            self._timer_when = when
        try:
            transport.write(payload)
        except (OSError, RuntimeError):
            self._fail(ErrorKind.CONNECTION_RESET, "connection closed before the request")
        return waiter

    def close(self) -> None:
        """Close the transport; a pending exchange fails with ``connection_reset``."""
        self.reusable = False
        if self._waiter is not None:
            self._fail(ErrorKind.CONNECTION_RESET, "connection closed by the client")
        elif self._transport is not None:
            self._transport.close()

    async def wait_closed(self, grace: float) -> None:
        """Wait (at most ``grace`` seconds) until the transport is gone; abort it after."""
        if self._lost or self._transport is None:
            return
        if self._closed_waiter is None:
            self._closed_waiter = self._loop.create_future()
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(self._closed_waiter)
        except TimeoutError:
            self._transport.abort()

    # -- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; both are stream transports.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Nothing was asked: bytes here mean the peer broke the protocol.
            self.reusable = False
            if self._transport is not None:
                self._transport.close()
            return
        self._last_rx = self._loop.time()
        self._received_any = True
        in_head = self._in_head
        if in_head:
            self._head_chunk = data
        try:
            self._parser.feed_data(data)
            if in_head and self._in_head:
                self._keep_head_part()
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _EndOfHeadResponse):
                # The parser was stopped mid-message on purpose: replace it.
                self._parser = httptools.HttpResponseParser(self)
            elif isinstance(cause, (BodyDecodeError, _HeadTooLarge)):
                self._fail(ErrorKind.BAD_HTTP, str(cause))
            else:
                self._fail(ErrorKind.BAD_HTTP, "invalid HTTP response")
        except httptools.HttpParserUpgrade:
            self._fail(ErrorKind.BAD_HTTP, "unexpected protocol upgrade")
        except httptools.HttpParserError:
            self._fail(ErrorKind.BAD_HTTP, "invalid HTTP response")

    def eof_received(self) -> bool:
        self.reusable = False
        return False  # close the transport; connection_lost settles a pending exchange

    def connection_lost(self, exc: Exception | None) -> None:
        on_lost, self.on_lost = self.on_lost, None
        if on_lost is not None:
            on_lost()
        self._lost = True
        self.reusable = False
        self._cancel_timer()
        if self._waiter is not None:
            if exc is None and self._status >= 200 and self._body_ends_at_close():
                self.on_message_complete()  # a body delimited by the connection close
            elif isinstance(exc, ssl.SSLError):
                self._fail(ErrorKind.TLS, f"TLS error: {exc.reason or exc}")
            elif self._received_any:
                self._fail(ErrorKind.CONNECTION_RESET, "connection closed mid-response")
            else:
                self._fail(ErrorKind.CONNECTION_RESET, "connection closed before any response")
        closed = self._closed_waiter
        if closed is not None and not closed.done():
            closed.set_result(None)

    # -- the response head -------------------------------------------------------------

    def _keep_head_part(self) -> None:
        """After a read that did not end the head: keep its unparsed bytes for the next.

        The unfinished head is ``b"".join(_head_parts) + _head_chunk`` from offset
        ``_head_from`` on (past the 1xx heads that ended in it).
        """
        rest = self._head_chunk
        if self._head_from:
            rest = rest[self._head_from:]
            self._head_from = 0
        self._head_parts.append(rest)
        self._head_size += len(rest)
        if self._head_size > MAX_HEAD_BYTES:
            self._fail(ErrorKind.BAD_HTTP,
                       f"response head larger than {MAX_HEAD_BYTES // 1024} KiB")

    def _header_block(self) -> bytes:
        """The head that just ended, as received: its status line, then ``b"\r\n"`` and
        a ``name:value`` field per field, without the final empty line.

        llhttp has accepted the head: it skips CR and LF bytes before a status
        line (so do we), lines end with CRLF, a field's name is a token right
        after the CRLF (no folding, no space before the colon), values hold no
        CR or LF. So the head ends at its first empty line, and ``b"\r\nname:"``
        (any case) in the block is exactly a field of that name. A head counts
        against :data:`MAX_HEAD_BYTES` with its final empty line.
        """
        parts = self._head_parts
        buffer = self._head_chunk
        if parts:  # joined once: what stays unparsed is taken from the joined bytes
            buffer = self._head_chunk = b"".join((*parts, buffer))
            self._head_parts = []
            self._head_size = 0
        start = self._head_from
        while buffer[start:start + 1] in _LINE_ENDS:
            start += 1
        end = buffer.find(b"\r\n\r\n", start)
        if end < 0 or end + 4 - start > MAX_HEAD_BYTES:
            raise _HeadTooLarge(f"response head larger than {MAX_HEAD_BYTES // 1024} KiB"
                                if end >= 0 else "response head without an end")
        self._head_from = end + 4  # a 1xx head: the next one starts there
        return buffer[start:end]

    # -- httptools callbacks (no on_header: fields are read from the head's bytes) ------

    def on_message_begin(self) -> None:
        if self._waiter is None:
            # A message begins after the response, in the same read: the peer sent
            # something unasked, and llhttp is now inside it. Never reuse this connection.
            self.reusable = False

    def on_headers_complete(self) -> None:
        status = self._status = self._parser.get_status_code()
        fields = self._header_block()
        if status < 200:
            self._interim = True  # 1xx: llhttp ends it without body; skip it
            return
        self._in_head = False
        self._head_chunk = b""
        if self._head_parts:
            self._head_parts = []
            self._head_size = 0
        self._fields = fields
        # Only what must be known before the body: whether to decode it, and whether
        # cookies come. (Framing is llhttp's; see _body_ends_at_close.) find(), not
        # "in": "in" on bytes first tries the needle as an integer, raising and
        # clearing a TypeError every time.
        lowered = fields.lower()
        self._set_cookie = lowered.find(b"\r\nset-cookie:") >= 0
        if lowered.find(b"\r\ncontent-encoding:") >= 0:
            for name, value in split_fields(fields):
                if name.lower() == b"content-encoding":
                    self._decoder = decoder_for(value)
        if self._head:
            self.on_message_complete()
            raise _EndOfHeadResponse

    def _body_ends_at_close(self) -> bool:
        """Whether the current response's body is delimited by the connection's end, as
        llhttp decides it: no Content-Length, no Transfer-Encoding whose last coding is
        chunked, a status that has a body."""
        if self._status in (204, 304):
            return False
        coding = b""
        for name, value in split_fields(self._fields):
            name = name.lower()
            if name == b"content-length":
                return False
            if name == b"transfer-encoding":
                coding = value.rpartition(b",")[2].strip().lower()
        return coding != b"chunked"

    def on_body(self, data: bytes) -> None:
        size = len(data)
        self._wire += size
        room = self._body_room
        decoder = self._decoder
        if decoder is None and size <= room:  # the common case
            self._chunks.append(data)
            self._body_room = room - size
            return
        if decoder is not None:
            if self._truncated:
                return
            data, overflow = decoder.decompress(data, room)
            size = len(data)
            if overflow:
                self._truncated = True
        else:
            self._truncated = True
            if room <= 0:
                return
            data = data[:room]
            size = room
        if size:
            self._chunks.append(data)
            self._body_room = room - size

    def on_message_complete(self) -> None:
        """Settle the exchange with its response (also called for HEAD and
        connection-delimited bodies)."""
        if self._interim:
            self._interim = False
            return
        waiter = self._waiter
        if waiter is None:
            self.reusable = False  # an unrequested response: poison the connection
            return
        decoder = self._decoder
        if decoder is not None and not self._truncated:
            try:
                tail, overflow = decoder.flush(self._body_room)
            except BodyDecodeError as exc:
                self._fail(ErrorKind.BAD_HTTP, str(exc))
                return
            if tail:
                self._chunks.append(tail)
            if overflow:
                self._truncated = True
        chunks = self._chunks
        if not chunks:
            content = b""
        elif len(chunks) == 1:
            content = chunks[0]
        else:
            content = b"".join(chunks)
        response = Response(
            self._status,
            self._fields,
            content,
            self._truncated,
            self._wire,
            self._set_cookie,
        )
        self._fields = b""
        self._chunks = []
        self._waiter = None
        # llhttp says no when the body ends with the connection (message_needs_eof).
        keep_alive = self.reusable = not self._lost and self._parser.should_keep_alive()
        if not keep_alive and self._transport is not None:
            self._transport.close()
        if not waiter.done():
            waiter.set_result(response)

    # -- failures and time -------------------------------------------------------------

    def _fail(self, kind: str, message: str) -> None:
        self.reusable = False
        self._head_chunk = b""  # what a failed exchange had received is not needed
        self._head_parts = []
        self._head_size = 0
        self._fields = b""
        self._cancel_timer()
        waiter = self._waiter
        self._waiter = None
        if self._transport is not None:
            self._transport.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(RequestFailure(kind, message))

    def _cancel_timer(self) -> None:
        timer = self._timer
        if timer is not None:
            timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        if self._waiter is None:
            return  # idle: the next exchange arms a new timer
        now = self._loop.time()
        if now >= self._deadline - _TIMER_SLACK:
            self._fail(ErrorKind.TIMEOUT, "request exceeded its total timeout")
            return
        idle_until = self._last_rx + self._read_timeout
        if now >= idle_until - _TIMER_SLACK:
            self._fail(ErrorKind.READ_TIMEOUT, f"no response bytes for {self._read_timeout:g} s")
            return
        when = min(idle_until, self._deadline)
        self._timer = self._loop.call_at(when, self._on_timer)
        self._timer_when = when
