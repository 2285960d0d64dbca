"""Quick single-core throughput of phalanx's HTTP client (not a test, not a comparison).

Starts a tiny raw asyncio server (uvloop, fixed keep-alive response, no
parsing beyond finding the end of each request head) in a child process,
pinned to another core when there is one, then runs N simulated users in
this process, each with its own HttpSession, each looping ``GET /`` for a
few seconds on one uvloop event loop. Every request goes through the full
client path, including the recorder call. Prints requests/second.

    .venv/bin/python bench/bench_client_quick.py [--users 50] [--seconds 3]

Loopback only (127.0.0.1). For ratios against Locust and wrk, see bench/'s
side-by-side benchmark; absolute numbers here drift with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time
from multiprocessing.connection import Connection

import uvloop

from phalanx.core.results import RequestFailure
from phalanx.http import HttpOptions, HttpSession, TlsContexts

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"


class _FixedResponse(asyncio.Protocol):
    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        data = self._tail + data
        count = data.count(b"\r\n\r\n")
        self._tail = data[data.rfind(b"\r\n\r\n") + 4 :] if count else data
        if count and self._transport is not None:
            self._transport.write(RESPONSE * count)


def _serve(port_pipe: Connection, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_FixedResponse, "127.0.0.1", 0, backlog=1024)
        port_pipe.send(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    uvloop.run(main())


class _CountingRecorder:
    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0

    def record(
        self,
        method: str,
        name: str,
        elapsed: float,
        response_bytes: int,
        failure: RequestFailure | None,
    ) -> None:
        if failure is None:
            self.ok += 1
        else:
            self.failed += 1

    def record_exception(self, task: str, error_type: str, message: str, location: str) -> None:
        self.failed += 1


async def _run(url: str, users: int, seconds: float) -> tuple[int, int, float]:
    recorder = _CountingRecorder()
    options = HttpOptions()
    tls = TlsContexts()
    sessions = [HttpSession(url, recorder, options=options, tls=tls) for _ in range(users)]
    loop = asyncio.get_running_loop()

    async def user(session: HttpSession, until: float) -> None:
        while loop.time() < until:
            await session.get("/")

    # warm-up: open every connection
    await asyncio.gather(*(s.get("/") for s in sessions))
    recorder.ok = recorder.failed = 0
    start = time.perf_counter()
    until = loop.time() + seconds
    async with asyncio.TaskGroup() as group:
        for session in sessions:
            group.create_task(user(session, until))
    elapsed = time.perf_counter() - start
    for session in sessions:
        await session.close()
    return recorder.ok, recorder.failed, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--url", help="an already running loopback target (e.g. nginx) instead of the built-in one"
    )
    args = parser.parse_args()

    cpus = sorted(os.sched_getaffinity(0))
    client_cpu = cpus[0]
    if args.url:
        if not args.url.startswith(("http://127.0.0.1", "http://[::1]", "http://localhost")):
            raise SystemExit("--url must be a loopback http:// URL")
        os.sched_setaffinity(0, {client_cpu})
        ok, failed, elapsed = uvloop.run(_run(args.url, args.users, args.seconds))
        _report(client_cpu, args.users, ok, failed, elapsed)
        return
    server_cpu = cpus[1] if len(cpus) > 1 else None
    receiver, sender = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=_serve, args=(sender, server_cpu), daemon=True)
    server.start()
    try:
        if not receiver.poll(10):
            raise SystemExit("bench server did not start")
        port = receiver.recv()
        os.sched_setaffinity(0, {client_cpu})
        ok, failed, elapsed = uvloop.run(_run(f"http://127.0.0.1:{port}", args.users, args.seconds))
    finally:
        server.terminate()
        server.join(5)
    _report(client_cpu, args.users, ok, failed, elapsed)


def _report(cpu: int, users: int, ok: int, failed: int, elapsed: float) -> None:
    print(
        f"phalanx client, 1 core (cpu {cpu}), uvloop, {users} users: "
        f"{ok / elapsed:,.0f} req/s ({ok} ok, {failed} failed in {elapsed:.2f} s)"
    )


if __name__ == "__main__":
    main()
