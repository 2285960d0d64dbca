"""Keep-alive connections of one session to one origin (scheme, host, port).

Connections are opened lazily, on first use, and reused last-in first-out
(the most recently used connection is the least likely to have been closed by
the server). At most ``limit`` connections exist at once; a request that
finds them all busy waits, in arrival order, until one is released or closed,
bounded by the request's deadline (kind ``timeout``).

Invariants: ``_open`` counts connections that exist or are being opened,
plus slots granted to waiters; it never exceeds ``limit``. A connection is in
``_idle`` only while reusable and not lent out. A closed pool opens nothing.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

from phalanx.core.results import ErrorKind, RequestFailure
from phalanx.http.budget import ConnectionBudget
from phalanx.http.connection import HttpConnection
from phalanx.http.connector import admit_host, open_connection
from phalanx.http.failures import TransportError
from phalanx.http.url import Origin
from phalanx.security.scope import ScopeGuard

__all__ = ["OriginPool"]


class OriginPool:
    """Lends connections to one origin; see the module docstring for the rules."""

    __slots__ = (
        "_all",
        "_budget",
        "_closed",
        "_connect_timeout",
        "_idle",
        "_limit",
        "_loop",
        "_open",
        "_scope",
        "_ssl",
        "_waiters",
        "header_block",
        "origin",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: Origin,
        *,
        limit: int,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
        header_block: str,
        scope: ScopeGuard | None = None,
        budget: ConnectionBudget | None = None,
    ) -> None:
        self.origin = origin
        self.header_block = header_block  # preformatted Host/User-Agent/Accept-* lines
        self._loop = loop
        self._limit = limit
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._scope = scope
        self._budget = budget
        self._idle: list[HttpConnection] = []
        self._all: set[HttpConnection] = set()
        self._open = 0
        self._waiters: deque[asyncio.Future[HttpConnection | None]] | None = None
        self._closed = False

    @property
    def connection_count(self) -> int:
        """Connections currently open (idle or lent out)."""
        return len(self._all)

    def take_idle(self) -> HttpConnection | None:
        """An idle, still usable connection, or None. Dead ones are dropped.

        ``HttpSession._perform`` inlines the fast paths of this method and of
        :meth:`release` (same checks on ``_idle``, ``_closed`` and ``_waiters``);
        keep them in step, and never rebind ``_idle`` (it is cleared in place).
        """
        idle = self._idle
        while idle:
            connection = idle.pop()
            if connection.reusable:
                return connection
            self._discard(connection)
        return None

    async def acquire(self, deadline: float) -> tuple[HttpConnection, bool]:
        """A connection and whether it was reused; raises :class:`TransportError`."""
        connection = self.take_idle()
        if connection is not None:
            return connection, True
        if self._closed:
            raise TransportError(RequestFailure(ErrorKind.OTHER, "the session is closed"))
        if self._open >= self._limit:
            connection = await self._wait_turn(deadline)
            if connection is not None:
                return connection, True
        else:
            self._open += 1
        # This call owns one slot of _open from here on.
        budget: ConnectionBudget | None = None  # set only once a unit is really reserved
        try:
            if self._closed:
                raise TransportError(RequestFailure(ErrorKind.OTHER, "the session is closed"))
            admit_host(self.origin, self._scope)  # a forbidden target is that, not a full budget
            if self._budget is not None:
                if not self._budget.reserve():
                    raise TransportError(RequestFailure(
                        ErrorKind.CONNECTION_LIMIT,
                        f"the run's limit of {self._budget.limit} open connections is reached "
                        "(--max-connections)",
                    ))
                budget = self._budget
            connection = await open_connection(
                self._loop,
                self.origin,
                self._ssl,
                connect_timeout=self._connect_timeout,
                deadline=deadline,
                scope=self._scope,
            )
        except BaseException:
            if budget is not None:
                budget.release()
            self._open -= 1
            self._grant_slot()
            raise
        if budget is not None:
            # The unit follows the transport, not the pool: it comes back when the socket
            # is really gone (closed by us, by the peer, or after a cancelled close).
            connection.on_lost = budget.release
        self._all.add(connection)
        return connection, False

    def release(self, connection: HttpConnection, reusable: bool) -> None:
        """Give a lent connection back; it is kept only when ``reusable``."""
        if not reusable or self._closed or not connection.reusable:
            self._discard(connection)
            return
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    async def close(self, grace: float = 1.0) -> None:
        """Close every connection (waiting at most ``grace`` seconds for them to go)."""
        await self.wait_closed(self.shut(), grace)

    def shut(self) -> list[HttpConnection]:
        """Synchronously refuse new work and start closing every connection; returns them.

        Synchronous on purpose: a close that is cancelled right after still has
        every transport closing (and so every budget unit coming back)."""
        self._closed = True
        connections = list(self._all)
        self._idle.clear()
        for connection in connections:
            connection.close()
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        self._all.clear()
        return connections

    async def wait_closed(self, connections: list[HttpConnection], grace: float) -> None:
        """Wait at most ``grace`` seconds for ``connections`` to go (aborting stragglers)."""
        end = self._loop.time() + grace
        for connection in connections:
            await connection.wait_closed(max(0.0, end - self._loop.time()))

    # -- internals -----------------------------------------------------------------

    async def _wait_turn(self, deadline: float) -> HttpConnection | None:
        """Wait for a released connection (returned) or a free slot (None, slot owned)."""
        waiters = self._waiters
        if waiters is None:
            waiters = self._waiters = deque()
        waiter: asyncio.Future[HttpConnection | None] = self._loop.create_future()
        waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        except BaseException as exc:
            # Leaving without using the turn: give back whatever was granted.
            if waiter.done() and not waiter.cancelled():
                self._return_turn(waiter.result())
            else:
                waiter.cancel()
                if waiter in waiters:
                    waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise TransportError(
                    RequestFailure(ErrorKind.TIMEOUT, "no free connection before the total timeout")
                ) from None
            raise
        return waiter.result()

    def _return_turn(self, connection: HttpConnection | None) -> None:
        if connection is None:
            self._open -= 1
            self._grant_slot()
        else:
            self.release(connection, True)

    def _discard(self, connection: HttpConnection) -> None:
        connection.close()
        if connection in self._all:
            self._all.discard(connection)
            self._open -= 1
            self._grant_slot()

    def _grant_slot(self) -> None:
        waiters = self._waiters
        while waiters and self._open < self._limit:
            waiter = waiters.popleft()
            if not waiter.done():
                self._open += 1
                waiter.set_result(None)
                return
