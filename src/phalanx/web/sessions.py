"""Server-side web sessions: random ids, idle and absolute timeouts, a CSRF token each.

Pure: no I/O, no clock; every method takes ``now`` (seconds, monotonic).

Invariants
----------
- A session id is 32 random bytes (``secrets.token_urlsafe``); the cookie
  carries only the id, never who the user is. Ids are compared through a
  dict lookup of the whole id, so a guess needs the whole 256-bit value.
- :meth:`SessionStore.create` always makes a new id (rotation at login: an id
  planted before login is never promoted).
- A session ends :data:`IDLE_TIMEOUT` after its last use or
  :data:`ABSOLUTE_TIMEOUT` after its creation, whichever comes first, on
  :meth:`SessionStore.logout`, or when its user's ``epoch`` changes (password
  reset, role change, removal): :meth:`SessionStore.get` then returns None
  and forgets it.
- At most ``max_sessions`` live at once; creating one more evicts the
  least recently used.
- Each session has its own CSRF token (32 random bytes) that state-changing
  requests must echo (see :mod:`phalanx.web.app`).
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

IDLE_TIMEOUT: Final = 30 * 60.0
ABSOLUTE_TIMEOUT: Final = 12 * 3600.0


@dataclass(frozen=True, slots=True)
class Session:
    """One signed-in browser."""

    id: str
    user: str
    role: str
    epoch: int
    csrf: str
    created: float
    last_used: float

    def csrf_matches(self, presented: str | None) -> bool:
        """Constant-time comparison of a presented CSRF token with this session's."""
        return presented is not None and hmac.compare_digest(presented.encode(),
                                                             self.csrf.encode())


class SessionStore:
    """Live sessions by id. ``epoch_of(user)`` gives the user's current epoch (None: gone)."""

    def __init__(self, epoch_of: Callable[[str], int | None], *,
                 idle_timeout: float = IDLE_TIMEOUT, absolute_timeout: float = ABSOLUTE_TIMEOUT,
                 max_sessions: int = 10_000) -> None:
        if not 0 < idle_timeout <= absolute_timeout:
            raise ValueError("timeouts must satisfy 0 < idle <= absolute")
        self._epoch_of = epoch_of
        self._idle = idle_timeout
        self._absolute = absolute_timeout
        self._max = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def create(self, user: str, role: str, epoch: int, now: float) -> Session:
        """A new session (a new id, a new CSRF token) for a user who just signed in."""
        while len(self._sessions) >= self._max:
            self._sessions.popitem(last=False)
        session = Session(id=secrets.token_urlsafe(32), user=user, role=role, epoch=epoch,
                          csrf=secrets.token_urlsafe(32), created=now, last_used=now)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None, now: float) -> Session | None:
        """The live session of ``session_id`` (its use recorded), or None."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        expired = (now - session.last_used > self._idle
                   or now - session.created > self._absolute)
        if expired or self._epoch_of(session.user) != session.epoch:
            del self._sessions[session_id]
            return None
        session = replace(session, last_used=max(session.last_used, now))
        self._sessions[session_id] = session
        self._sessions.move_to_end(session_id)
        return session

    def logout(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    def end_user(self, user: str) -> int:
        """End every session of ``user``; how many there were."""
        ids = [sid for sid, session in self._sessions.items() if session.user == user]
        for sid in ids:
            del self._sessions[sid]
        return len(ids)

    def __len__(self) -> int:
        return len(self._sessions)
