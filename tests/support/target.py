"""A real HTTP/1.1 target server for tests and benchmarks, on 127.0.0.1 only.

Written on an :class:`asyncio.Protocol` with ``httptools.HttpRequestParser``:
fast routes answer synchronously from the parser callback (no task per
request); routes that wait (``/slow``, ``/stall``) run as tasks owned by the
server and cancelled when it stops. Keep-alive by default; requests on one
connection are answered in order.

Two ways to run it::

    async with serve() as target:          # in the current event loop
        ... target.url, target.port, target.stats ...

    with start_in_thread() as target:      # its own loop (uvloop) in a thread
        ...                                 # target.stop() also works

``tls=True`` serves HTTPS with a certificate for 127.0.0.1/localhost issued
by a throw-away trustme CA; ``target.ca_file`` is the CA's PEM file.

Routes (GET unless said; HEAD works on every route and sends no body):

==========================  =====================================================
``/``                       small ``text/plain`` 200
``/items``                  JSON list of 10 items
``/items/{n}``              JSON ``{"id": n}``
``/echo``, ``/echo/...``    any method: JSON of method, path, query, headers
                            (``[[name, value], ...]`` as received), body
``/status/{code}``          that status (200-599)
``/redirect/{n}``           302 to ``/redirect/{n-1}``; ``/redirect/1`` -> ``/``
                            (``?status=307`` picks the code)
``/redirect-to?url=U``      redirect to ``U`` (``&status=303`` picks the code)
``/set-cookie?a=1&b=2``     ``Set-Cookie: a=1; Path=/`` per parameter
``/set-cookie-header?value=V``  ``Set-Cookie: V`` verbatim, per ``value``
``/cookies``                JSON ``{"cookie": <Cookie header or null>}``
``/gzip``, ``/deflate``     compressed JSON (``?bytes=N``: N compressed ``a``
                            bytes instead; ``/deflate?raw=1``: raw deflate)
``/chunked``                chunked body of ``?n=5`` parts ``part-i;``
``/big?bytes=N``            N bytes of ``x`` (``&chunked=1``: chunked)
``/slow?delay=S``           waits S seconds (max 30) before the headers
``/stall``                  headers (Content-Length 1000) + 10 bytes, then silence
``/close``                  200 with ``Connection: close``, then closes
``/eof``                    body delimited by closing the connection
``/bad``                    bytes that are not HTTP, then closes
==========================  =====================================================

``stats`` counts connections accepted and requests per path (thread-safe),
so tests can assert keep-alive reuse: N requests, 1 connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ipaddress
import json
import ssl
import tempfile
import threading
import zlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qsl

import httptools

__all__ = [
    "Reply",
    "Request",
    "TargetServer",
    "TargetStats",
    "ThreadedTarget",
    "serve",
    "start_in_thread",
]

LOOPBACK = "127.0.0.1"
MAX_DELAY_S = 30.0
MAX_BIG_BYTES = 256 * 1024 * 1024


class TargetStats:
    """Connections accepted and requests per path (query excluded). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._connections = 0

    def count_connection(self) -> None:
        with self._lock:
            self._connections += 1

    def count_request(self, path: str) -> None:
        with self._lock:
            self._requests[path] += 1

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self._requests.values())

    def requests(self, path: str) -> int:
        """Requests received for ``path`` (without query string)."""
        with self._lock:
            return self._requests[path]

    def by_path(self) -> dict[str, int]:
        with self._lock:
            return dict(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._connections = 0


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool
    connection: _ServerConnection

    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    def param(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.params():
            if key == name:
                return value
        return default

    def header(self, name: str) -> str | None:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None


@dataclass(slots=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = "text/plain"
    close: bool = False
    chunks: list[bytes] | None = None  # send chunked instead of Content-Length


Handler = Callable[[Request], "Reply | Coroutine[Any, Any, Reply | None] | None"]


class _ServerConnection(asyncio.Protocol):
    def __init__(self, server: TargetServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._pending: deque[Request] = deque()
        self._busy = False
        self._lost = asyncio.Event()

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop: not a subclass
        self._server.stats.count_connection()
        self._server._connections.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self.write(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost.set()
        self._server._connections.discard(self)

    # -- httptools callbacks
    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        path, _, query = self._url.decode("latin-1").partition("?")
        request = Request(
            method=self._parser.get_method().decode("ascii"),
            path=path,
            query=query,
            headers=self._headers,
            body=b"".join(self._body),
            keep_alive=self._parser.should_keep_alive(),
            connection=self,
        )
        self._url = b""
        self._headers = []
        self._body = []
        if self._busy:
            self._pending.append(request)
        else:
            self._dispatch(request)

    # -- used by handlers
    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def wait_lost(self) -> None:
        await self._lost.wait()

    # -- dispatch
    def _dispatch(self, request: Request) -> None:
        self._server.stats.count_request(request.path)
        result = self._server.route(request)(request)
        if result is None:
            return  # the handler wrote (and closed) by itself
        if isinstance(result, Reply):
            self._send(request, result)
            return
        self._busy = True
        self._server._spawn(self._finish(request, result))

    async def _finish(self, request: Request, work: Coroutine[Any, Any, Reply | None]) -> None:
        try:
            reply = await work
            if reply is not None:
                self._send(request, reply)
        finally:
            self._busy = False
        while self._pending and not self._busy:
            self._dispatch(self._pending.popleft())

    def _send(self, request: Request, reply: Reply) -> None:
        status = reply.status
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [f"HTTP/1.1 {status} {phrase}\r\n"]
        if reply.content_type is not None:
            lines.append(f"Content-Type: {reply.content_type}\r\n")
        lines.extend(f"{name}: {value}\r\n" for name, value in reply.headers)
        no_body = request.method == "HEAD" or status in (204, 304)
        if reply.chunks is not None:
            lines.append("Transfer-Encoding: chunked\r\n")
        elif status not in (204, 304):
            lines.append(f"Content-Length: {len(reply.body)}\r\n")
        close = reply.close or not request.keep_alive
        if close:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        payload = "".join(lines).encode("latin-1")
        if not no_body:
            if reply.chunks is not None:
                parts = [payload]
                for chunk in reply.chunks:
                    parts.append(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                parts.append(b"0\r\n\r\n")
                payload = b"".join(parts)
            else:
                payload += reply.body
        self.write(payload)
        if close:
            self.close()


class TargetServer:
    """The server; see the module docstring. Use :func:`serve` or :func:`start_in_thread`."""

    def __init__(self, *, tls: bool = False, host: str = LOOPBACK) -> None:
        if not (host == "::1" or ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8")):
            raise ValueError("the target server binds loopback only")
        self.host = host
        self.stats = TargetStats()
        self.port = 0
        self.ca_file: str | None = None
        self._tls = tls
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_ServerConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._routes: dict[str, Handler] = {
            "/": _root,
            "/items": _items,
            "/echo": _echo,
            "/redirect-to": _redirect_to,
            "/set-cookie": _set_cookie,
            "/set-cookie-header": _set_cookie_header,
            "/cookies": _cookies,
            "/gzip": _gzip,
            "/deflate": _deflate,
            "/chunked": _chunked,
            "/big": _big,
            "/slow": _slow,
            "/stall": _stall,
            "/close": _close,
            "/eof": _eof,
            "/bad": _bad,
        }
        self._prefix_routes: list[tuple[str, Handler]] = [
            ("/items/", _item),
            ("/echo/", _echo),
            ("/status/", _status),
            ("/redirect/", _redirect),
        ]

    @property
    def scheme(self) -> str:
        return "https" if self._tls else "http"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def route(self, request: Request) -> Handler:
        handler = self._routes.get(request.path)
        if handler is not None:
            return handler
        for prefix, prefix_handler in self._prefix_routes:
            if request.path.startswith(prefix):
                return prefix_handler
        return _not_found

    async def start(self) -> None:
        ssl_context = self._server_tls() if self._tls else None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _ServerConnection(self), self.host, 0, ssl=ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def close_connections(self) -> None:
        """Close every open connection from the server side (idle keep-alive ones included)."""
        for connection in list(self._connections):
            connection.close()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _server_tls(self) -> ssl.SSLContext:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
        self._tmp = tempfile.TemporaryDirectory(prefix="phalanx-target-")
        ca_path = Path(self._tmp.name) / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        self.ca_file = str(ca_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        return context


@contextlib.asynccontextmanager
async def serve(*, tls: bool = False, host: str = LOOPBACK) -> AsyncIterator[TargetServer]:
    """Run a target in the current event loop for the duration of the block.

    ``host`` may be any loopback address (127.0.0.2 makes a "forbidden" target
    for scope tests that proves, by its counters, that nothing arrived)."""
    server = TargetServer(tls=tls, host=host)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class ThreadedTarget:
    """A target running in its own thread and event loop."""

    def __init__(self, *, tls: bool, use_uvloop: bool) -> None:
        self._tls = tls
        self._use_uvloop = use_uvloop
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="phalanx-target", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._server: TargetServer | None = None
        self._error: BaseException | None = None

    @property
    def server(self) -> TargetServer:
        assert self._server is not None
        return self._server

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def stats(self) -> TargetStats:
        return self.server.stats

    @property
    def ca_file(self) -> str | None:
        return self.server.ca_file

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("target server did not start")
        if self._error is not None:
            raise RuntimeError("target server failed to start") from self._error

    def stop(self, timeout: float = 10.0) -> None:
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(event.set)
        self._thread.join(timeout)

    def __enter__(self) -> ThreadedTarget:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        factory: Callable[[], asyncio.AbstractEventLoop] | None = None
        if self._use_uvloop:
            import uvloop

            factory = uvloop.new_event_loop
        try:
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        async with serve(tls=self._tls) as server:
            self._server = server
            self._ready.set()
            await self._stop_event.wait()


def start_in_thread(*, tls: bool = False, use_uvloop: bool = True) -> ThreadedTarget:
    """Start a target in a background thread; returns once it listens."""
    target = ThreadedTarget(tls=tls, use_uvloop=use_uvloop)
    target.start()
    return target


# -- routes ------------------------------------------------------------------------------


def _json(data: object, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(
        status=status,
        body=json.dumps(data).encode(),
        content_type="application/json",
        headers=headers or [],
    )


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.param(name)
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        value = default
    return max(low, min(high, value))


def _root(request: Request) -> Reply:
    return Reply(body=b"phalanx target\n")


def _items(request: Request) -> Reply:
    return _json([{"id": i, "name": f"item-{i}"} for i in range(10)])


def _item(request: Request) -> Reply:
    tail = request.path[len("/items/") :]
    if not tail.isdigit():
        return _not_found(request)
    return _json({"id": int(tail)})


def _echo(request: Request) -> Reply:
    return _json(
        {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": [[name, value] for name, value in request.headers],
            "body": request.body.decode("utf-8", errors="replace"),
            "body_length": len(request.body),
        }
    )


def _status(request: Request) -> Reply:
    tail = request.path[len("/status/") :]
    code = int(tail) if tail.isdigit() else 0
    if not 200 <= code <= 599:
        return Reply(status=400, body=b"status must be 200-599\n")
    body = b"" if code in (204, 304) else f"status {code}\n".encode()
    return Reply(status=code, body=body)


def _redirect_status(request: Request, default: int = 302) -> int:
    code = _int_param(request, "status", default, 300, 399)
    return code if code in (301, 302, 303, 307, 308) else default


def _redirect(request: Request) -> Reply:
    tail = request.path[len("/redirect/") :]
    hops = int(tail) if tail.isdigit() else 1
    location = "/" if hops <= 1 else f"/redirect/{hops - 1}"
    query = f"?status={request.param('status')}" if request.param("status") else ""
    if hops > 1:
        location += query
    return Reply(status=_redirect_status(request), headers=[("Location", location)])


def _redirect_to(request: Request) -> Reply:
    location = request.param("url", "/") or "/"
    return Reply(status=_redirect_status(request), headers=[("Location", location)])


def _set_cookie(request: Request) -> Reply:
    params = request.params()
    headers = [("Set-Cookie", f"{name}={value}; Path=/") for name, value in params]
    return _json({"set": dict(params)}, headers=headers)


def _set_cookie_header(request: Request) -> Reply:
    headers = [("Set-Cookie", value) for name, value in request.params() if name == "value"]
    return _json({"count": len(headers)}, headers=headers)


def _cookies(request: Request) -> Reply:
    return _json({"cookie": request.header("cookie")})


def _compressible(request: Request) -> bytes:
    size = request.param("bytes")
    if size is not None and size.isdigit():
        return b"a" * min(int(size), MAX_BIG_BYTES)
    return json.dumps({"compressed": True, "items": list(range(50))}).encode()


def _gzip(request: Request) -> Reply:
    body = gzip.compress(_compressible(request))
    return Reply(body=body, content_type="application/json", headers=[("Content-Encoding", "gzip")])


def _deflate(request: Request) -> Reply:
    data = _compressible(request)
    if request.param("raw") == "1":
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = compressor.compress(data) + compressor.flush()
    else:
        body = zlib.compress(data)
    return Reply(
        body=body, content_type="application/json", headers=[("Content-Encoding", "deflate")]
    )


def _chunked(request: Request) -> Reply:
    count = _int_param(request, "n", 5, 0, 10_000)
    return Reply(chunks=[f"part-{i};".encode() for i in range(count)])


def _big(request: Request) -> Reply:
    size = _int_param(request, "bytes", 1024 * 1024, 0, MAX_BIG_BYTES)
    body = b"x" * size
    if request.param("chunked") == "1":
        step = 64 * 1024
        return Reply(chunks=[body[i : i + step] for i in range(0, size, step)])
    return Reply(body=body)


async def _slow(request: Request) -> Reply:
    raw = request.param("delay", "1")
    try:
        delay = max(0.0, min(MAX_DELAY_S, float(raw or "1")))
    except ValueError:
        delay = 1.0
    await asyncio.sleep(delay)  # the behaviour under test: a slow server
    return Reply(body=b"slow\n")


async def _stall(request: Request) -> None:
    connection = request.connection
    connection.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
    await connection.wait_lost()  # never finishes the body


def _close(request: Request) -> Reply:
    return Reply(body=b"closing\n", close=True)


def _eof(request: Request) -> Reply | None:
    connection = request.connection
    connection.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the connection closes"
    )
    connection.close()
    return None


def _bad(request: Request) -> Reply | None:
    connection = request.connection
    connection.write(b"THIS IS NOT HTTP AT ALL\r\n\r\n")
    connection.close()
    return None


def _not_found(request: Request) -> Reply:
    return Reply(status=404, body=b"not found\n")
