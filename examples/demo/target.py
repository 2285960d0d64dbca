"""A small shop API to aim the demo at: ``python examples/demo/target.py [--port 8080]``.

Standard library only (asyncio streams), HTTP/1.1 keep-alive, bound to
127.0.0.1 and nothing else. Routes: ``POST /login`` (sets a session cookie),
``GET /items`` (a JSON list), ``GET /items/<n>`` (``{"id": n}``; ids above 1000
are 404), anything else 404. Each response waits a few milliseconds
(lognormal) so the percentiles have something to show. Stops on SIGINT/SIGTERM
or after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import secrets
import signal

HOST = "127.0.0.1"
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
ITEMS = [{"id": n, "name": f"item {n}", "price": round(1.5 * n, 2)} for n in range(1, 21)]


def _response(status: str, body: bytes, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode("latin-1") + body


def route(method: str, path: str) -> bytes:
    if method == "POST" and path == "/login":
        cookie = f"Set-Cookie: session={secrets.token_hex(8)}; Path=/; HttpOnly\r\n"
        return _response("200 OK", b'{"ok": true}', cookie)
    if method == "GET" and path == "/items":
        return _response("200 OK", json.dumps(ITEMS).encode())
    if method == "GET" and path.startswith("/items/"):
        ident = path.removeprefix("/items/")
        if ident.isdigit() and 0 < int(ident) <= 1000:
            return _response("200 OK", json.dumps({"id": int(ident)}).encode())
    return _response("404 Not Found", b'{"error": "not found"}')


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
            if len(head) > MAX_HEADER_BYTES:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            }
            length = int(headers.get("content-length", "0"))
            if length > MAX_BODY_BYTES:
                return
            if length:
                await asyncio.wait_for(reader.readexactly(length), timeout=30)
            await asyncio.sleep(random.lognormvariate(-5.5, 0.6))
            writer.write(route(method, target.split("?", 1)[0]))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
            TimeoutError, ValueError):
        return
    finally:
        writer.close()


async def serve(port: int, max_seconds: float) -> None:
    server = await asyncio.start_server(handle, HOST, port, limit=MAX_HEADER_BYTES)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    bound = server.sockets[0].getsockname()[1]
    print(f"demo target listening on http://{HOST}:{bound}", flush=True)
    async with server:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.max_seconds))


if __name__ == "__main__":
    main()
