"""Socket plumbing shared by both ends: options, whole-message reads, sends.

Reads are cancellation-safe: a caller awaits readiness (``poll``) and then
reads every part of one message without awaiting (ZeroMQ delivers the parts
of a message together), so a cancelled ``recv`` never leaves half a message
in the socket.
"""

from __future__ import annotations

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


class ReadyWaiter:
    """Waits for one event of one socket, with one poller kept for every wait.

    A busy master waits thousands of times per second; building and
    registering a new poller each time was a measurable share of its loop.
    """

    __slots__ = ("_event", "_poller")

    def __init__(self, socket: zmq.asyncio.Socket, event: int) -> None:
        self._event = event
        self._poller = zmq.asyncio.Poller()
        self._poller.register(socket, event)

    async def wait(self, seconds: float) -> bool:
        """True once the event is ready, False after ``seconds``."""
        ready = await self._poller.poll(ms(seconds))
        return any(flags & self._event for _socket, flags in ready)


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
