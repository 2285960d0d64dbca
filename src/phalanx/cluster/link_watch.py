"""The worker's watch on its master link, and the master's heartbeat schedule.

Pure: every method takes ``now`` (seconds, monotonic); nothing here sleeps,
reads a clock or does I/O.

A worker calls :meth:`LinkWatch.heard` for every valid message from its
master (heartbeats included) and checks :meth:`LinkWatch.should_stop_load`
every ``check_interval`` seconds (:meth:`LinkWatch.check_interval` gives a
fitting one). The answer fails closed: a worker that has not heard its
master yet may run no load, and one whose master went silent for
``master_timeout`` seconds must stop all of it.

Invariant
---------
**A worker that loses its master stops all load within
``master_timeout + one check interval``.** If the last message arrived at
``t``, every check at or after ``t + master_timeout`` answers True, and the
first such check comes at most one interval later. The tests check this
for arbitrary message times, check phases and intervals.

The master sends :class:`~phalanx.protocol.messages.MasterHeartbeat` on the
schedule of :func:`next_heartbeat_due`; its interval must be well below the
workers' ``master_timeout`` (:func:`heartbeat_interval_fits`: at most a
third), so that losing one or two heartbeats never stops a healthy worker.
"""

from __future__ import annotations

import enum
import math
from typing import Final

DEFAULT_MASTER_TIMEOUT: Final = 10.0
MAX_MASTER_TIMEOUT: Final = 60.0
MAX_CHECK_INTERVAL: Final = 1.0


class LinkState(enum.Enum):
    """The worker's view of its master."""

    NEVER_HEARD = "never_heard"
    """Nothing heard yet: no load may run."""
    CONNECTED = "connected"
    """Heard within ``master_timeout``: load may run."""
    LOST = "lost"
    """Silent for ``master_timeout`` or more: all load must stop."""


class LinkWatch:
    """When a worker must stop its load because its master went silent."""

    __slots__ = ("_last_heard", "_master_timeout")

    def __init__(self, master_timeout: float = DEFAULT_MASTER_TIMEOUT) -> None:
        if not (math.isfinite(master_timeout) and 0 < master_timeout <= MAX_MASTER_TIMEOUT):
            raise ValueError(f"master_timeout must be > 0 and <= {MAX_MASTER_TIMEOUT:g} seconds")
        self._master_timeout = master_timeout
        self._last_heard: float | None = None

    @property
    def master_timeout(self) -> float:
        return self._master_timeout

    @property
    def last_heard(self) -> float | None:
        return self._last_heard

    @property
    def check_interval(self) -> float:
        """How often to call :meth:`should_stop_load`: a quarter of the timeout, at most 1 s."""
        return min(MAX_CHECK_INTERVAL, self._master_timeout / 4)

    def heard(self, now: float) -> None:
        """A valid message came from the master at ``now`` (never moves backwards)."""
        if self._last_heard is None or now > self._last_heard:
            self._last_heard = now

    def state(self, now: float) -> LinkState:
        """NEVER_HEARD, CONNECTED, or LOST once ``master_timeout`` passed since the last message."""
        if self._last_heard is None:
            return LinkState.NEVER_HEARD
        if now - self._last_heard >= self._master_timeout:
            return LinkState.LOST
        return LinkState.CONNECTED

    def should_stop_load(self, now: float) -> bool:
        """True unless the master was heard less than ``master_timeout`` seconds ago."""
        return self.state(now) is not LinkState.CONNECTED

    def seconds_left(self, now: float) -> float:
        """How long until the link counts as lost (0 when it already does or never was up)."""
        if self._last_heard is None:
            return 0.0
        return max(0.0, self._last_heard + self._master_timeout - now)


def next_heartbeat_due(last_sent: float | None, interval: float, now: float) -> float:
    """Seconds from ``now`` until the master's next heartbeat is due (0: send now).

    ``last_sent`` is when the previous heartbeat went out, ``None`` if none did.
    """
    if not (math.isfinite(interval) and interval > 0):
        raise ValueError("interval must be a finite number > 0")
    if last_sent is None:
        return 0.0
    return max(0.0, last_sent + interval - now)


def heartbeat_interval_fits(interval: float, master_timeout: float) -> bool:
    """True when ``interval`` is at most a third of ``master_timeout`` (and > 0)."""
    return 0 < interval <= master_timeout / 3
