"""The master's one owner of who is alive: a table of workers keyed by authenticated key.

Keys are the workers' authenticated CURVE keys (the transport's ``User-Id``),
never a name the worker sends; ``name`` is a display label only. Every
operation takes ``now`` (seconds, monotonic), returns an immutable result and
never raises for anything a worker can cause: an invalid transition is
ignored and counted under a reason (see :meth:`WorkerTable.ignored`).

States and transitions
----------------------

=========================  ==========================  ============================
from                       event                       to
=========================  ==========================  ============================
(unknown)                  ``join``                    READY (refused at capacity)
MISSING or GONE            ``join``                    READY, a rejoin (refused at
                                                       capacity)
READY or RUNNING           ``join``                    READY (it restarted: its
                                                       load is gone)
READY or RUNNING           ``heartbeat``, users == 0   READY
READY or RUNNING           ``heartbeat``, users > 0    RUNNING
READY or RUNNING           ``expire``, silent too long MISSING
READY, RUNNING or MISSING  ``leave``                   GONE
(unknown)                  ``heartbeat`` or ``leave``  ignored, counted
MISSING                    ``heartbeat``               ignored, counted (it must
                                                       rejoin first)
GONE                       ``heartbeat`` or ``leave``  ignored, counted
=========================  ==========================  ============================

Invariants
----------
- At most ``max_workers`` workers are alive (READY or RUNNING) at any time;
  a join that would exceed it is refused with a reason and changes nothing.
- A worker becomes MISSING only through :meth:`WorkerTable.expire`, exactly
  when more than ``heartbeat_timeout`` seconds passed since its last accepted
  message; each newly missing key is reported once.
- A MISSING worker's heartbeats are not accepted: its users were handed to
  others, so it must say ``Hello`` again (rejoin) before it counts again.
- ``last_seen`` never goes backwards (a ``now`` earlier than it is clamped).
- A worker whose last accepted heartbeat reported more than
  :data:`CPU_WARNING_PERCENT` CPU carries ``cpu_warning``; the heartbeat that
  raises it says so once (``cpu_warning_raised``) so the master logs it once.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final, Literal

CPU_WARNING_PERCENT: Final = 90.0
"""A worker reporting more CPU than this (percent) is flagged: its numbers may be skewed."""

IgnoredReason = Literal[
    "heartbeat_unknown",
    "heartbeat_missing",
    "heartbeat_gone",
    "leave_unknown",
    "leave_gone",
]

JoinRefusal = Literal["", "max_workers"]


class WorkerState(enum.Enum):
    """Where a worker stands in the master's view."""

    READY = "ready"
    RUNNING = "running"
    MISSING = "missing"
    GONE = "gone"


_ALIVE: Final = frozenset({WorkerState.READY, WorkerState.RUNNING})


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One worker as the master sees it (a frozen copy; the table keeps its own)."""

    key: str
    name: str
    state: WorkerState
    cpu_count: int
    users: int
    cpu_percent: float
    rss_bytes: int
    cpu_warning: bool
    last_seen: float
    joined_at: float


@dataclass(frozen=True, slots=True)
class JoinResult:
    """What :meth:`WorkerTable.join` decided."""

    key: str
    accepted: bool
    rejoined: bool
    """True when the key was known before (missing, gone or restarted)."""
    reason: JoinRefusal
    """Empty when accepted; why it was refused otherwise."""


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    """What :meth:`WorkerTable.heartbeat` decided."""

    key: str
    accepted: bool
    reason: IgnoredReason | Literal[""]
    cpu_warning: bool
    """The worker is above :data:`CPU_WARNING_PERCENT` now."""
    cpu_warning_raised: bool
    """This heartbeat is the one that took it above (log it once)."""


@dataclass(frozen=True, slots=True)
class LeaveResult:
    """What :meth:`WorkerTable.leave` decided."""

    key: str
    accepted: bool
    reason: IgnoredReason | Literal[""]


class WorkerTable:
    """Who is alive, as the master sees it. See the module docstring for the states."""

    __slots__ = ("_heartbeat_timeout", "_ignored", "_max_workers", "_workers")

    def __init__(self, heartbeat_timeout: float, max_workers: int) -> None:
        if not (math.isfinite(heartbeat_timeout) and heartbeat_timeout > 0):
            raise ValueError("heartbeat_timeout must be a finite number > 0")
        if max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        self._heartbeat_timeout = heartbeat_timeout
        self._max_workers = max_workers
        self._workers: dict[str, WorkerInfo] = {}
        self._ignored: Counter[str] = Counter()

    @property
    def heartbeat_timeout(self) -> float:
        return self._heartbeat_timeout

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def join(self, key: str, name: str, cpu_count: int, now: float) -> JoinResult:
        """A worker said ``Hello`` (already authenticated and version-checked)."""
        known = self._workers.get(key)
        if known is not None and known.state in _ALIVE:
            # The worker restarted before it was noticed missing: its load is gone.
            self._workers[key] = self._fresh(key, name, cpu_count, now)
            return JoinResult(key, accepted=True, rejoined=True, reason="")
        if len(self.alive_keys()) >= self._max_workers:
            return JoinResult(key, accepted=False, rejoined=known is not None,
                              reason="max_workers")
        self._workers[key] = self._fresh(key, name, cpu_count, now)
        return JoinResult(key, accepted=True, rejoined=known is not None, reason="")

    def heartbeat(
        self, key: str, users: int, cpu_percent: float, rss_bytes: int, now: float
    ) -> HeartbeatResult:
        """A worker reported its users and resource use."""
        known = self._workers.get(key)
        if known is None or known.state not in _ALIVE:
            reason: IgnoredReason
            if known is None:
                reason = "heartbeat_unknown"
            elif known.state is WorkerState.MISSING:
                reason = "heartbeat_missing"
            else:
                reason = "heartbeat_gone"
            self._ignored[reason] += 1
            return HeartbeatResult(key, accepted=False, reason=reason,
                                   cpu_warning=False, cpu_warning_raised=False)
        warning = cpu_percent > CPU_WARNING_PERCENT
        # Built directly, not with dataclasses.replace: a master takes about a thousand
        # heartbeats a second.
        self._workers[key] = WorkerInfo(
            key=known.key,
            name=known.name,
            state=WorkerState.RUNNING if users > 0 else WorkerState.READY,
            cpu_count=known.cpu_count,
            users=users,
            cpu_percent=cpu_percent,
            rss_bytes=rss_bytes,
            cpu_warning=warning,
            last_seen=max(known.last_seen, now),
            joined_at=known.joined_at,
        )
        return HeartbeatResult(key, accepted=True, reason="", cpu_warning=warning,
                               cpu_warning_raised=warning and not known.cpu_warning)

    def leave(self, key: str, now: float) -> LeaveResult:
        """A worker said ``Bye``: it is GONE at once (no waiting for it to go missing)."""
        known = self._workers.get(key)
        if known is None or known.state is WorkerState.GONE:
            reason: IgnoredReason = "leave_unknown" if known is None else "leave_gone"
            self._ignored[reason] += 1
            return LeaveResult(key, accepted=False, reason=reason)
        self._workers[key] = replace(known, state=WorkerState.GONE, users=0,
                                     cpu_warning=False, last_seen=max(known.last_seen, now))
        return LeaveResult(key, accepted=True, reason="")

    def expire(self, now: float) -> list[str]:
        """Mark alive workers silent for more than ``heartbeat_timeout`` MISSING; return them.

        The keys come back sorted; each is reported once (a MISSING worker is
        not reported again).
        """
        newly_missing: list[str] = []
        for key in sorted(self._workers):
            info = self._workers[key]
            if info.state in _ALIVE and now - info.last_seen > self._heartbeat_timeout:
                self._workers[key] = replace(info, state=WorkerState.MISSING)
                newly_missing.append(key)
        return newly_missing

    def snapshot(self) -> tuple[WorkerInfo, ...]:
        """Every worker ever seen, sorted by key (frozen copies)."""
        return tuple(self._workers[key] for key in sorted(self._workers))

    def get(self, key: str) -> WorkerInfo | None:
        """One worker, or ``None`` when the key was never seen."""
        return self._workers.get(key)

    def alive_keys(self) -> tuple[str, ...]:
        """Keys of READY and RUNNING workers, sorted: the ones load can be given to."""
        return tuple(sorted(k for k, info in self._workers.items() if info.state in _ALIVE))

    def cpu_warnings(self) -> tuple[str, ...]:
        """Keys of alive workers above :data:`CPU_WARNING_PERCENT`, sorted."""
        return tuple(sorted(
            k for k, info in self._workers.items() if info.state in _ALIVE and info.cpu_warning
        ))

    def ignored(self) -> Mapping[str, int]:
        """How many messages were ignored, by reason (a copy)."""
        return dict(self._ignored)

    @staticmethod
    def _fresh(key: str, name: str, cpu_count: int, now: float) -> WorkerInfo:
        return WorkerInfo(key=key, name=name, state=WorkerState.READY, cpu_count=cpu_count,
                          users=0, cpu_percent=0.0, rss_bytes=0, cpu_warning=False,
                          last_seen=now, joined_at=now)
