"""Bucket counts of many latency histograms at once, as numpy arrays.

A master merges every worker's delta: about a hundred histograms of a few
dozen buckets each, hundreds of times per second. Merging them bucket by
bucket in Python bytecode costs about 100 ns per bucket and saturates a
core near 1,000 workers; this module validates and merges the buckets of a
whole delta with a fixed number of numpy calls instead, and reads the
percentiles of many histograms in one pass.

Columns
-------
A matrix row is one histogram; its columns are the buckets of a
:class:`~phalanx.stats.layout.BucketLayout`: column ``c`` holds bucket
``zero_index + c``. About 1,270 columns (10 KB of int64) at the default
1 % error.

Wire buckets
------------
Bucket indices travel as little-endian int32 and counts as little-endian
uint32 (:data:`INDEX_DTYPE`, :data:`COUNT_DTYPE`), so a whole delta's buckets
become two arrays without one Python object per bucket.
:func:`check_columns` checks every invariant of a histogram (listed on
:func:`~phalanx.stats.histogram.check_wire`) for many histograms at once,
and returns layout columns guaranteed to lie in ``[0, size)``.

Exactness
---------
Counts are int64. One wire histogram holds at most :data:`MAX_WIRE_COUNT`
values, so no sum of one delta can overflow, and a run would need about two
billion such deltas to overflow a total. Percentiles use a table of
representative values computed with the same Python float operations as
:meth:`~phalanx.stats.histogram.Histogram.percentiles`, and the same
nearest-rank rule, so both give identical results for identical buckets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from math import floor
from typing import TYPE_CHECKING, Final, NoReturn

import numpy as np

from phalanx.stats.layout import (
    MAX_VALUE,
    MIN_VALUE,
    NS_PER_S,
    RANK_SLACK,
    BucketLayout,
    layout_for,
    representative_values,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray


INDEX_DTYPE: Final = np.dtype("<i4")
"""Wire dtype of bucket indices."""

COUNT_DTYPE: Final = np.dtype("<u4")
"""Wire dtype of bucket counts."""

MAX_WIRE_COUNT: Final = 2**32 - 1
"""Most values one wire histogram may hold (one delta interval of one worker's entry)."""


@lru_cache(maxsize=4)
def _column_values(relative_error: float) -> NDArray[np.float64]:
    """The representative values of a layout's columns as an array (memoised: a master
    reads percentiles of one layout, its own)."""
    return np.array(representative_values(layout_for(relative_error)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class PackedBuckets:
    """The buckets of a sequence of histograms, concatenated in order.

    ``lengths[i]`` buckets belong to histogram ``i`` (0 for an empty one);
    ``columns`` are layout columns in ``[0, size)``, strictly increasing
    within each histogram; ``counts`` are positive.
    """

    columns: NDArray[np.intp]
    counts: NDArray[np.int64]
    lengths: NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class HistogramColumns:
    """Many histograms, one array per field (histogram ``i`` is element ``i`` of each).

    ``totals_ns`` are uint64; ``indices`` and ``counts`` hold every bucket of
    every histogram in order, ``lengths[i]`` of them for histogram ``i``.
    """

    count: NDArray[np.int64]
    lows: NDArray[np.float64]
    highs: NDArray[np.float64]
    totals_ns: NDArray[np.uint64]
    lengths: NDArray[np.intp]
    indices: NDArray[np.int32]
    counts: NDArray[np.uint32]


def check_columns(columns: HistogramColumns, layout: BucketLayout) -> PackedBuckets:
    """Check every histogram of ``columns`` and return their buckets as layout columns.

    Raises ``ValueError`` naming the first broken invariant (see
    :func:`~phalanx.stats.histogram.check_wire`) and the position of the
    histogram. The caller guarantees the arrays' own shapes: one element per
    histogram, ``sum(lengths)`` buckets, counts below ``2**32``.

    The bucket of ``min`` and ``max`` is computed with numpy's ``log2`` and
    recomputed with ``math.log2`` where they disagree with the first or last
    bucket, so a value exactly on a bucket edge is judged as
    :meth:`~phalanx.stats.histogram.Histogram.record` placed it.
    """
    count = columns.count
    lows = columns.lows
    highs = columns.highs
    lengths = columns.lengths
    full = count > 0
    if not full.all():
        empty = ~full
        bad = empty & ((lengths != 0) | (columns.totals_ns != 0) | (lows != 0.0) | (highs != 0.0))
        if bad.any():
            _fail(_first(bad), "an empty histogram must have no buckets and zero min, max, total")
    in_range = (lows >= 0.0) & (lows <= highs) & (highs <= MAX_VALUE)
    if not in_range.all() and (~in_range & full).any():
        _fail(_first(~in_range & full), "min and max must satisfy 0 <= min <= max <= MAX_VALUE")
    if ((lengths == 0) & full).any():
        _fail(_first((lengths == 0) & full), "a non-empty histogram must have buckets")
    # total_ns in [count * floor(min ns), count * floor(max ns)]: in floats where it is
    # clearly inside, exactly (Python integers) for the rest; count 1 is always on a bound.
    sums = columns.totals_ns.astype(np.float64)
    low_bound = np.floor(lows * NS_PER_S) * count
    high_bound = np.floor(highs * NS_PER_S) * count
    margin = high_bound * 1e-9 + 2.0
    unclear = ((sums - low_bound) <= margin) | ((high_bound - sums) <= margin)
    for position in np.flatnonzero(unclear & full).tolist():
        n = int(count[position])
        total = int(columns.totals_ns[position])
        if not (floor(float(lows[position]) * NS_PER_S) * n <= total
                <= floor(float(highs[position]) * NS_PER_S) * n):
            _fail(position, "total is inconsistent with count, min and max")
    indices = columns.indices.astype(np.intp)
    counts = columns.counts.astype(np.int64)
    if indices.size:
        _check_buckets(layout, lengths, indices, counts, count, lows, highs)
    indices -= layout.zero_index
    # First and last buckets match min and max and the rest increase strictly between
    # them, so every column lies in [0, size); checked again because memory is indexed by it.
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= layout.size):
        raise ValueError("histogram bucket index outside the layout")
    return PackedBuckets(indices, counts, lengths)


def _fail(position: int, message: str) -> NoReturn:
    raise ValueError(f"histogram {position}: {message}")


def _first(mask: NDArray[np.bool_]) -> int:
    """Position of the first true element of a mask known to have one."""
    return int(np.flatnonzero(mask)[0])


def _check_buckets(
    layout: BucketLayout,
    lengths: NDArray[np.intp],
    indices: NDArray[np.intp],
    counts: NDArray[np.int64],
    count: NDArray[np.int64],
    lows: NDArray[np.float64],
    highs: NDArray[np.float64],
) -> None:
    """The buckets: positive counts adding up, strictly increasing, first and last of min/max."""
    positions = np.flatnonzero(lengths)
    all_full = positions.size == lengths.size
    sizes = lengths if all_full else lengths[positions]
    ends = np.cumsum(sizes)
    starts = ends - sizes

    def owner(bucket: int) -> int:
        """Position of the histogram that holds bucket number ``bucket``."""
        return int(positions[np.searchsorted(ends, bucket, "right")])

    if int(counts.min()) <= 0:
        _fail(owner(_first(counts <= 0)), "bucket counts must be positive")
    expected = count if all_full else count[positions]
    added = np.add.reduceat(counts, starts)
    if not np.array_equal(added, expected):
        _fail(int(positions[_first(added != expected)]), "bucket counts do not add up to count")
    steps = np.diff(indices)
    steps[ends[:-1] - 1] = 1  # a histogram's first bucket may be below the previous one's last
    if steps.size and int(steps.min()) <= 0:
        _fail(owner(_first(steps <= 0)), "bucket indices must be strictly increasing")
    if not all_full:
        lows, highs = lows[positions], highs[positions]
    values = np.concatenate((lows, highs))
    edges = np.concatenate((indices[starts], indices[ends - 1]))
    scaled = np.log2(np.maximum(values, MIN_VALUE)) * layout.inv_log_gamma
    guess = np.floor(scaled)
    guess[values < MIN_VALUE] = layout.zero_index
    # numpy's log2 may differ from math.log2 in the last bit: where the two could disagree
    # (a mismatch, or a value within rounding of a bucket edge) decide as record() does.
    near_edge = np.abs(scaled - np.rint(scaled)) <= 1e-9 * np.maximum(1.0, np.abs(scaled))
    for k in np.flatnonzero((guess != edges) | near_edge).tolist():
        if layout.index_of(float(values[k])) != int(edges[k]):
            _fail(int(positions[k % positions.size]), "buckets do not match its min and max")


def percentiles(
    matrix: NDArray[np.int64],
    lows: NDArray[np.float64],
    highs: NDArray[np.float64],
    quantiles: Sequence[float],
    layout: BucketLayout,
) -> list[list[float]]:
    """The ``quantiles`` of every row of ``matrix`` (rows x ``layout.size`` counts).

    ``lows`` and ``highs`` are each row's exact min and max. The result has
    one list per row, one float per quantile, exactly what
    :meth:`~phalanx.stats.histogram.Histogram.percentiles` returns for a
    histogram with those buckets, min and max (all zeros for an empty row).
    Quantiles must lie in ``[0, 1]`` (not re-checked).

    Cost: one pass over the rows that hold values, restricted to the columns
    any of them uses, plus a binary search per row and quantile: the rows'
    cumulative counts are laid end to end (each row shifted by the totals of
    the rows before it), which makes one non-decreasing array.
    """
    rows = matrix.shape[0]
    result: list[list[float]] = [[0.0] * len(quantiles) for _ in range(rows)]
    totals = matrix.sum(axis=1)
    full = np.flatnonzero(totals)
    if not full.size or not quantiles:
        return result
    used = np.flatnonzero(matrix[full].any(axis=0))
    counts = matrix[np.ix_(full, used)]
    width = used.size
    n = totals[full]
    low = lows[full]
    high = highs[full]
    shift = np.cumsum(n) - n  # totals of the rows before each row
    ends = (np.cumsum(counts, axis=1) + shift[:, None]).ravel()
    values = _column_values(layout.relative_error)[used]
    base = np.arange(full.size) * width
    as_float = n.astype(np.float64)
    picked = []
    for q in quantiles:
        # The same float operations as Histogram._rank: ceil(q * n * slack), clamped to [1, n].
        rank = np.minimum(n, np.maximum(1, np.ceil(q * as_float * RANK_SLACK).astype(np.int64)))
        position = np.searchsorted(ends, rank + shift, side="left") - base
        value = np.where(used[position] == 0, low, values[position])
        value = np.minimum(high, np.maximum(low, value))
        # Histogram.percentiles tests rank 1 before rank n.
        value = np.where(rank == n, high, value)
        value = np.where(rank == 1, low, value)
        picked.append(value)
    for row, row_values in zip(full.tolist(), np.stack(picked, axis=1).tolist(), strict=True):
        result[row] = row_values
    return result
