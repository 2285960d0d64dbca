"""Login throttling per account and per client address (pure: every call takes ``now``).

After ``free_failures`` failed logins, each further attempt for the same
account, or from the same address, must wait ``base_delay * 2**(n - free)``
seconds (at most ``max_delay``) after the previous failure; an attempt made
sooner is refused with the time left (the server answers 429 with
Retry-After). A success clears the account's counter (not the address's:
one good password must not reset a spraying address). Counters are
forgotten ``forget_after`` seconds after their last failure and at most
``max_keys`` are kept (the oldest go first), so memory stays bounded.

Unknown and known accounts are counted the same way: the throttle never
tells which accounts exist.

Parallel guessing: a failure is recorded only once its (slow) password
check ends, so a burst of simultaneous attempts would all be checked before
the first failure counts. :meth:`LoginThrottle.try_begin` therefore admits
one attempt at a time per account and per address; the others are refused
(429) until it ends.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

DEFAULT_FREE_FAILURES: Final = 3


@dataclass(slots=True)
class _Failures:
    count: int
    last: float


class LoginThrottle:
    """See the module docstring."""

    def __init__(self, *, free_failures: int = DEFAULT_FREE_FAILURES, base_delay: float = 1.0,
                 max_delay: float = 300.0, forget_after: float = 3600.0,
                 max_keys: int = 100_000) -> None:
        if free_failures < 0 or not 0 < base_delay <= max_delay or max_keys < 1:
            raise ValueError("invalid throttle settings")
        self._free = free_failures
        self._base = base_delay
        self._max_delay = max_delay
        self._forget = forget_after
        self._max_keys = max_keys
        self._failures: OrderedDict[str, _Failures] = OrderedDict()
        self._in_flight: set[str] = set()

    def try_begin(self, account: str, address: str) -> bool:
        """Start an attempt; False when one for this account or address is in progress."""
        keys = (f"a:{account.lower()}", f"ip:{address}")
        if any(key in self._in_flight for key in keys):
            return False
        self._in_flight.update(keys)
        return True

    def end(self, account: str, address: str) -> None:
        """The attempt begun with :meth:`try_begin` is over (call it in ``finally``)."""
        self._in_flight.difference_update((f"a:{account.lower()}", f"ip:{address}"))

    def wait_needed(self, account: str, address: str, now: float) -> float:
        """Seconds the caller must still wait before trying (0.0: go ahead)."""
        return max(self._wait(f"a:{account.lower()}", now), self._wait(f"ip:{address}", now))

    def failed(self, account: str, address: str, now: float) -> None:
        for key in (f"a:{account.lower()}", f"ip:{address}"):
            entry = self._failures.pop(key, None)
            if entry is None or now - entry.last > self._forget:
                entry = _Failures(0, now)
            entry.count += 1
            entry.last = max(entry.last, now)
            self._failures[key] = entry
            while len(self._failures) > self._max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, account: str) -> None:
        self._failures.pop(f"a:{account.lower()}", None)

    def _wait(self, key: str, now: float) -> float:
        entry = self._failures.get(key)
        if entry is None or entry.count <= self._free or now - entry.last > self._forget:
            return 0.0
        delay = min(self._max_delay, self._base * 2.0 ** (entry.count - self._free - 1))
        return max(0.0, entry.last + delay - now)
