"""The web app's view of the account store: passwords (argon2id, off the loop), tokens, epochs.

A token request acts as ``token:<id>`` (its label is shown in the audit
log's details, never its secret). Every password check costs one argon2
verification, for unknown users too (no enumeration through timing).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from phalanx.web.accounts import (
    AccountError,
    UserStore,
    authenticate_password_async,
    current_session_epoch,
    verify_token,
)
from phalanx.web.app import Identity
from phalanx.web.passwords import Passwords

log = logging.getLogger("phalanx.web")

MAX_CONCURRENT_VERIFICATIONS = 4


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


class StoreAuthenticator:
    """:class:`phalanx.web.app.Authenticator` over a :class:`UserStore`.

    The store file is re-read when it changes (checked at most every
    ``recheck`` seconds), so ``phalanx users reset-password`` or ``tokens
    revoke`` run in another terminal takes effect on a running server: the
    user's sessions end, the token stops working. A store that became
    unreadable keeps the last good copy and is logged once.
    """

    def __init__(self, store: UserStore, passwords: Passwords, clock: Callable[[], float],
                 *, recheck: float = 1.0) -> None:
        self._store = store
        self._passwords = passwords
        self._clock = clock  # wall-clock seconds: token expiry is a date
        self._recheck = recheck
        self._checked = clock()
        self._seen = _identity(store.path)
        self._warned = False
        # Each argon2id verification takes 64 MiB and ~0.1 s of a core: a login flood
        # queues here instead of exhausting memory.
        self._verifying = asyncio.Semaphore(MAX_CONCURRENT_VERIFICATIONS)

    @property
    def _current(self) -> UserStore:
        now = self._clock()
        if now - self._checked >= self._recheck:
            self._checked = now
            seen = _identity(self._store.path)
            if seen != self._seen:
                try:
                    self._store = UserStore.open(self._store.path)
                    self._seen = seen
                    self._warned = False
                except AccountError as exc:
                    if not self._warned:
                        self._warned = True
                        log.warning("user store changed but cannot be read (%s); "
                                    "keeping the last good copy", exc)
        return self._store

    async def check_password(self, user: str, password: str) -> Identity | None:
        async with self._verifying:
            found = await authenticate_password_async(self._current, user, password,
                                                      passwords=self._passwords)
        return None if found is None else Identity(user=found.name, role=found.role)

    def check_token(self, token: str) -> Identity | None:
        info = verify_token(self._current, token, self._clock())
        return None if info is None else Identity(user=f"token:{info.token_id}", role=info.role)

    def epoch_of(self, user: str) -> int | None:
        return current_session_epoch(self._current, user)
