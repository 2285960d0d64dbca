"""The master-side merge of worker deltas into run totals and a sliding window.

:class:`Aggregator` merges each :class:`~phalanx.stats.delta.StatsDelta`
exactly: histogram buckets, counts, nanosecond sums, min and max add up, so
merging the deltas of N recorders gives the same numbers as one recorder that
saw every request. Every entry also goes into a total entry (method ``""``,
name ``"Aggregated"``).

The current window
------------------
Each applied delta is kept, with the span ``[span_start, span_end]`` it
covers, in a bounded deque. For ``snapshot(now)`` the window holds the deltas
whose ``span_end`` lies in ``(now - window, now]``; with ``requests`` and
``failures`` summed over them and
``covered = max(span_end) - min(span_start)`` over them::

    current_rps            = requests / covered   (0.0 if covered <= 0)
    current_failures_per_s = failures / covered   (0.0 if covered <= 0)
    current_percentiles    = percentiles of the merged histograms of the window

``covered`` is the time the selected deltas actually span: shorter than
``window`` while a run is young or when workers report rarely, and longer by
at most one report interval when a delta straddles the window's start (that
delta counts whole, so its requests and its time stay matched and the rate
stays unbiased).

The span of a delta is ``[delta.start, delta.end]`` by default, which assumes
the deltas' times are on the aggregator's clock. Deltas from other machines
should be applied with ``received_at=<master time>``: the span is then
``[received_at - (end - start), received_at]``.

Deltas older than ``window`` behind the latest span end seen are pruned on
``apply``, so ``snapshot`` is pure; ``now`` is expected not to lie before
that latest end.

Bounds
------
As in the recorder: at most ``max_entries`` named entries (later names fold
into ``("", "<other>")``), ``max_errors`` error rows and ``max_errors``
exception rows (later ones fold into the overflow rows of
:mod:`phalanx.stats.limits`), and at most ``max_recent`` deltas in the window.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from phalanx.stats.delta import StatsDelta, check_delta
from phalanx.stats.histogram import DEFAULT_RELATIVE_ERROR, Histogram
from phalanx.stats.limits import (
    OVERFLOW_ERROR_KIND,
    OVERFLOW_ERROR_MESSAGE,
    OVERFLOW_EXCEPTION_MESSAGE,
    OVERFLOW_METHOD,
    OVERFLOW_NAME,
)
from phalanx.stats.snapshot import (
    PERCENTILES,
    TOTAL_METHOD,
    TOTAL_NAME,
    EntrySnapshot,
    ErrorSnapshot,
    ExceptionSnapshot,
    StatsSnapshot,
)

_Key = tuple[str, str]
_RowKey = tuple[str, str, str, str]

_OVERFLOW_KEY: _Key = (OVERFLOW_METHOD, OVERFLOW_NAME)
_OVERFLOW_ERROR: _RowKey = (
    OVERFLOW_METHOD,
    OVERFLOW_NAME,
    OVERFLOW_ERROR_KIND,
    OVERFLOW_ERROR_MESSAGE,
)
_OVERFLOW_EXCEPTION: _RowKey = (OVERFLOW_NAME, "", OVERFLOW_EXCEPTION_MESSAGE, "")


class _Totals:
    """Mutable sums for one entry."""

    __slots__ = ("histogram", "num_failures", "response_bytes")

    def __init__(self, relative_error: float) -> None:
        self.histogram = Histogram(relative_error)
        self.num_failures = 0
        self.response_bytes = 0


@dataclass(frozen=True, slots=True)
class _Recent:
    span_start: float
    span_end: float
    delta: StatsDelta


class _Rows:
    """Bounded counters keyed by 4 strings; new keys fold into ``overflow`` when full."""

    __slots__ = ("_limit", "_named", "_overflow", "counts")

    def __init__(self, limit: int, overflow: _RowKey) -> None:
        self._limit = limit
        self._overflow = overflow
        self._named = 0
        self.counts: dict[_RowKey, int] = {}

    def add(self, key: _RowKey, count: int) -> None:
        counts = self.counts
        if key not in counts:
            if self._named < self._limit:
                self._named += 1
            else:
                key = self._overflow
        counts[key] = counts.get(key, 0) + count


class Aggregator:
    """Run totals and the current window, built from applied deltas."""

    __slots__ = (
        "_entries",
        "_errors",
        "_exceptions",
        "_latest_end",
        "_max_entries",
        "_max_errors",
        "_named_entries",
        "_recent",
        "_relative_error",
        "_start",
        "_total",
        "_window",
    )

    def __init__(
        self,
        *,
        start: float,
        window: float = 10.0,
        relative_error: float = DEFAULT_RELATIVE_ERROR,
        max_entries: int = 10_000,
        max_errors: int = 1_000,
        max_recent: int = 10_000,
    ) -> None:
        if not window > 0.0:
            raise ValueError(f"window must be positive, got {window!r}")
        if max_entries < 1 or max_errors < 1 or max_recent < 1:
            raise ValueError("max_entries, max_errors and max_recent must be at least 1")
        self._relative_error = Histogram(relative_error).relative_error
        self._window = window
        self._max_entries = max_entries
        self._max_errors = max_errors
        self._recent: deque[_Recent] = deque(maxlen=max_recent)
        self.reset(start)

    @property
    def start(self) -> float:
        return self._start

    @property
    def window(self) -> float:
        return self._window

    @property
    def relative_error(self) -> float:
        return self._relative_error

    def reset(self, now: float) -> None:
        """Forget everything; a new run starts at ``now``."""
        self._start = now
        self._entries: dict[_Key, _Totals] = {}
        self._named_entries = 0
        self._total = _Totals(self._relative_error)
        self._errors = _Rows(self._max_errors, _OVERFLOW_ERROR)
        self._exceptions = _Rows(self._max_errors, _OVERFLOW_EXCEPTION)
        self._recent.clear()
        self._latest_end = -math.inf

    def apply(self, delta: StatsDelta, *, received_at: float | None = None) -> None:
        """Merge ``delta`` into the run totals and the window.

        Raises ``ValueError`` (and changes nothing) if ``delta`` breaks an
        invariant of :mod:`phalanx.stats.delta`, if one of its histograms has
        another relative error than this aggregator, or if ``received_at`` is
        not finite.
        """
        check_delta(delta)
        for entry in delta.entries:
            if entry.histogram.relative_error != self._relative_error:
                raise ValueError(
                    f"delta histogram relative error {entry.histogram.relative_error}"
                    f" differs from the aggregator's {self._relative_error}"
                )
        if received_at is None:
            span = _Recent(delta.start, delta.end, delta)
        else:
            if not math.isfinite(received_at):
                raise ValueError(f"received_at must be finite, got {received_at!r}")
            span = _Recent(received_at - (delta.end - delta.start), received_at, delta)

        total = self._total
        for entry in delta.entries:
            totals = self._totals_for(entry.method, entry.name)
            totals.histogram.merge_wire(entry.histogram)
            totals.num_failures += entry.num_failures
            totals.response_bytes += entry.response_bytes
            total.histogram.merge_wire(entry.histogram)
            total.num_failures += entry.num_failures
            total.response_bytes += entry.response_bytes
        for error in delta.errors:
            self._errors.add((error.method, error.name, error.kind, error.message), error.count)
        for exc in delta.exceptions:
            self._exceptions.add((exc.task, exc.error_type, exc.message, exc.location), exc.count)

        self._recent.append(span)
        self._latest_end = max(self._latest_end, span.span_end)
        horizon = self._latest_end - self._window
        recent = self._recent
        while recent and recent[0].span_end <= horizon:
            recent.popleft()

    def histogram(self, method: str, name: str) -> Histogram | None:
        """A copy of the run histogram of (method, name), or None if unknown."""
        totals = self._entries.get((method, name))
        return None if totals is None else totals.histogram.copy()

    def total_histogram(self) -> Histogram:
        """A copy of the run histogram over all requests."""
        return self._total.histogram.copy()

    def snapshot(self, now: float) -> StatsSnapshot:
        """The run and the current window as seen at ``now`` (does not change state)."""
        duration = max(0.0, now - self._start)
        low = now - self._window
        selected = [r for r in self._recent if low < r.span_end <= now]
        covered = (
            max(r.span_end for r in selected) - min(r.span_start for r in selected)
            if selected
            else 0.0
        )
        window: dict[_Key, _Totals] = {}
        window_total = _Totals(self._relative_error)
        entries = self._entries
        for recent in selected:
            for entry in recent.delta.entries:
                key = (entry.method, entry.name)
                if key not in entries:
                    key = _OVERFLOW_KEY
                totals = window.get(key)
                if totals is None:
                    totals = window[key] = _Totals(self._relative_error)
                totals.histogram.merge_wire(entry.histogram)
                totals.num_failures += entry.num_failures
                window_total.histogram.merge_wire(entry.histogram)
                window_total.num_failures += entry.num_failures

        rows = tuple(
            _entry_snapshot(key, totals, window.get(key), duration, covered)
            for key, totals in sorted(entries.items(), key=lambda item: (item[0][1], item[0][0]))
        )
        total = _entry_snapshot(
            (TOTAL_METHOD, TOTAL_NAME), self._total, window_total, duration, covered
        )
        errors = tuple(
            ErrorSnapshot(method=m, name=n, kind=k, message=msg, count=c)
            for (m, n, k, msg), c in sorted(
                self._errors.counts.items(), key=lambda item: (-item[1], item[0])
            )
        )
        exceptions = tuple(
            ExceptionSnapshot(task=t, error_type=et, message=msg, location=loc, count=c)
            for (t, et, msg, loc), c in sorted(
                self._exceptions.counts.items(), key=lambda item: (-item[1], item[0])
            )
        )
        return StatsSnapshot(
            start=self._start,
            now=now,
            duration=duration,
            entries=rows,
            total=total,
            errors=errors,
            exceptions=exceptions,
        )

    def _totals_for(self, method: str, name: str) -> _Totals:
        key = (method, name)
        totals = self._entries.get(key)
        if totals is not None:
            return totals
        if self._named_entries >= self._max_entries:
            key = _OVERFLOW_KEY
            totals = self._entries.get(key)
            if totals is not None:
                return totals
        else:
            self._named_entries += 1
        totals = self._entries[key] = _Totals(self._relative_error)
        return totals


def _rate(amount: int, seconds: float) -> float:
    return amount / seconds if seconds > 0.0 else 0.0


def _entry_snapshot(
    key: _Key,
    run: _Totals,
    window: _Totals | None,
    duration: float,
    covered: float,
) -> EntrySnapshot:
    histogram = run.histogram
    count = histogram.count
    if window is None:
        current_requests = current_failures = 0
        current_values: tuple[float, ...] = (0.0,) * len(PERCENTILES)
    else:
        current_requests = window.histogram.count
        current_failures = window.num_failures
        current_values = window.histogram.percentiles(PERCENTILES)
    return EntrySnapshot(
        method=key[0],
        name=key[1],
        num_requests=count,
        num_failures=run.num_failures,
        response_bytes=run.response_bytes,
        min=histogram.min,
        max=histogram.max,
        mean=histogram.mean,
        percentiles=tuple(zip(PERCENTILES, histogram.percentiles(PERCENTILES), strict=True)),
        rps=_rate(count, duration),
        failures_per_s=_rate(run.num_failures, duration),
        current_rps=_rate(current_requests, covered),
        current_failures_per_s=_rate(current_failures, covered),
        current_percentiles=tuple(zip(PERCENTILES, current_values, strict=True)),
    )
