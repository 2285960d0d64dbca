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
(:mod:`phalanx.stats.dense`). ``apply`` adds a whole delta to its slot with a
fixed number of numpy calls (the exact byte and nanosecond sums too: in an
int64 array that moves into Python integers before it could overflow), and
finds each entry's row through a memo of the entry lists it has seen (a
worker lists the same entries, sorted, report after report). A slot keeps
its deltas' buckets as they came (about 24 bytes per bucket) until a dense
block of the entries it touched (8 bytes per cell) is smaller, then merges
them into one; so a slot
costs memory for the entries active in its second, never more than about
twice the smaller form. A slot that leaves the window (``window`` behind the
latest span end seen) is folded, once, into the *archive*: one dense row per
entry. ``snapshot`` adds the live slots to a copy of the archive (the run)
and the selected ones to an empty block (the window), and reads every
percentile of every row in one pass over the rows and columns in use, so its
cost does not grow with the number of workers or deltas. ``apply`` trusts a
:class:`~phalanx.stats.delta.PackedDelta` (:func:`~phalanx.stats.delta.decode_delta`
makes one after checking it; a :class:`~phalanx.stats.delta.StatsDelta` is
checked on the way in).

Memory: the archive is about 10 KB per entry at the default 1 % error (1 MB
for 100 entries, 100 MB for 10,000), and a snapshot builds two more blocks
of that size while it runs; the live slots add what their seconds touched.

Bounds
------
As in the recorder: at most ``max_entries`` named entries (later names fold
into ``("", "<other>")``), ``max_errors`` error rows and ``max_errors``
exception rows (later ones fold into the overflow rows of
:mod:`phalanx.stats.limits`), and at most ``max_recent`` slots (the oldest
leaves the window first).
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
    """Bucket counts, failures, min and max per entry: entry ``r`` is row ``r``.

    Rows not yet touched are zero (min ``+inf``, max ``-inf``); the block grows
    (doubling) when it needs more rows.
    """

    __slots__ = ("counts", "failures", "highs", "lows")

    def __init__(self, rows: int, columns: int) -> None:
        self.counts: NDArray[np.int64] = np.zeros((rows, columns), dtype=np.int64)
        self.failures: NDArray[np.int64] = np.zeros(rows, dtype=np.int64)
        self.lows: NDArray[np.float64] = np.full(rows, np.inf)
        self.highs: NDArray[np.float64] = np.full(rows, -np.inf)

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

    def add(self, rows: NDArray[np.intp], bucket_rows: NDArray[np.intp],
            delta: PackedDelta) -> None:
        """Add the entries of ``delta``, entry ``i`` to row ``rows[i]`` (its buckets to
        ``bucket_rows``, ``rows`` repeated by the bucket lengths); rows may repeat."""
        buckets = delta.buckets
        _add_buckets(self.counts, bucket_rows, buckets.columns, buckets.counts)
        _add_failures_min_max(self.failures, self.lows, self.highs, rows, delta)


class _Slot:
    """The deltas whose spans end in one slot of the window.

    Keeps, per entry it touched (``entries[i]`` is local row ``i``), the
    failures, min and max, and the buckets: as the deltas' own arrays while
    they are smaller than a dense block of those rows, merged into one dense
    block after that. That is what is needed to take the slot back out of the
    window sum, plus its min and max, which a sum cannot give back.
    """

    __slots__ = ("_local", "counts", "entries", "failures", "highs", "lows", "pending",
                 "pending_buckets", "span_end", "span_start", "width")

    def __init__(self, span_start: float, span_end: float, width: int) -> None:
        self.span_start = span_start
        self.span_end = span_end
        self.width = width
        self.entries: NDArray[np.intp] = np.zeros(0, dtype=np.intp)  # local row -> entry
        self._local: NDArray[np.intp] = np.zeros(0, dtype=np.intp)  # entry -> local row, or -1
        self.failures: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.lows: NDArray[np.float64] = np.zeros(0)
        self.highs: NDArray[np.float64] = np.zeros(0)
        self.counts: NDArray[np.int64] | None = None  # dense local rows, once merged
        self.pending: list[tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.int64]]] = []
        self.pending_buckets = 0

    def add(self, entries: NDArray[np.intp], delta: PackedDelta) -> None:
        """Remember ``delta``'s entries (entry numbers ``entries``, which may repeat)."""
        rows = self._local_rows(entries)
        _add_failures_min_max(self.failures, self.lows, self.highs, rows, delta)
        buckets = delta.buckets
        bucket_rows = np.repeat(rows, buckets.lengths)
        if self.counts is not None:
            _add_buckets(self.counts, bucket_rows, buckets.columns, buckets.counts)
            return
        self.pending.append((bucket_rows, buckets.columns, buckets.counts))
        self.pending_buckets += int(buckets.counts.size)
        # About 24 bytes a pending bucket against 8 a dense cell: merge once larger.
        if self.pending_buckets * 3 > self.entries.size * self.width:
            counts = np.zeros((self.failures.size, self.width), dtype=np.int64)
            for pending_rows, columns, pending_counts in self.pending:
                _add_buckets(counts, pending_rows, columns, pending_counts)
            self.counts = counts
            self.pending = []

    def _local_rows(self, entries: NDArray[np.intp]) -> NDArray[np.intp]:
        """The local row of each of ``entries``, giving new ones the next free rows."""
        local = self._local
        largest = int(entries.max())
        if largest >= local.size:
            grown = np.full(max(largest + 1, 2 * local.size, _MIN_BLOCK_ROWS), -1, dtype=np.intp)
            grown[:local.size] = local
            self._local = local = grown
        rows = local[entries]
        fresh = rows < 0
        if fresh.any():
            new = np.unique(entries[fresh])
            used = self.entries.size
            local[new] = np.arange(used, used + new.size)
            self.entries = np.concatenate((self.entries, new))
            self._reserve(self.entries.size)
            rows = local[entries]
        return rows

    def _reserve(self, rows: int) -> None:
        have = self.failures.size
        if rows <= have:
            return
        size = max(rows, 2 * have, _MIN_BLOCK_ROWS)
        self.failures = np.concatenate((self.failures, np.zeros(size - have, dtype=np.int64)))
        self.lows = np.concatenate((self.lows, np.full(size - have, np.inf)))
        self.highs = np.concatenate((self.highs, np.full(size - have, -np.inf)))
        if self.counts is not None:
            grown = np.zeros((size, self.width), dtype=np.int64)
            grown[:have] = self.counts
            self.counts = grown

    def add_to(self, total: _Block) -> None:
        """Add this slot to ``total`` (a block with one row per entry, room for all)."""
        entries = self.entries  # distinct
        used = entries.size
        if not used:
            return
        if self.counts is not None:
            total.counts[entries] += self.counts[:used]
        else:
            for bucket_rows, columns, bucket_counts in self.pending:
                _add_buckets(total.counts, entries[bucket_rows], columns, bucket_counts)
        total.failures[entries] += self.failures[:used]
        total.lows[entries] = np.minimum(total.lows[entries], self.lows[:used])
        total.highs[entries] = np.maximum(total.highs[entries], self.highs[:used])


def _add_buckets(target: NDArray[np.int64], rows: NDArray[np.intp], columns: NDArray[np.intp],
                 counts: NDArray[np.int64]) -> None:
    """Add ``counts`` to the cells (``rows``, ``columns``) of ``target``; a repeated cell
    gets each of its counts.

    Through one flat index into the matrix: numpy's one-dimensional ``add.at`` is
    several times faster than two-dimensional fancy indexing.
    """
    flat = target.reshape(-1)  # a view: every block is a C-contiguous np.zeros array
    np.add.at(flat, rows * target.shape[1] + columns, counts)


def _add_failures_min_max(failures: NDArray[np.int64], lows: NDArray[np.float64],
                          highs: NDArray[np.float64], rows: NDArray[np.intp],
                          delta: PackedDelta) -> None:
    lengths = delta.buckets.lengths
    new_lows, new_highs = delta.lows, delta.highs
    np.add.at(failures, rows, delta.failures)
    touched = lengths > 0
    if not touched.all():  # an empty histogram's min and max are not values
        rows, new_lows, new_highs = rows[touched], new_lows[touched], new_highs[touched]
    np.minimum.at(lows, rows, new_lows)
    np.maximum.at(highs, rows, new_highs)


_FOLD_AT = 2**62


class _ExactSums:
    """Exact non-negative integer sums, one per row (Python integers have no bound).

    Adds go into an int64 array while they cannot overflow it: ``_bound`` is
    at least the largest element, a batch goes into the array only when its
    values together stay below ``2**62``, and the array moves into Python
    integers whenever the bound reaches ``2**62``; so no element ever passes
    ``2**63 - 1``.
    """

    __slots__ = ("_bound", "_fast", "_folded")

    def __init__(self) -> None:
        self._fast: NDArray[np.int64] = np.zeros(_MIN_BLOCK_ROWS, dtype=np.int64)
        self._folded: list[int] = []
        self._bound = 0

    def add(self, rows: NDArray[np.intp], values: NDArray[np.uint64], size: int) -> None:
        """Add ``values[i]`` to row ``rows[i]`` (rows may repeat; all below ``size``)."""
        if not values.size:
            return
        if size > self._fast.size:
            grown = np.zeros(max(size, 2 * self._fast.size), dtype=np.int64)
            grown[:self._fast.size] = self._fast
            self._fast = grown
        most = int(values.max()) * values.size
        if most >= _FOLD_AT:  # straight into the Python integers (the array is untouched)
            folded = self._folded
            folded.extend([0] * (size - len(folded)))
            for row, value in zip(rows.tolist(), values.tolist(), strict=True):
                folded[row] += value
            return
        if self._bound + most >= _FOLD_AT:
            self._fold()
        np.add.at(self._fast, rows, values.astype(np.int64))
        self._bound += most

    def _fold(self) -> None:
        """Move the array's sums into the Python integers."""
        folded = self._folded
        fast = self._fast
        used = np.flatnonzero(fast)
        if used.size:
            folded.extend([0] * (int(used[-1]) + 1 - len(folded)))
            for row, value in zip(used.tolist(), fast[used].tolist(), strict=True):
                folded[row] += value
            fast[used] = 0
        self._bound = 0

    def value(self, row: int) -> int:
        """The sum of ``row``."""
        folded = self._folded[row] if row < len(self._folded) else 0
        fast = int(self._fast[row]) if row < self._fast.size else 0
        return folded + fast

    def values(self, rows: int) -> list[int]:
        """The sums of rows ``0 .. rows - 1``."""
        sums: list[int] = self._fast[:rows].tolist()
        sums.extend([0] * (rows - len(sums)))
        for row, value in enumerate(self._folded[:rows]):
            sums[row] += value
        return sums


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

    def add_all(self, rows: list[tuple[_RowKey, int]]) -> None:
        """:meth:`add` each (key, count) of ``rows``."""
        counts = self.counts
        for key, count in rows:
            have = counts.get(key)
            if have is not None:
                counts[key] = have + count
            else:
                self.add(key, count)


SLOTS_PER_WINDOW = 10

_ROW_MEMO_ENTRIES = 50_000
"""Most entries (over all entry lists) whose rows the aggregator remembers; it forgets
them all when one more list would pass this."""


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
        "_row_memo",
        "_row_memo_entries",
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
        # Exact run sums per row: they are not bounded by the wire.
        self._response_bytes = _ExactSums()
        self._total_ns = _ExactSums()
        # The rows of each entry list seen lately: a worker's deltas list the same
        # entries in the same (sorted) order interval after interval.
        self._row_memo: dict[tuple[tuple[str, ...], tuple[str, ...]], NDArray[np.intp]] = {}
        self._row_memo_entries = 0
        # Everything of the deltas whose slot left the window (and of deltas already
        # older than it); the live slots add theirs in snapshot().
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
        another relative error than this aggregator, if ``received_at`` is
        not finite, or if the delta ends beyond any slot of the window.
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
        slot = None
        if span_end > self._latest_end - self._window:  # else: only the run counts it
            slot = self._slot_for(span_start, span_end)

        if packed.names:
            rows = self._rows_of(packed.methods, packed.names)
            self._response_bytes.add(rows, packed.response_bytes, len(self._keys))
            self._total_ns.add(rows, packed.total_ns, len(self._keys))
            if slot is not None:
                slot.add(rows, packed)
            else:
                self._archive.reserve(len(self._keys))
                self._archive.add(rows, np.repeat(rows, packed.buckets.lengths), packed)
        if packed.errors:
            self._errors.add_all([((e.method, e.name, e.kind, e.message), e.count)
                                  for e in packed.errors])
        if packed.exceptions:
            self._exceptions.add_all([((e.task, e.error_type, e.message, e.location), e.count)
                                      for e in packed.exceptions])
        if span_end > self._latest_end:
            self._latest_end = span_end
            self._prune()

    def _rows_of(self, methods: tuple[str, ...], names: tuple[str, ...]) -> NDArray[np.intp]:
        """The row of each entry (memoised per entry list: a row never changes in a run).

        The memo holds only lists whose every entry has its own row, keyed by
        the strings the aggregator keeps anyway (its entry keys), so what a peer
        sends costs it pointers, not copies of its names.
        """
        memo = self._row_memo
        rows = memo.get((methods, names))
        if rows is not None:
            return rows
        rows = np.array([self._row_for(method, name)
                         for method, name in zip(methods, names, strict=True)], dtype=np.intp)
        keys = [self._keys[row] for row in rows.tolist()]
        size = len(keys)
        if size <= _ROW_MEMO_ENTRIES and keys == list(zip(methods, names, strict=True)):
            if self._row_memo_entries + size > _ROW_MEMO_ENTRIES:
                memo.clear()
                self._row_memo_entries = 0
            rows.flags.writeable = False  # shared by every later delta with this list
            memo[tuple(key[0] for key in keys), tuple(key[1] for key in keys)] = rows
            self._row_memo_entries += size
        return rows

    def _slot_for(self, span_start: float, span_end: float) -> _Slot:
        number = math.ceil(span_end / self._slot_width - 1e-9)
        slot = self._recent.get(number)
        if slot is None:
            if len(self._recent) >= self._max_recent:
                self._expire(min(self._recent, key=lambda k: self._recent[k].span_end))
            slot = self._recent[number] = _Slot(span_start, span_end, self._layout.size)
        else:
            slot.span_start = min(slot.span_start, span_start)
            slot.span_end = max(slot.span_end, span_end)
        return slot

    def _prune(self) -> None:
        horizon = self._latest_end - self._window
        for number in [n for n, slot in self._recent.items() if slot.span_end <= horizon]:
            self._expire(number)

    def _expire(self, number: int) -> None:
        """Fold a slot that left the window into the archive (once per slot)."""
        slot = self._recent.pop(number)
        self._archive.reserve(len(self._keys))
        slot.add_to(self._archive)

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
        return self._histogram_of(self._run_block(), row, self._total_ns.value(row))

    def total_histogram(self) -> Histogram:
        """A copy of the run histogram over all requests."""
        return self._histogram_of(_total_row(self._run_block()), 0,
                                  sum(self._total_ns.values(len(self._keys))))

    def _sum(self, slots: list[_Slot], *, archive: bool) -> _Block:
        """Everything of ``slots`` (and of the archive), one row per entry in use."""
        entries = len(self._keys)
        total = _Block(entries, self._layout.size)
        if archive:
            have = min(entries, self._archive.rows)
            total.counts[:have] = self._archive.counts[:have]
            total.failures[:have] = self._archive.failures[:have]
            total.lows[:have] = self._archive.lows[:have]
            total.highs[:have] = self._archive.highs[:have]
        for slot in slots:
            slot.add_to(total)
        return total

    def _run_block(self) -> _Block:
        return self._sum(list(self._recent.values()), archive=True)

    def snapshot(self, now: float) -> StatsSnapshot:
        """The run and the current window as seen at ``now`` (does not change state).

        Cost: the run and the window sum are read as they are (the few live slots
        outside the window asked for, if any, are taken out of a copy), and every
        percentile of every row is read in one pass; the work does not grow with
        the number of deltas.
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
        window = self._sum(selected, archive=False)
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
        response_bytes = self._response_bytes.values(len(self._keys))
        response_bytes.append(sum(response_bytes))
        total_ns = self._total_ns.values(len(self._keys))
        total_ns.append(sum(total_ns))
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
        return row


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
