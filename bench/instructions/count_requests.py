"""Drive N requests through the whole phalanx path over a fake in-process transport.

Used by ``bench/instructions/run.sh`` under ``valgrind --tool=callgrind``: the
difference in instructions between two request counts, divided by the
difference in requests, is the CPU cost per request of everything phalanx owns
(user task loop -> client.get -> exchange -> httptools parse -> stats record),
without the kernel's socket costs. Instruction counts are deterministic, so
they compare changes on a noisy shared machine where wall-clock rates do not.

Usage: python bench/instructions/count_requests.py N
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import uvloop

import phalanx.http.pool as pool_module
from phalanx import HttpUser, constant, task
from phalanx.http.connection import HttpConnection
from phalanx.scripting.context import UserContext
from phalanx.stats.recorder import Recorder

USERS = 50
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 6\r\nConnection: keep-alive\r\n\r\nhello\n"
)


class FakeTransport:
    """Answers every write with a canned response on a later loop iteration, like I/O."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: HttpConnection) -> None:
        self._loop = loop
        self._protocol = protocol
        self._closing = False

    def write(self, data: bytes) -> None:
        self._loop.call_soon(self._protocol.data_received, RESPONSE)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._loop.call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()


async def fake_open(loop: asyncio.AbstractEventLoop, origin: Any, ssl_context: Any,
                    **_: Any) -> HttpConnection:
    connection = HttpConnection(loop)
    connection.connection_made(FakeTransport(loop, connection))  # type: ignore[arg-type]
    return connection


class Get(HttpUser):
    wait_time = constant(0)

    @task
    async def get_root(self) -> None:
        await self.client.get("/")


class CountingRecorder:
    """A Recorder that stops every user after the N-th recorded request.

    It wraps the Recorder rather than subclassing it: in a compiled build the
    Recorder is a compiled class, which interpreted code cannot subclass.
    """

    def __init__(self, limit: int, done: asyncio.Future[None]) -> None:
        self.recorder = Recorder(0.0)
        self.limit = limit
        self.count = 0
        self.done = done
        self.users: list[Get] = []

    def record(self, *args: Any) -> None:
        self.recorder.record(*args)
        self.count += 1
        if self.count == self.limit:
            for user in self.users:
                user.request_stop()
            self.done.set_result(None)

    def record_exception(self, *args: Any) -> None:
        self.recorder.record_exception(*args)


async def main(limit: int) -> None:
    # Works on the compiled build too: pool.py is compiled, but open_connection comes from
    # the uncompiled connector, so pool looks it up in its module globals at each call.
    pool_module.open_connection = fake_open  # type: ignore[attr-defined]
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    recorder = CountingRecorder(limit, done)
    context = UserContext(recorder=recorder, host="http://127.0.0.1:18080")
    recorder.users = [Get(context) for _ in range(USERS)]
    tasks = [asyncio.ensure_future(user.run()) for user in recorder.users]
    await asyncio.wait_for(done, timeout=600)
    for running in tasks:
        running.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(recorder.count, file=sys.stderr)


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
