"""The master-side merge of worker deltas into run totals and a sliding window.

:class:`Aggregator` merges each :class:`~phalanx.stats.delta.StatsDelta`
exactly: histogram buckets, counts, nanosecond sums, min and max add up, so
merging the deltas of N recorders gives the same numbers as one recorder that
saw every request. Every entry also goes into a total entry (method ``""``,
name ``"Aggregated"``).

The current window
------------------
Applied deltas are kept, by the time their span ends, in *slots* of
``window / SLOTS_PER_WINDOW`` seconds (slot ``k`` takes the spans ending in
``((k-1)·w, k·w]``). Each slot holds the merged histograms and failure
counts of its deltas and the span ``[span_start, span_end]`` they cover.
For ``snapshot(now)`` the window holds the slots whose ``span_end`` lies in
``(now - window, now]``; with ``requests`` and ``failures`` summed over them
and ``covered = max(span_end) - min(span_start)`` over them::

    current_rps            = requests / covered   (0.0 if covered <= 0)
    current_failures_per_s = failures / covered   (0.0 if covered <= 0)
    current_percentiles    = percentiles of the merged histograms of the window

``covered`` is the time the selected deltas actually span: shorter than
``window`` while a run is young or when workers report rarely, and longer by
at most one report interval when a delta straddles the window's start (that
delta counts whole, so its requests and its time stay matched and the rate
stays unbiased). The window's edge is resolved to one slot: when ``now`` is
not a multiple of the slot width, a slot half inside counts whole.

The span of a delta is ``[delta.start, delta.end]`` by default, which assumes
the deltas' times are on the aggregator's clock. Deltas from other machines
should be applied with ``received_at=<master time>``: the span is then
``[received_at - min(end - start, window), received_at]``.

Cost (a master merges every worker's delta): ``apply`` merges each entry's
histogram once, into its slot. Slots that leave the window (``window``
behind the latest span end seen) are folded into the run totals, once per
slot. ``snapshot`` merges at most ``max_recent`` slots per entry, so its
cost does not grow with the number of workers or deltas. ``apply`` trusts a
delta that :func:`~phalanx.stats.delta.decode_delta` already validated when
called with ``checked=True``; otherwise it validates it first.

Bounds
------
As in the recorder: at most ``max_entries`` named entries (later names fold
into ``("", "<other>")``), ``max_errors`` error rows and ``max_errors``
exception rows (later ones fold into the overflow rows of
:mod:`phalanx.stats.limits`), and at most ``max_recent`` slots (the oldest
is folded into the run totals first).
"""

from __future__ import annotations

import math

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


class _Slot:
    """The deltas whose spans end in one slot of the window, merged."""

    __slots__ = ("entries", "span_end", "span_start")

    def __init__(self, span_start: float, span_end: float) -> None:
        self.span_start = span_start
        self.span_end = span_end
        self.entries: dict[_Key, _Totals] = {}


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


SLOTS_PER_WINDOW = 10


class Aggregator:
    """Run totals and the current window, built from applied deltas."""

    __slots__ = (
        "_archive_total",
        "_entries",
        "_errors",
        "_exceptions",
        "_latest_end",
        "_max_entries",
        "_max_errors",
        "_max_recent",
        "_named_entries",
        "_recent",
        "_relative_error",
        "_slot_width",
        "_start",
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
        if not (window > 0.0 and math.isfinite(window)):
            raise ValueError(f"window must be positive, got {window!r}")
        if max_entries < 1 or max_errors < 1 or max_recent < 1:
            raise ValueError("max_entries, max_errors and max_recent must be at least 1")
        self._relative_error = Histogram(relative_error).relative_error
        self._window = window
        self._slot_width = window / SLOTS_PER_WINDOW
        self._max_entries = max_entries
        self._max_errors = max_errors
        self._max_recent = max_recent
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
        # Run totals of the entries: failures and bytes of every delta, histograms of the
        # deltas whose slot left the window (the live slots add theirs in snapshot()).
        self._entries: dict[_Key, _Totals] = {}
        self._archive_total = _Totals(self._relative_error)
        self._named_entries = 0
        self._errors = _Rows(self._max_errors, _OVERFLOW_ERROR)
        self._exceptions = _Rows(self._max_errors, _OVERFLOW_EXCEPTION)
        self._recent: dict[int, _Slot] = {}
        self._latest_end = -math.inf

    def apply(self, delta: StatsDelta, *, received_at: float | None = None,
              checked: bool = False) -> None:
        """Merge ``delta`` into the run totals and the window.

        Raises ``ValueError`` (and changes nothing) if ``delta`` breaks an
        invariant of :mod:`phalanx.stats.delta` (not re-checked when
        ``checked``: it came from :func:`~phalanx.stats.delta.decode_delta`),
        if one of its histograms has another relative error than this
        aggregator, or if ``received_at`` is not finite.
        """
        if not checked:
            check_delta(delta)
        relative_error = self._relative_error
        for entry in delta.entries:
            if entry.histogram.relative_error != relative_error:
                raise ValueError(
                    f"delta histogram relative error {entry.histogram.relative_error}"
                    f" differs from the aggregator's {relative_error}"
                )
        if received_at is None:
            span_start, span_end = delta.start, delta.end
        else:
            if not math.isfinite(received_at):
                raise ValueError(f"received_at must be finite, got {received_at!r}")
            # A peer's own clock says how long its delta lasted: at most one window, so
            # one worker cannot stretch everyone's current rate towards zero.
            length = min(delta.end - delta.start, self._window)
            span_start, span_end = received_at - length, received_at

        total = self._archive_total
        slot = None
        if span_end > self._latest_end - self._window:
            slot = self._slot_for(span_start, span_end)
        for entry in delta.entries:
            key = self._key_for(entry.method, entry.name)
            run = self._entries[key]
            run.num_failures += entry.num_failures
            run.response_bytes += entry.response_bytes
            total.num_failures += entry.num_failures
            total.response_bytes += entry.response_bytes
            if slot is None:  # already older than the window: straight into the run
                run.histogram.merge_checked_wire(entry.histogram)
                total.histogram.merge_checked_wire(entry.histogram)
                continue
            totals = slot.entries.get(key)
            if totals is None:
                totals = slot.entries[key] = _Totals(relative_error)
            totals.histogram.merge_checked_wire(entry.histogram)
            totals.num_failures += entry.num_failures
        for error in delta.errors:
            self._errors.add((error.method, error.name, error.kind, error.message), error.count)
        for exc in delta.exceptions:
            self._exceptions.add((exc.task, exc.error_type, exc.message, exc.location), exc.count)
        if span_end > self._latest_end:
            self._latest_end = span_end
            self._prune()

    def _slot_for(self, span_start: float, span_end: float) -> _Slot:
        number = math.ceil(span_end / self._slot_width - 1e-9)
        slot = self._recent.get(number)
        if slot is None:
            if len(self._recent) >= self._max_recent:
                self._archive(min(self._recent, key=lambda k: self._recent[k].span_end))
            slot = self._recent[number] = _Slot(span_start, span_end)
        else:
            slot.span_start = min(slot.span_start, span_start)
            slot.span_end = max(slot.span_end, span_end)
        return slot

    def _prune(self) -> None:
        horizon = self._latest_end - self._window
        for number in [n for n, slot in self._recent.items() if slot.span_end <= horizon]:
            self._archive(number)

    def _archive(self, number: int) -> None:
        """Fold a slot that left the window into the run totals (once per slot)."""
        slot = self._recent.pop(number)
        total = self._archive_total.histogram
        for key, totals in slot.entries.items():
            self._entries[key].histogram.merge(totals.histogram)
            total.merge(totals.histogram)

    def _run_histogram(self, key: _Key) -> Histogram:
        histogram = self._entries[key].histogram.copy()
        for slot in self._recent.values():
            live = slot.entries.get(key)
            if live is not None:
                histogram.merge(live.histogram)
        return histogram

    def histogram(self, method: str, name: str) -> Histogram | None:
        """A copy of the run histogram of (method, name), or None if unknown."""
        key = (method, name)
        return self._run_histogram(key) if key in self._entries else None

    def total_histogram(self) -> Histogram:
        """A copy of the run histogram over all requests."""
        histogram = self._archive_total.histogram.copy()
        for slot in self._recent.values():
            for live in slot.entries.values():
                histogram.merge(live.histogram)
        return histogram

    def snapshot(self, now: float) -> StatsSnapshot:
        """The run and the current window as seen at ``now`` (does not change state).

        Cost: each live slot is merged once per entry (into the window, or the run
        when it is outside the window); totals are merged from the entries, not
        from the slots, so the work does not grow with the number of deltas.
        """
        duration = max(0.0, now - self._start)
        low = now - self._window
        selected = [slot for slot in self._recent.values() if low < slot.span_end <= now]
        others = [slot for slot in self._recent.values() if not low < slot.span_end <= now]
        covered = (
            max(slot.span_end for slot in selected) - min(slot.span_start for slot in selected)
            if selected
            else 0.0
        )
        window: dict[_Key, _Totals] = {}
        for slot in selected:
            for key, live in slot.entries.items():
                totals = window.get(key)
                if totals is None:
                    totals = window[key] = _Totals(self._relative_error)
                totals.histogram.merge(live.histogram)
                totals.num_failures += live.num_failures

        window_total = _Totals(self._relative_error)
        run_total = _Totals(self._relative_error)
        run_total.histogram = self._archive_total.histogram.copy()
        run_total.num_failures = self._archive_total.num_failures
        run_total.response_bytes = self._archive_total.response_bytes
        rows = []
        for key, totals in sorted(self._entries.items(), key=lambda item: (item[0][1], item[0][0])):
            run = _Totals(self._relative_error)
            run.histogram = totals.histogram.copy()
            run.num_failures = totals.num_failures
            run.response_bytes = totals.response_bytes
            current = window.get(key)
            if current is not None:
                run.histogram.merge(current.histogram)
                run_total.histogram.merge(current.histogram)
                window_total.histogram.merge(current.histogram)
                window_total.num_failures += current.num_failures
            for slot in others:
                outside = slot.entries.get(key)
                if outside is not None:
                    run.histogram.merge(outside.histogram)
                    run_total.histogram.merge(outside.histogram)
            rows.append(_entry_snapshot(key, run, current, duration, covered))
        total = _entry_snapshot(
            (TOTAL_METHOD, TOTAL_NAME), run_total, window_total, duration, covered
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
            entries=tuple(rows),
            total=total,
            errors=errors,
            exceptions=exceptions,
        )

    def _key_for(self, method: str, name: str) -> _Key:
        """The entry key of (method, name): itself, or the overflow entry when full."""
        key = (method, name)
        if key in self._entries:
            return key
        if self._named_entries >= self._max_entries:
            key = _OVERFLOW_KEY
            if key in self._entries:
                return key
        else:
            self._named_entries += 1
        self._entries[key] = _Totals(self._relative_error)
        return key


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
