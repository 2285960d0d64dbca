"""Socket plumbing shared by both ends: options, whole-message reads, sends.

Reads are cancellation-safe: a caller awaits readiness (``poll``) and then
reads every part of one message without awaiting (ZeroMQ delivers the parts
of a message together), so a cancelled ``recv`` never leaves half a message
in the socket.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio

from phalanx.transport.limits import LinkLimits, ms


@dataclass(frozen=True, slots=True)
class RawMessage:
    """The first ``max_frames`` parts of one message, and how many more were discarded."""

    frames: tuple[zmq.Frame, ...]
    discarded: int

    def user_id(self) -> str | None:
        """The ``User-Id`` ZAP attached to the connection that sent this, if any."""
        try:
            value = self.frames[-1].get("User-Id")
        except zmq.ZMQError:
            return None
        return value if isinstance(value, str) and value else None


def apply_common_options(socket: zmq.Socket[Any], limits: LinkLimits) -> None:
    """Bounds and timings both ends use (see :class:`LinkLimits`)."""
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.SNDHWM, limits.send_hwm)
    socket.setsockopt(zmq.RCVHWM, limits.recv_hwm)
    socket.setsockopt(zmq.MAXMSGSIZE, limits.max_message_bytes)
    socket.setsockopt(zmq.HANDSHAKE_IVL, ms(limits.handshake_timeout))
    socket.setsockopt(zmq.HEARTBEAT_IVL, ms(limits.heartbeat_interval))
    socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, ms(limits.heartbeat_timeout))
    socket.setsockopt(zmq.HEARTBEAT_TTL, ms(limits.heartbeat_timeout))
    socket.setsockopt(zmq.RECONNECT_IVL, ms(limits.reconnect_interval))
    socket.setsockopt(zmq.RECONNECT_IVL_MAX, ms(limits.reconnect_interval_max))


async def wait_readable(socket: zmq.asyncio.Socket, seconds: float) -> bool:
    """True once ``socket`` has a message, False after ``seconds``."""
    return await _wait(socket, zmq.POLLIN, seconds)


async def wait_writable(socket: zmq.asyncio.Socket, seconds: float) -> bool:
    """True once ``socket`` can take a message, False after ``seconds``."""
    return await _wait(socket, zmq.POLLOUT, seconds)


class Readable:
    """Waits until a ZeroMQ socket has a message, from the socket's own file descriptor.

    A busy master waits thousands of times per second. pyzmq's asyncio layer
    builds a poller, futures and event flags for every wait and every wake-up
    of the descriptor; this waits on the descriptor directly (``add_reader``)
    and confirms readiness with ``ZMQ_EVENTS``, which is how ZeroMQ defines
    it: the descriptor only says the socket's state *may* have changed, so a
    wake-up can be spurious and is always re-checked.

    The descriptor stays readable until someone asks ZeroMQ for its events,
    and the event loop polls it level-triggered, so the reader callback asks
    (through :meth:`notice`) every time: no busy loop while nobody waits.
    Another task's send or receive on the socket can consume a change before
    the descriptor reports it; such code calls :meth:`notice` afterwards
    while a wait is :attr:`parked`.
    Use it from the event loop that made it, from one task at a time (a
    :meth:`rest` stops watching the descriptor for any waiter), and
    :meth:`close` it before the socket.
    """

    __slots__ = ("_changed", "_closed", "_fd", "_loop", "_socket", "parked", "suspended")

    def __init__(self, socket: zmq.Socket[bytes]) -> None:
        self._socket = socket
        self._loop = asyncio.get_running_loop()
        self._fd: int = socket.FD
        self._changed = asyncio.Event()
        self.suspended = False
        """Whether the last :meth:`wait` gave the event loop a turn."""
        self.parked = False
        """Whether a :meth:`wait` is suspended now (only then can a change be missed)."""
        self._closed = False
        self._loop.add_reader(self._fd, self.notice)

    def ready(self) -> bool:
        """True when a message is waiting (also lets ZeroMQ process its pending commands)."""
        events = self._socket.getsockopt(zmq.EVENTS)
        return isinstance(events, int) and bool(events & zmq.POLLIN)

    def notice(self) -> None:
        """Wake the waiter if a message is waiting now."""
        if self.ready():
            self._changed.set()

    async def wait(self, seconds: float) -> bool:
        """True once a message is waiting, False after ``seconds``."""
        deadline = self._loop.time() + seconds
        self.suspended = False
        while True:
            self._changed.clear()
            if self.ready():
                return True
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return False
            self.suspended = self.parked = True
            try:
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
            except TimeoutError:
                return self.ready()
            finally:
                self.parked = False

    async def rest(self, seconds: float) -> None:
        """Sleep ``seconds`` without watching the descriptor.

        Messages that arrive meanwhile wait in ZeroMQ's queue, and ZeroMQ's
        I/O thread signals the descriptor at most once for all of them, so a
        reader that rests between bursts pays one wake-up per rest instead of
        one per message.
        """
        self._loop.remove_reader(self._fd)
        try:
            await asyncio.sleep(seconds)
        finally:
            if not self._closed:
                self._loop.add_reader(self._fd, self.notice)

    def close(self) -> None:
        self._closed = True
        self._loop.remove_reader(self._fd)


async def _wait(socket: zmq.asyncio.Socket, event: int, seconds: float) -> bool:
    poller = zmq.asyncio.Poller()
    poller.register(socket, event)
    ready = await poller.poll(ms(seconds))
    return any(flags & event for _socket, flags in ready)


def read_message(socket: zmq.Socket[bytes], max_frames: int) -> RawMessage | None:
    """Read one whole message without blocking (None if none is waiting)."""
    frames: list[zmq.Frame] = []
    discarded = 0
    while True:
        try:
            frame = socket.recv(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            if not frames:
                return None
            break  # pragma: no cover - parts of a message arrive together
        if len(frames) < max_frames:
            frames.append(frame)
        else:
            discarded += 1
        if not frame.more:
            break
    return RawMessage(tuple(frames), discarded)
