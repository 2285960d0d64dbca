"""The master's end of the link: a ROUTER socket, CURVE server, ZAP-authenticated.

Use::

    async with MasterSocket("tcp://10.0.0.5:5557", KeyDir(path).curve_server()) as master:
        for worker, message in await master.recv_batch(timeout=1.0):  # [] after 1 s
            master.send(worker, Welcome(run_id="r1"))  # never blocks; False if not queued

Invariants
----------
- A worker's identity (:data:`WorkerKey`) is the ``User-Id`` that the ZAP
  handler attached to its connection: its CURVE public key in Z85 (or
  ``plaintext-<n>`` in the development mode). Routing ids and names sent by
  the worker are never identities; the routing id is only the current return
  address of that key (updated on every message, so a reconnect is followed).
- Every message comes from a key on the allow-list: ZAP checks at connect,
  and each message's key is re-checked against the file at most every
  ``limits.allow_list_recheck`` seconds, so a revoked worker's open connection
  goes silent too. A message without a User-Id is dropped.
- :meth:`MasterSocket.recv_batch` (and :meth:`MasterSocket.recv`) never
  raise for what a peer sends: a malformed, unknown, wrong-version or
  oversized frame is counted for its sender, logged once per sender, and
  dropped. They return nothing when ``timeout`` passes without a valid
  message.
- :meth:`MasterSocket.send` never blocks: a full queue or an unknown peer
  returns False.
- The socket owns its ZeroMQ context and the ZAP task; both end with the
  ``async with`` block. If the ZAP task fails (a bug), connections are no
  longer accepted and ``recv`` raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Final, NewType, Self

import zmq
import zmq.asyncio

from phalanx.protocol import (
    MasterMessage,
    ProtocolError,
    WorkerMessage,
    decode_from_worker,
    encode,
)
from phalanx.transport.allowlist import AllowList
from phalanx.transport.endpoints import check_plaintext_endpoint, check_private_ipc_directory
from phalanx.transport.errors import TransportError
from phalanx.transport.keyfiles import fingerprint
from phalanx.transport.limits import LinkLimits
from phalanx.transport.modes import CurveServer, MasterSecurity, PlaintextDev
from phalanx.transport.sockets import (
    RawMessage,
    Readable,
    apply_common_options,
    read_message,
)
from phalanx.transport.zap import (
    DOMAIN,
    PLAINTEXT_PREFIX,
    Authorizer,
    CurveAuthorizer,
    PlaintextAuthorizer,
    ZapServer,
)

WorkerKey = NewType("WorkerKey", str)
"""A worker's authenticated identity: its Z85 public key (or ``plaintext-<n>``)."""

log = logging.getLogger("phalanx.transport")


def describe(worker: WorkerKey) -> str:
    """A short display form of a worker identity (fingerprint for a key)."""
    if worker.startswith(PLAINTEXT_PREFIX):
        return worker
    try:
        return fingerprint(worker)
    except ValueError:
        return "<invalid key>"


YIELD_INTERVAL_S: Final = 0.002
"""Longest a stream of incoming messages keeps :meth:`MasterSocket.recv_batch` from
yielding (a caller handling a batch yields as often)."""

REST_S: Final = 0.01
"""How long :meth:`MasterSocket.recv_batch` lets messages gather after it read the queue
empty (their latency grows by at most this much; the master's work per message falls)."""


class MasterSocket:
    """See the module docstring. Construction checks the endpoint; binding is in ``async with``."""

    def __init__(self, endpoint: str, security: MasterSecurity, *,
                 limits: LinkLimits | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(security, PlaintextDev):
            check_plaintext_endpoint(endpoint)
        self._requested = endpoint
        self._security = security
        self._limits = limits or LinkLimits()
        self._clock = clock
        self._allow_list: AllowList | None = None
        if isinstance(security, CurveServer):
            self._allow_list = AllowList(security.allow_list,
                                         recheck_interval=self._limits.allow_list_recheck)
        self._context: zmq.asyncio.Context | None = None
        self._socket: zmq.Socket[bytes] | None = None
        self._zap: ZapServer | None = None
        self._authorizer: Authorizer | None = None
        self._zap_task: asyncio.Task[None] | None = None
        self._routes: dict[WorkerKey, bytes] = {}
        self._earlier_routes: dict[WorkerKey, bytes] = {}  # the route before the current one
        self._bad: dict[WorkerKey, int] = {}
        self._logged: set[str] = set()
        self.endpoint = endpoint
        """The bound endpoint (with the real port when bound to port 0 or ``*``)."""
        self.received = 0
        self.dropped = 0
        self.send_failures = 0
        self.on_refused: Callable[[str, str], None] | None = None
        """Called with (key fingerprint, address) when ZAP refuses a key (rate-limited as
        its log line is: once a minute per key)."""
        self._readable: Readable | None = None
        self._yielded_at = -math.inf
        self._read_since_wait = False
        self.drained_at = clock()
        """When a read last found no message waiting (``clock`` time): every message that
        had arrived by then has been returned or dropped."""

    async def __aenter__(self) -> Self:
        self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    def open(self) -> None:
        """Start the ZAP handler, then bind (needs a running event loop)."""
        if self._context is not None:
            raise RuntimeError("MasterSocket is already open")
        if isinstance(self._security, PlaintextDev):
            check_private_ipc_directory(self._requested)
        context = zmq.asyncio.Context()
        self._context = context
        try:
            authorizer: Authorizer
            if self._allow_list is not None:
                authorizer = CurveAuthorizer(self._allow_list, on_refused=self._refused_key)
            else:
                authorizer = PlaintextAuthorizer()
            self._authorizer = authorizer
            self._zap = ZapServer(context, authorizer, self._clock)
            self._zap.bind()  # before the ROUTER binds: without a handler libzmq admits anyone
            # A plain socket on the same context: the master reads without blocking and
            # waits through Readable, never through pyzmq's asyncio layer.
            socket: zmq.Socket[bytes] = zmq.Socket(context, zmq.ROUTER)
            self._socket = socket
            apply_common_options(socket, self._limits)
            socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
            socket.setsockopt(zmq.BACKLOG, self._limits.accept_backlog)
            socket.setsockopt(zmq.ZAP_DOMAIN, DOMAIN.encode())
            if isinstance(self._security, CurveServer):
                keypair = self._security.keypair
                if keypair.secret is None:
                    raise ValueError("the master needs its secret key")
                socket.setsockopt(zmq.CURVE_SERVER, 1)
                socket.setsockopt(zmq.CURVE_SECRETKEY, keypair.secret)
                socket.setsockopt(zmq.CURVE_PUBLICKEY, keypair.public)
            try:
                socket.bind(self._requested)
            except zmq.ZMQError as exc:
                raise TransportError(f"cannot bind {self._requested}: {exc}") from None
            last = socket.getsockopt(zmq.LAST_ENDPOINT)
            self.endpoint = last.decode() if isinstance(last, bytes) else str(last)
        except BaseException:
            self._close_sync()
            raise
        # Handshakes wait in the ZAP queue until this task answers them.
        self._zap_task = asyncio.get_running_loop().create_task(
            self._zap.serve(), name="phalanx-zap")

    async def aclose(self) -> None:
        """Close the socket, stop the ZAP handler, destroy the context (idempotent)."""
        if self._socket is not None:
            self._drop_readable()
            self._socket.close(linger=0)
            self._socket = None
        task = self._zap_task
        self._zap_task = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._close_sync()

    def _close_sync(self) -> None:
        if self._socket is not None:
            self._drop_readable()
            self._socket.close(linger=0)
            self._socket = None
        if self._zap is not None:
            self._zap.close()
            self._zap = None
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None

    async def recv(self, timeout: float) -> tuple[WorkerKey, WorkerMessage] | None:  # noqa: ASYNC109
        """The next valid message and its sender's key, or None after ``timeout`` seconds."""
        items = await self.recv_batch(timeout, limit=1)
        return items[0] if items else None

    async def recv_batch(self, timeout: float, limit: int = 64,  # noqa: ASYNC109
                         ) -> list[tuple[WorkerKey, WorkerMessage]]:
        """The valid messages waiting now (at most ``limit``), each with its sender's key.

        Waits up to ``timeout`` seconds for the first; an empty list means none
        came. A busy link cannot starve the event loop: a call yields to it
        whenever :data:`YIELD_INTERVAL_S` has passed since the last time it did
        (or waited), so other tasks run at least that often while messages keep
        coming. After a read that returned messages finds the queue empty, the
        next wait first rests :data:`REST_S` without watching the socket, so a
        steady stream is read in batches (one wake-up per rest) instead of one
        wake-up per message.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        socket = self._require_open()
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = now + timeout
        if now - self._yielded_at >= YIELD_INTERVAL_S:
            await asyncio.sleep(0)
            self._yielded_at = loop.time()
        items: list[tuple[WorkerKey, WorkerMessage]] = []
        while True:
            self._check_zap()
            raw = read_message(socket, self._limits.max_frames)
            if raw is not None:
                self._read_since_wait = True
                item = self._accept(raw)
                if item is None:
                    self.dropped += 1
                    if items:
                        return items
                    await asyncio.sleep(0)  # a flood of bad frames yields at each one
                else:
                    self.received += 1
                    items.append(item)
                    if len(items) >= limit:
                        return items
                    continue
            else:
                self.drained_at = self._clock()
                if items:
                    return items
            remaining = deadline - loop.time()
            if remaining <= 0:
                return items
            if raw is None:
                readable = self._require_readable()
                if self._read_since_wait:
                    # Let the messages now on their way gather while other tasks run.
                    self._read_since_wait = False
                    await readable.rest(min(remaining, REST_S))
                    self._yielded_at = loop.time()
                    socket = self._require_open()  # closed meanwhile: a clear error
                    continue
                await readable.wait(remaining)
                if readable.suspended:
                    self._yielded_at = loop.time()

    def send(self, worker: WorkerKey, message: MasterMessage) -> bool:
        """Queue ``message`` for ``worker`` without blocking; False if it could not be queued."""
        return self._send_encoded(self._require_open(), worker, encode(message))

    def send_all(self, workers: Iterable[WorkerKey], message: MasterMessage) -> int:
        """:meth:`send` one ``message`` to each of ``workers`` (encoded once); how many
        were queued."""
        socket = self._require_open()
        data = encode(message)
        return sum(self._send_encoded(socket, worker, data) for worker in workers)

    def _send_encoded(self, socket: zmq.Socket[bytes], worker: WorkerKey, data: bytes) -> bool:
        route = self._routes.get(worker)
        if route is None:
            self.send_failures += 1
            return False
        try:
            socket.send_multipart([route, data], flags=zmq.NOBLOCK)
        except zmq.Again:
            self.send_failures += 1
            return False
        except zmq.ZMQError as exc:
            if exc.errno != errno.EHOSTUNREACH:
                raise
            self._routes.pop(worker, None)
            self.send_failures += 1
            return False
        finally:
            # Sending lets ZeroMQ process pending commands, which can swallow the descriptor
            # signal a parked recv() is waiting for.
            readable = self._readable
            if readable is not None and readable.parked:
                readable.notice()
        return True

    def name_of(self, worker: WorkerKey) -> str:
        """The allow-list name of ``worker`` for display ("" if none), from the master's file."""
        if self._allow_list is None:
            return ""
        entry = self._allow_list.lookup(worker.encode(), now=self._clock(), fresh=False)
        return entry.name if entry is not None else ""

    def _refused_key(self, key_fingerprint: str, address: str) -> None:
        if self.on_refused is not None:
            self.on_refused(key_fingerprint, address)

    @property
    def refused_connections(self) -> int:
        """How many connection attempts the ZAP handler refused so far."""
        return self._authorizer.refused if self._authorizer is not None else 0

    def bad_frames(self, worker: WorkerKey) -> int:
        """How many frames from ``worker`` were dropped as invalid."""
        return self._bad.get(worker, 0)

    def forget(self, worker: WorkerKey) -> None:
        """Drop what is kept about ``worker`` (its return address and counters)."""
        self._routes.pop(worker, None)
        self._earlier_routes.pop(worker, None)
        self._bad.pop(worker, None)
        self._logged.discard(worker)

    def _require_open(self) -> zmq.Socket[bytes]:
        if self._socket is None:
            raise RuntimeError("MasterSocket is not open")
        return self._socket

    def _require_readable(self) -> Readable:
        if self._readable is None:
            socket = self._require_open()
            self._readable = Readable(socket)
        return self._readable

    def _drop_readable(self) -> None:
        readable, self._readable = self._readable, None
        if readable is not None:
            with contextlib.suppress(RuntimeError):  # its event loop is already closed
                readable.close()

    def _check_zap(self) -> None:
        task = self._zap_task
        if task is not None and task.done():
            exc = task.exception() if not task.cancelled() else None
            raise RuntimeError("the ZAP authentication handler stopped") from exc

    def _accept(self, raw: RawMessage) -> tuple[WorkerKey, WorkerMessage] | None:
        user_id = raw.user_id()
        if user_id is None:
            self._log_once("<unauthenticated>", "dropped a message without an authenticated "
                           "User-Id (is the ZAP handler running?)")
            return None
        worker = WorkerKey(user_id)
        if not self._authorized(worker):
            self._log_once(worker, f"dropped a message from worker {describe(worker)}: its key "
                           "is no longer on the allow-list")
            return None
        if worker not in self._routes and len(self._routes) >= self._limits.max_peers:
            self._log_once("<capacity>", f"more than {self._limits.max_peers} workers: "
                           "messages from further workers are dropped")
            return None
        if len(raw.frames) != 2 or raw.discarded:
            self._count_bad(worker, f"{len(raw.frames) + raw.discarded} parts, expected 1")
            return None
        try:
            message = decode_from_worker(raw.frames[1].buffer,
                                         max_bytes=self._limits.max_message_bytes)
        except ProtocolError as exc:
            self._count_bad(worker, str(exc))
            return None
        route = raw.frames[0].bytes
        previous = self._routes.get(worker)
        if previous is not None and route != previous:
            if self._earlier_routes.get(worker) == route:
                # Back to an address it had just left: two live connections share one key
                # (a key file copied to two hosts); they would count as one worker.
                self._log_once(f"shared:{worker}", f"worker key {describe(worker)} is used by "
                               "two connections at once: give each worker its own key "
                               "(phalanx keys add-worker)")
            if len(self._earlier_routes) < self._limits.max_peers:
                self._earlier_routes[worker] = previous
        self._routes[worker] = route
        return worker, message

    def _authorized(self, worker: WorkerKey) -> bool:
        if self._allow_list is None:
            return worker.startswith(PLAINTEXT_PREFIX)
        entry = self._allow_list.lookup(worker.encode(), now=self._clock(), fresh=False)
        return entry is not None

    def _count_bad(self, worker: WorkerKey, why: str) -> None:
        if worker in self._bad or len(self._bad) < self._limits.max_peers:
            self._bad[worker] = self._bad.get(worker, 0) + 1
        self._log_once(worker, f"dropped an invalid message from worker {describe(worker)}: "
                       f"{why} (further ones are counted, not logged)")

    def _log_once(self, key: str, text: str) -> None:
        if key in self._logged:
            return
        if len(self._logged) < self._limits.max_peers + 2:
            self._logged.add(key)
        log.warning("%s", text)
