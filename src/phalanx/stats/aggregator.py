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

Cost (a master merges every worker's delta): the histograms live in numpy
arrays, one row per entry and one column per bucket
(:mod:`phalanx.stats.dense`): one block of rows per live slot, plus the
archive, the run totals of every slot that left the window. ``apply``
checks and merges all the buckets of a delta with a fixed number of numpy
calls, into one block; only the exact integer sums (response bytes and
nanoseconds) are added in Python, once per entry. A slot that leaves the
window (``window`` behind the latest span end seen) is added to the archive
once. ``snapshot`` adds at most ``max_recent`` blocks and reads every
percentile of every row in one pass, so its cost does not grow with the
number of workers or deltas. ``apply`` trusts a
:class:`~phalanx.stats.delta.PackedDelta` (only
:func:`~phalanx.stats.delta.decode_delta` makes one, after checking it).

Memory: a block is 8 bytes per row and bucket column (about 10 KB per
entry at the default 1 % error), so a master that tracks 100 entries holds
about 12 MB over a full window of slots.

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
from typing import TYPE_CHECKING

import numpy as np

from phalanx.stats.delta import PackedDelta, StatsDelta, check_delta
from phalanx.stats.dense import percentiles as dense_percentiles
from phalanx.stats.histogram import Histogram
from phalanx.stats.layout import DEFAULT_RELATIVE_ERROR, NS_PER_S, BucketLayout, layout_for
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

if TYPE_CHECKING:
    from numpy.typing import NDArray

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

_MIN_BLOCK_ROWS = 16


class _Block:
    """Bucket counts, failures, min and max of some entries, one array row per entry.

    A *global* block (``order is None``) keeps entry ``r`` in row ``r``: the
    archive and the sums a snapshot builds. A *slot* block keeps only the
    entries its deltas touched, in the order they came (``order[i]`` is the
    entry of row ``i``), so a slot costs memory for the entries active in its
    second, not for every entry ever seen. Rows not yet touched are zero (min
    ``+inf``, max ``-inf``); a block grows (doubling) when it needs more rows.
    """

    __slots__ = ("_local", "counts", "failures", "highs", "lows", "order")

    def __init__(self, rows: int, columns: int, *, local: bool = False) -> None:
        self.counts: NDArray[np.int64] = np.zeros((rows, columns), dtype=np.int64)
        self.failures: NDArray[np.int64] = np.zeros(rows, dtype=np.int64)
        self.lows: NDArray[np.float64] = np.full(rows, np.inf)
        self.highs: NDArray[np.float64] = np.full(rows, -np.inf)
        self.order: list[int] | None = [] if local else None
        self._local: dict[int, int] = {}

    @property
    def rows(self) -> int:
        return int(self.counts.shape[0])

    def reserve(self, rows: int) -> None:
        """Make room for ``rows`` rows."""
        have = self.rows
        if rows <= have:
            return
        grown = _Block(max(rows, 2 * have, _MIN_BLOCK_ROWS), self.counts.shape[1])
        grown.counts[:have] = self.counts
        grown.failures[:have] = self.failures
        grown.lows[:have] = self.lows
        grown.highs[:have] = self.highs
        self.counts, self.failures = grown.counts, grown.failures
        self.lows, self.highs = grown.lows, grown.highs

    def rows_of(self, entries: list[int]) -> list[int]:
        """The rows of these entries in this block, adding rows for new ones."""
        order = self.order
        if order is None:
            return entries
        local = self._local
        rows = []
        for entry in entries:
            row = local.get(entry)
            if row is None:
                row = local[entry] = len(order)
                order.append(entry)
            rows.append(row)
        return rows

    def add_into(self, total: _Block, entries: int) -> None:
        """Add this block's rows of entries below ``entries`` to the global block ``total``."""
        if self.order is None:
            rows = min(self.rows, entries)
            total.counts[:rows] += self.counts[:rows]
            total.failures[:rows] += self.failures[:rows]
            np.minimum(total.lows[:rows], self.lows[:rows], out=total.lows[:rows])
            np.maximum(total.highs[:rows], self.highs[:rows], out=total.highs[:rows])
            return
        used = len(self.order)
        if not used:
            return
        target = np.array(self.order, dtype=np.intp)  # distinct entries
        total.counts[target] += self.counts[:used]
        total.failures[target] += self.failures[:used]
        total.lows[target] = np.minimum(total.lows[target], self.lows[:used])
        total.highs[target] = np.maximum(total.highs[target], self.highs[:used])


class _Slot:
    """The deltas whose spans end in one slot of the window, merged."""

    __slots__ = ("block", "span_end", "span_start")

    def __init__(self, span_start: float, span_end: float, block: _Block) -> None:
        self.span_start = span_start
        self.span_end = span_end
        self.block = block


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
        "_archive",
        "_errors",
        "_exceptions",
        "_keys",
        "_latest_end",
        "_layout",
        "_max_entries",
        "_max_errors",
        "_max_recent",
        "_named_entries",
        "_recent",
        "_response_bytes",
        "_rows",
        "_slot_width",
        "_start",
        "_total_ns",
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
        self._layout: BucketLayout = layout_for(relative_error)
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
        return self._layout.relative_error

    def reset(self, now: float) -> None:
        """Forget everything; a new run starts at ``now``."""
        self._start = now
        self._rows: dict[_Key, int] = {}
        self._keys: list[_Key] = []
        # Exact run sums per row, in Python integers: they are not bounded by the wire.
        self._response_bytes: list[int] = []
        self._total_ns: list[int] = []
        # Buckets, failures, min and max of the deltas whose slot left the window; the
        # live slots add theirs in snapshot().
        self._archive = _Block(0, self._layout.size)
        self._named_entries = 0
        self._errors = _Rows(self._max_errors, _OVERFLOW_ERROR)
        self._exceptions = _Rows(self._max_errors, _OVERFLOW_EXCEPTION)
        self._recent: dict[int, _Slot] = {}
        self._latest_end = -math.inf

    def apply(self, delta: PackedDelta | StatsDelta, *,
              received_at: float | None = None) -> None:
        """Merge ``delta`` into the run totals and the window.

        A :class:`~phalanx.stats.delta.PackedDelta` (what
        :func:`~phalanx.stats.delta.decode_delta` returns) is already checked;
        a :class:`~phalanx.stats.delta.StatsDelta` is checked and packed first
        (:func:`~phalanx.stats.delta.check_delta`).

        Raises ``ValueError`` (and changes nothing) if ``delta`` breaks an
        invariant of :mod:`phalanx.stats.delta`, if its histograms have
        another relative error than this aggregator, or if ``received_at`` is
        not finite.
        """
        packed = delta if isinstance(delta, PackedDelta) else check_delta(delta)
        if packed.names and packed.relative_error != self._layout.relative_error:
            raise ValueError(
                f"delta histogram relative error {packed.relative_error}"
                f" differs from the aggregator's {self._layout.relative_error}"
            )
        if received_at is None:
            span_start, span_end = packed.start, packed.end
        else:
            if not math.isfinite(received_at):
                raise ValueError(f"received_at must be finite, got {received_at!r}")
            # A peer's own clock says how long its delta lasted: at most one window, so
            # one worker cannot stretch everyone's current rate towards zero.
            length = min(packed.end - packed.start, self._window)
            span_start, span_end = received_at - length, received_at
        if not math.isfinite(span_end / self._slot_width):
            raise ValueError(f"delta end {span_end!r} is beyond any slot of the window")
        # Nothing above changed any state; nothing below raises.
        if span_end > self._latest_end - self._window:
            block = self._slot_for(span_start, span_end).block
        else:  # already older than the window: straight into the run
            block = self._archive

        keys = list(zip(packed.methods, packed.names, strict=True))
        known = self._rows
        rows = [known.get(key, -1) for key in keys]
        if -1 in rows:
            rows = [self._row_for(method, name) for method, name in keys]
        response_bytes = self._response_bytes
        total_ns = self._total_ns
        for row, sent, nanoseconds in zip(rows, packed.response_bytes, packed.total_ns,
                                          strict=True):
            response_bytes[row] += sent
            total_ns[row] += nanoseconds
        if rows:
            _add_entries(block, len(self._keys), rows, packed)
        for error in packed.errors:
            self._errors.add((error.method, error.name, error.kind, error.message), error.count)
        for exc in packed.exceptions:
            self._exceptions.add((exc.task, exc.error_type, exc.message, exc.location), exc.count)
        if span_end > self._latest_end:
            self._latest_end = span_end
            self._prune()

    def _slot_for(self, span_start: float, span_end: float) -> _Slot:
        number = math.ceil(span_end / self._slot_width - 1e-9)
        slot = self._recent.get(number)
        if slot is None:
            if len(self._recent) >= self._max_recent:
                self._archive_slot(min(self._recent, key=lambda k: self._recent[k].span_end))
            block = _Block(0, self._layout.size, local=True)
            slot = self._recent[number] = _Slot(span_start, span_end, block)
        else:
            slot.span_start = min(slot.span_start, span_start)
            slot.span_end = max(slot.span_end, span_end)
        return slot

    def _prune(self) -> None:
        horizon = self._latest_end - self._window
        for number in [n for n, slot in self._recent.items() if slot.span_end <= horizon]:
            self._archive_slot(number)

    def _archive_slot(self, number: int) -> None:
        """Fold a slot that left the window into the run totals (once per slot)."""
        block = self._recent.pop(number).block
        self._archive.reserve(len(self._keys))
        block.add_into(self._archive, len(self._keys))

    def _sum_blocks(self, blocks: list[_Block]) -> _Block:
        """The sum of ``blocks``, exactly one row per entry."""
        rows = len(self._keys)
        total = _Block(rows, self._layout.size)
        for block in blocks:
            block.add_into(total, rows)
        return total

    def _run_block(self) -> _Block:
        """Archive plus every live slot: the whole run."""
        return self._sum_blocks([self._archive, *(slot.block for slot in self._recent.values())])

    def _histogram_of(self, block: _Block, row: int, total_ns: int) -> Histogram:
        layout = self._layout
        counts = block.counts[row]
        columns = np.flatnonzero(counts)
        buckets = dict(zip((columns + layout.zero_index).tolist(), counts[columns].tolist(),
                           strict=True))
        return Histogram.from_buckets(layout.relative_error, buckets, total_ns=total_ns,
                                      low=float(block.lows[row]), high=float(block.highs[row]))

    def histogram(self, method: str, name: str) -> Histogram | None:
        """A copy of the run histogram of (method, name), or None if unknown."""
        row = self._rows.get((method, name))
        if row is None:
            return None
        return self._histogram_of(self._run_block(), row, self._total_ns[row])

    def total_histogram(self) -> Histogram:
        """A copy of the run histogram over all requests."""
        return self._histogram_of(_total_row(self._run_block()), 0, sum(self._total_ns))

    def snapshot(self, now: float) -> StatsSnapshot:
        """The run and the current window as seen at ``now`` (does not change state).

        Cost: every live slot's block is added once (into the run, and into the
        window when inside it) and the percentiles of every row are read in one
        pass; the work does not grow with the number of deltas.
        """
        duration = max(0.0, now - self._start)
        low = now - self._window
        selected = [slot for slot in self._recent.values() if low < slot.span_end <= now]
        covered = (
            max(slot.span_end for slot in selected) - min(slot.span_start for slot in selected)
            if selected
            else 0.0
        )
        run = self._run_block()
        window = self._sum_blocks([slot.block for slot in selected])
        run_total = _total_row(run)
        window_total = _total_row(window)
        layout = self._layout
        run_values = [*dense_percentiles(run.counts, run.lows, run.highs, PERCENTILES, layout),
                      *dense_percentiles(run_total.counts, run_total.lows, run_total.highs,
                                         PERCENTILES, layout)]
        window_values = [
            *dense_percentiles(window.counts, window.lows, window.highs, PERCENTILES, layout),
            *dense_percentiles(window_total.counts, window_total.lows, window_total.highs,
                               PERCENTILES, layout)]
        run_requests = [*run.counts.sum(axis=1).tolist(), int(run_total.counts.sum())]
        window_requests = [*window.counts.sum(axis=1).tolist(), int(window_total.counts.sum())]
        run_failures = [*run.failures.tolist(), int(run_total.failures[0])]
        window_failures = [*window.failures.tolist(), int(window_total.failures[0])]
        lows = [*run.lows.tolist(), float(run_total.lows[0])]
        highs = [*run.highs.tolist(), float(run_total.highs[0])]
        response_bytes = [*self._response_bytes, sum(self._response_bytes)]
        total_ns = [*self._total_ns, sum(self._total_ns)]
        keys = [*self._keys, (TOTAL_METHOD, TOTAL_NAME)]

        def row_snapshot(row: int) -> EntrySnapshot:
            count = run_requests[row]
            current = window_requests[row]
            method, name = keys[row]
            return EntrySnapshot(
                method=method,
                name=name,
                num_requests=count,
                num_failures=run_failures[row],
                response_bytes=response_bytes[row],
                min=lows[row] if count else 0.0,
                max=highs[row] if count else 0.0,
                mean=total_ns[row] / NS_PER_S / count if count else 0.0,
                percentiles=tuple(zip(PERCENTILES, run_values[row], strict=True)),
                rps=_rate(count, duration),
                failures_per_s=_rate(run_failures[row], duration),
                current_rps=_rate(current, covered),
                current_failures_per_s=_rate(window_failures[row], covered),
                current_percentiles=tuple(zip(PERCENTILES, window_values[row], strict=True)),
            )

        order = sorted(range(len(self._keys)), key=lambda row: (keys[row][1], keys[row][0]))
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
            entries=tuple(row_snapshot(row) for row in order),
            total=row_snapshot(len(self._keys)),
            errors=errors,
            exceptions=exceptions,
        )

    def _row_for(self, method: str, name: str) -> int:
        """The row of (method, name): its own, or the overflow entry's when full."""
        key = (method, name)
        row = self._rows.get(key)
        if row is not None:
            return row
        if self._named_entries >= self._max_entries:
            key = _OVERFLOW_KEY
            row = self._rows.get(key)
            if row is not None:
                return row
        else:
            self._named_entries += 1
        row = self._rows[key] = len(self._keys)
        self._keys.append(key)
        self._response_bytes.append(0)
        self._total_ns.append(0)
        return row


def _add_entries(block: _Block, entries: int, rows: list[int], delta: PackedDelta) -> None:
    """Add the entries of ``delta`` (entry numbers ``rows``, ``entries`` in use) to ``block``."""
    buckets = delta.buckets
    lengths = buckets.lengths
    targets = block.rows_of(rows)
    block.reserve(entries if block.order is None else len(block.order))
    row_array = np.array(targets, dtype=np.intp)
    bucket_rows = np.repeat(row_array, lengths)
    failures, lows, highs = delta.failures, delta.lows, delta.highs
    nonempty = lengths > 0
    if not nonempty.all():
        row_array, failures = row_array[nonempty], failures[nonempty]
        lows, highs = lows[nonempty], highs[nonempty]
    if len(set(rows)) == len(rows):
        # Distinct rows (the usual case): each (row, column) appears once, so plain fancy
        # indexing adds correctly, at a fraction of the cost of the ufunc.at calls.
        block.counts[bucket_rows, buckets.columns] += buckets.counts
        block.failures[row_array] += failures
        block.lows[row_array] = np.minimum(block.lows[row_array], lows)
        block.highs[row_array] = np.maximum(block.highs[row_array], highs)
    else:  # entries folded into the overflow row share it: every one must count
        np.add.at(block.counts, (bucket_rows, buckets.columns), buckets.counts)
        np.add.at(block.failures, row_array, failures)
        np.minimum.at(block.lows, row_array, lows)
        np.maximum.at(block.highs, row_array, highs)


def _total_row(block: _Block) -> _Block:
    """One row: the sum of every row of the global ``block``."""
    total = _Block(1, block.counts.shape[1])
    total.counts[0] = block.counts.sum(axis=0)
    total.failures[0] = block.failures.sum()
    if block.rows:
        total.lows[0] = block.lows.min()
        total.highs[0] = block.highs.max()
    return total


def _rate(amount: int, seconds: float) -> float:
    return amount / seconds if seconds > 0.0 else 0.0
