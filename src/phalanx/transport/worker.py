"""The worker's end of the link: a DEALER socket, CURVE client pinned to the master's key.

Use::

    async with WorkerSocket("tcp://10.0.0.5:5557", KeyDir(path).curve_client("w2")) as link:
        if not await link.send(Hello(...), timeout=5.0):   # False: not connected in time
            ...
        message = await link.recv(timeout=1.0)              # MasterMessage or None

Invariants
----------
- The worker talks only to the holder of the pinned master secret key: a
  server with another key fails the CURVE handshake, so nothing is sent to it
  or received from it (``send`` returns False, ``recv`` returns None).
- ``ZMQ_IMMEDIATE`` is set: messages are queued only on a connection whose
  handshake completed (authenticated and, on the master, authorized), never
  for a peer that is not (yet) there.
- :meth:`WorkerSocket.recv` never raises for what arrives: invalid frames are
  counted (``bad_frames``), logged once and dropped.
- Every wait is bounded by the caller's ``timeout``; ZeroMQ reconnects on its
  own (``limits.reconnect_interval`` up to ``reconnect_interval_max``), except
  after the master refused the key (see :mod:`.linkstate`).
- :meth:`WorkerSocket.link_state` says whether the link is up and, if a
  handshake failed, why, from the socket's monitor events (drained without
  blocking on every ``send``/``recv``/``link_state`` call, so they never pile up).
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Self

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from phalanx.protocol import (
    MasterMessage,
    ProtocolError,
    WorkerMessage,
    decode_from_master,
    encode,
)
from phalanx.transport.endpoints import check_plaintext_endpoint
from phalanx.transport.errors import TransportError
from phalanx.transport.limits import LinkLimits
from phalanx.transport.linkstate import MONITORED_EVENTS, LinkState, apply_event
from phalanx.transport.modes import CurveClient, PlaintextDev, WorkerSecurity
from phalanx.transport.sockets import (
    RawMessage,
    apply_common_options,
    read_message,
    wait_readable,
    wait_writable,
)

log = logging.getLogger("phalanx.transport")


class WorkerSocket:
    """See the module docstring.

    ``context``: share one ZeroMQ context (many simulated workers in one
    process; raise its ``max_sockets``, 1023 by default: each link uses three
    sockets with the monitor, one without). ``monitor=False`` skips the
    monitor; :meth:`link_state` then stays at its initial value.
    """

    def __init__(self, endpoint: str, security: WorkerSecurity, *,
                 limits: LinkLimits | None = None,
                 context: zmq.asyncio.Context | None = None,
                 monitor: bool = True) -> None:
        if isinstance(security, PlaintextDev):
            check_plaintext_endpoint(endpoint)
        self.endpoint = endpoint
        self._security = security
        self._limits = limits or LinkLimits()
        self._shared_context = context
        self._monitor_wanted = monitor
        self._context: zmq.asyncio.Context | None = None
        self._socket: zmq.asyncio.Socket | None = None
        self._sync: zmq.Socket[bytes] | None = None
        self._monitor: zmq.asyncio.Socket | None = None
        self._monitor_sync: zmq.Socket[bytes] | None = None
        self._state = LinkState()
        self.bad_frames = 0
        self.received = 0

    async def __aenter__(self) -> Self:
        self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        """Create the socket and start connecting (ZeroMQ connects in the background)."""
        if self._socket is not None:
            raise RuntimeError("WorkerSocket is already open")
        context = self._shared_context
        if context is None:
            context = self._context = zmq.asyncio.Context()
        socket = context.socket(zmq.DEALER)
        self._socket = socket
        try:
            apply_common_options(socket, self._limits)
            socket.setsockopt(zmq.IMMEDIATE, 1)
            if isinstance(self._security, CurveClient):
                keypair = self._security.keypair
                if keypair.secret is None:
                    raise ValueError("a worker needs its secret key")
                socket.setsockopt(zmq.CURVE_SERVERKEY, self._security.master_public)
                socket.setsockopt(zmq.CURVE_PUBLICKEY, keypair.public)
                socket.setsockopt(zmq.CURVE_SECRETKEY, keypair.secret)
            if self._monitor_wanted:
                monitor = socket.get_monitor_socket(MONITORED_EVENTS)
                self._monitor = monitor
                self._monitor_sync = zmq.Socket.shadow(monitor.underlying)
            try:
                socket.connect(self.endpoint)
            except zmq.ZMQError as exc:
                raise TransportError(f"cannot connect to {self.endpoint}: {exc}") from None
            self._sync = zmq.Socket.shadow(socket.underlying)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the socket (pending messages are dropped) and an owned context."""
        if self._monitor is not None:
            if self._socket is not None:
                self._socket.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
            self._monitor_sync = None
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
            self._sync = None
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None

    async def send(self, message: WorkerMessage, timeout: float) -> bool:  # noqa: ASYNC109
        """Queue ``message`` on the connection; False if that was impossible for ``timeout``."""
        socket, sync = self._require_open()
        self._drain_monitor()
        data = encode(message)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                sync.send(data, flags=zmq.NOBLOCK)
            except zmq.Again:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                await wait_writable(socket, remaining)
                continue
            return True

    async def recv(self, timeout: float) -> MasterMessage | None:  # noqa: ASYNC109
        """The next valid message from the master, or None after ``timeout`` seconds."""
        socket, sync = self._require_open()
        self._drain_monitor()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await asyncio.sleep(0)  # one yield per call: a busy link cannot starve the loop
        while True:
            raw = read_message(sync, self._limits.max_frames)
            if raw is not None:
                message = self._accept(raw)
                if message is not None:
                    self.received += 1
                    return message
                await asyncio.sleep(0)  # a flood of bad frames yields too
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            if raw is None:
                await wait_readable(socket, remaining)

    def _accept(self, raw: RawMessage) -> MasterMessage | None:
        if len(raw.frames) != 1 or raw.discarded:
            self._count_bad(f"{len(raw.frames) + raw.discarded} parts, expected 1")
            return None
        try:
            return decode_from_master(raw.frames[0].buffer,
                                      max_bytes=self._limits.max_message_bytes)
        except ProtocolError as exc:
            self._count_bad(str(exc))
            return None

    def link_state(self) -> LinkState:
        """Whether the link is up, and why the last handshake failed (if it did)."""
        self._drain_monitor()
        return self._state

    def _drain_monitor(self) -> None:
        monitor = self._monitor_sync
        if monitor is None:
            return
        while True:
            try:
                frames = monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                event = parse_monitor_message(frames)
            except (ValueError, IndexError):  # pragma: no cover - libzmq writes these
                continue
            before = self._state
            self._state = apply_event(before, int(event["event"]), int(event["value"]))
            failure = self._state.last_failure
            if failure is not None and failure != before.last_failure:
                log.warning("cannot connect to the master at %s: %s", self.endpoint, failure)

    def _require_open(self) -> tuple[zmq.asyncio.Socket, zmq.Socket[bytes]]:
        if self._socket is None or self._sync is None:
            raise RuntimeError("WorkerSocket is not open")
        return self._socket, self._sync

    def _count_bad(self, why: str) -> None:
        self.bad_frames += 1
        if self.bad_frames == 1:
            log.warning("dropped an invalid message from the master: %s "
                        "(further ones are counted, not logged)", why)
