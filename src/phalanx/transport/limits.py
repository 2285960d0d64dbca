"""Bounds and timings of a master<->worker link (socket options).

Memory a peer can make the master hold is bounded by
``recv_hwm × max_message_bytes`` per connection (ZeroMQ counts the high-water
mark in messages; ``max_message_bytes`` is ``ZMQ_MAXMSGSIZE``, and a peer that
sends a bigger frame is disconnected by ZeroMQ before the frame is buffered).
Sends never block the master: a full queue drops the message and reports it.
"""

from __future__ import annotations

from dataclasses import dataclass

from phalanx.protocol import DEFAULT_MAX_MESSAGE_BYTES


@dataclass(frozen=True, slots=True)
class LinkLimits:
    """Socket options shared by both ends (seconds where a time)."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    send_hwm: int = 1_000
    recv_hwm: int = 1_000
    max_peers: int = 10_000
    """Most distinct worker identities the master tracks; messages from more are dropped."""
    accept_backlog: int = 1_024
    """Pending TCP connections the master's listener queues (ZeroMQ's default, 100, makes a
    crowd of workers connecting at once wait for SYN retries)."""
    max_frames: int = 4
    """Most parts of one multipart message that are looked at (the rest are discarded)."""
    handshake_timeout: float = 10.0
    heartbeat_interval: float = 5.0
    """ZMTP-level ping; a connection silent for ``heartbeat_timeout`` is closed. It only
    catches half-open TCP connections: the drivers' own heartbeats (every second) judge
    whether a peer is alive, so pings are rare (each costs the master's I/O thread an
    encrypted frame each way per worker)."""
    heartbeat_timeout: float = 10.0
    reconnect_interval: float = 0.2
    reconnect_interval_max: float = 5.0
    allow_list_recheck: float = 1.0
    """How often a message's sender is re-checked against the allow-list file."""

    def __post_init__(self) -> None:
        if self.max_message_bytes < 1024:
            raise ValueError("max_message_bytes must be at least 1024")
        for name in ("send_hwm", "recv_hwm", "max_peers", "max_frames", "accept_backlog"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("handshake_timeout", "heartbeat_interval", "heartbeat_timeout",
                     "reconnect_interval", "reconnect_interval_max"):
            if not 0.0 < getattr(self, name) <= 3600.0:
                raise ValueError(f"{name} must be in (0, 3600] seconds")
        if self.allow_list_recheck < 0:
            raise ValueError("allow_list_recheck must not be negative")


def ms(seconds: float) -> int:
    """Seconds as whole milliseconds (at least 1) for a socket option."""
    return max(1, round(seconds * 1000))
