"""Immutable views of a run's statistics, the one input of every exporter.

The :class:`~phalanx.stats.aggregator.Aggregator` builds a
:class:`StatsSnapshot`; the web UI, the REST API, the terminal and every
exporter read it and nothing else. All latencies are seconds (exporters
convert units); all rates are per second.

Run values (``rps``, ``failures_per_s``, ``percentiles``) cover the whole run,
``[start, now]``. "Current" values cover the sliding window, as defined on
:class:`~phalanx.stats.aggregator.Aggregator`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

PERCENTILES: Final[tuple[float, ...]] = (
    0.5,
    0.66,
    0.75,
    0.8,
    0.9,
    0.95,
    0.98,
    0.99,
    0.999,
    0.9999,
    1.0,
)
"""The quantiles every snapshot reports, in this order."""

TOTAL_METHOD: Final = ""
TOTAL_NAME: Final = "Aggregated"
"""Method and name of the entry that sums every request of the run."""


def _lookup(pairs: tuple[tuple[float, float], ...], q: float) -> float:
    for quantile, seconds in pairs:
        if quantile == q:
            return seconds
    raise ValueError(f"quantile {q!r} is not one of PERCENTILES {PERCENTILES}")


@dataclass(frozen=True, slots=True)
class EntrySnapshot:
    """One (method, name) row, or the total row.

    ``percentiles`` and ``current_percentiles`` are ``(quantile, seconds)``
    pairs for each quantile of :data:`PERCENTILES`; all zeros when there is no
    data. ``min``, ``max`` and ``mean`` are 0.0 without requests.
    """

    method: str
    name: str
    num_requests: int
    num_failures: int
    response_bytes: int
    min: float
    max: float
    mean: float
    percentiles: tuple[tuple[float, float], ...]
    rps: float
    failures_per_s: float
    current_rps: float
    current_failures_per_s: float
    current_percentiles: tuple[tuple[float, float], ...]

    def percentile(self, q: float) -> float:
        """Run latency (seconds) at quantile ``q``; ``ValueError`` if ``q`` is not reported."""
        return _lookup(self.percentiles, q)

    def current_percentile(self, q: float) -> float:
        """Window latency (seconds) at quantile ``q``; ``ValueError`` if ``q`` is not reported."""
        return _lookup(self.current_percentiles, q)

    @property
    def fail_ratio(self) -> float:
        """``num_failures / num_requests``; 0.0 without requests."""
        return self.num_failures / self.num_requests if self.num_requests else 0.0

    @property
    def avg_response_bytes(self) -> float:
        """Mean response size; 0.0 without requests."""
        return self.response_bytes / self.num_requests if self.num_requests else 0.0


@dataclass(frozen=True, slots=True)
class ErrorSnapshot:
    """How many failed requests of (method, name) had this kind and message."""

    method: str
    name: str
    kind: str
    message: str
    count: int


@dataclass(frozen=True, slots=True)
class ExceptionSnapshot:
    """How many times a user task raised this exception at this location."""

    task: str
    error_type: str
    message: str
    location: str
    count: int


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """The whole run at time ``now``.

    ``entries`` are sorted by (name, method) and exclude the total, which is
    ``total`` (method ``""``, name ``"Aggregated"``). ``errors`` and
    ``exceptions`` are sorted by count, largest first, ties by key.
    ``duration`` is ``max(0, now - start)``.
    """

    start: float
    now: float
    duration: float
    entries: tuple[EntrySnapshot, ...]
    total: EntrySnapshot
    errors: tuple[ErrorSnapshot, ...]
    exceptions: tuple[ExceptionSnapshot, ...]

    @property
    def fail_ratio(self) -> float:
        """Failed share of all requests of the run; 0.0 without requests."""
        return self.total.fail_ratio
