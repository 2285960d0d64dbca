"""Per-worker message rate limit on the master: a token bucket per key.

Pure: every method takes ``now`` (seconds, monotonic); nothing here sleeps,
reads a clock or does I/O. The master calls :meth:`MessageRateLimiter.allow`
once per message from an authenticated worker (key: its ``WorkerKey``) and
drops the message when the answer is not ``allowed``.

Bucket
------
Each key has a bucket holding at most ``burst`` tokens that refills at
``rate`` tokens per second. A new key starts full. A message is allowed when
the bucket holds one token (less a floating-point slack of
:data:`TOKEN_SLACK`, so that a sender exactly at ``rate`` is never dropped by
rounding) and then takes that token; otherwise it is dropped and takes
nothing. Time is the running maximum of the ``now`` values seen for a key:
``now`` going backwards adds no tokens (it is clamped to the latest time seen).

Invariants (the tests check the first two for arbitrary message times)
----------------------------------------------------------------------
- Over any interval ``[t0, t1]`` of (clamped) time a key gets at most
  ``burst + rate * (t1 - t0)`` messages allowed (plus :data:`TOKEN_SLACK`,
  less than one message).
- A key that sends at or below ``rate`` (messages at least ``1 / rate``
  seconds apart) is never dropped once its first burst is spent, whatever it
  sent before.
- Keys are independent: what one key sends never changes another's answers
  (except through eviction, below).
- At most ``max_keys`` buckets are kept. When a new key arrives and the table
  is full, the **least recently used** key (the one whose last message is
  oldest) is evicted; since every bucket refills at the same rate, that is
  also the bucket most likely to be full already. An evicted key forgets its
  drop count and its over-rate episode and restarts full, so each eviction
  can give it at most one extra ``burst`` (nothing when its bucket was full
  anyway). Residual: a key can only be evicted after ``max_keys`` other keys
  sent a message since its own last one; the master's cap on tracked workers
  keeps the number of authenticated keys far below ``max_keys``.

Drops and disconnects
---------------------
``first_drop`` is True on the first dropped message after an allowed one (or
of a new key), so the master logs once per burst of drops; it resets when a
message is allowed again.

A key is **over its rate** from a dropped message for as long as drops keep
coming no more than :attr:`MessageRateLimiter.over_window` seconds apart
(``(burst + 1) / rate``: the time to earn the whole burst back plus one
message). A key that exceeds its rate for long keeps dropping messages and
stays over; a key that slows to its rate stops dropping and the episode ends
one window after its last drop. ``disconnect`` is True on any call where the
key has been over its rate continuously for more than ``disconnect_after``
seconds (measured from the drop that began the episode); the master then
forgets or refuses the key. ``disconnect_after=None`` disables it. A key
exceeding its rate by less than a factor ``1 + 1 / (burst + 1)`` may drop
now and then without ever being over continuously: it is throttled, never
disconnected.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

TOKEN_SLACK: Final = 1e-6
"""Tokens a message may be short of one and still pass (floating-point rounding)."""


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The answer for one message."""

    allowed: bool
    """Deliver the message (False: drop it)."""
    first_drop: bool
    """This is the first dropped message of a burst of drops (log once per burst)."""
    dropped_total: int
    """Messages dropped for this key so far (since it was first seen, forgotten or evicted)."""
    disconnect: bool
    """The key has been over its rate continuously for more than ``disconnect_after``."""


class _Bucket:
    """One key's state: tokens at time ``last``, drop count and over-rate episode."""

    __slots__ = ("dropped", "dropping", "last", "last_drop", "over_since", "tokens")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.last = now
        self.dropped = 0
        self.dropping = False
        self.over_since: float | None = None
        self.last_drop = -math.inf


_ALLOWED: Final = RateDecision(allowed=True, first_drop=False, dropped_total=0, disconnect=False)


class MessageRateLimiter:
    """Token buckets per key, bounded in number; see the module docstring."""

    __slots__ = ("_buckets", "_burst", "_disconnect_after", "_max_keys", "_over_window", "_rate")

    def __init__(self, rate: float, burst: int, *, max_keys: int = 10_000,
                 disconnect_after: float | None = None) -> None:
        if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a finite number > 0, not {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an integer >= 1, not {burst!r}")
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ValueError(f"max_keys must be an integer >= 1, not {max_keys!r}")
        if disconnect_after is not None and not (
            isinstance(disconnect_after, int | float)
            and math.isfinite(disconnect_after) and disconnect_after > 0
        ):
            raise ValueError(
                f"disconnect_after must be None or a finite number > 0, not {disconnect_after!r}"
            )
        self._rate = float(rate)
        self._burst = burst
        self._max_keys = max_keys
        self._disconnect_after = disconnect_after
        self._over_window = (burst + 1) / self._rate
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> int:
        return self._burst

    @property
    def max_keys(self) -> int:
        return self._max_keys

    @property
    def disconnect_after(self) -> float | None:
        return self._disconnect_after

    @property
    def over_window(self) -> float:
        """Longest gap between drops that still counts as continuously over the rate."""
        return self._over_window

    def allow(self, key: str, now: float) -> RateDecision:
        """Whether ``key`` may send a message at ``now``; takes a token when it may."""
        if not math.isfinite(now):
            raise ValueError(f"now must be finite, not {now!r}")
        bucket = self._bucket(key, now)
        if now > bucket.last:
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.last) * self._rate)
            bucket.last = now
        t = bucket.last
        if bucket.tokens >= 1.0 - TOKEN_SLACK:
            bucket.tokens -= 1.0
            bucket.dropping = False
            if bucket.over_since is None and not bucket.dropped:
                return _ALLOWED  # the answer to nearly every message: no new object
            allowed, first_drop = True, False
        else:
            first_drop = not bucket.dropping
            bucket.dropping = True
            bucket.dropped += 1
            if bucket.over_since is None or t - bucket.last_drop > self._over_window:
                bucket.over_since = t
            bucket.last_drop = t
            allowed = False
        return RateDecision(allowed=allowed, first_drop=first_drop,
                            dropped_total=bucket.dropped, disconnect=self._disconnect(bucket, t))

    def forget(self, key: str) -> None:
        """Drop all state of ``key`` (a later message starts a full bucket); no-op if unknown."""
        self._buckets.pop(key, None)

    def dropped(self) -> Mapping[str, int]:
        """A copy of the drop counts of the tracked keys that had any drops."""
        return {key: bucket.dropped for key, bucket in self._buckets.items() if bucket.dropped}

    def __len__(self) -> int:
        """How many keys have a bucket (at most ``max_keys``)."""
        return len(self._buckets)

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is not None:
            self._buckets.move_to_end(key)
            return bucket
        if len(self._buckets) >= self._max_keys:
            self._buckets.popitem(last=False)
        bucket = self._buckets[key] = _Bucket(float(self._burst), now)
        return bucket

    def _disconnect(self, bucket: _Bucket, t: float) -> bool:
        if bucket.over_since is None or t - bucket.last_drop > self._over_window:
            bucket.over_since = None
            return False
        return self._disconnect_after is not None and t - bucket.over_since > self._disconnect_after
