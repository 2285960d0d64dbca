"""A mergeable, log-bucketed latency histogram with a bounded relative error.

One histogram, recorded into on the hot path; :mod:`phalanx.stats.layout` holds
the bucket math it shares with :mod:`phalanx.stats.dense` (many histograms as
arrays, for the master's merge).

Layout
------
Buckets follow :mod:`phalanx.stats.layout`: log buckets of relative width
``e = relative_error``, so each percentile is reported within relative error
``e`` of the exact one. :mod:`phalanx.stats.dense` reads the same buckets as
arrays (the master's merge) and gives the same percentiles.

Invariants
----------
- Negative values and NaN are recorded as ``0.0``; values above ``MAX_VALUE``
  (and +inf) are recorded as ``MAX_VALUE``. ``count``, ``min``, ``max`` and the
  sum are exact over these recorded values.
- Values below ``MIN_VALUE`` (one microsecond) share one "zero" bucket whose
  representative is the exact ``min``: their percentiles have an absolute error
  below ``MIN_VALUE`` instead of a relative one.
- The sum is kept as an integer number of nanoseconds, each value truncated to
  a whole nanosecond before it is added. Integer addition makes ``merge``
  exactly associative and commutative: merging any split of the same values
  gives a histogram equal (``==``) to recording them all in one.
- Memory is bounded: at most ``log(MAX_VALUE / MIN_VALUE) / log(gamma) + 2``
  buckets (about 1,270 at the default ``e = 0.01``), stored sparsely.
- Percentiles follow the nearest-rank definition: the ``q`` percentile of
  ``n`` values is the value of rank ``ceil(q * n)`` (1-based, at least 1) in
  sorted order; ``q = 0`` gives ``min`` and ``q = 1`` gives ``max``. Ranks 1 and
  ``n`` return the exact ``min`` and ``max``; every result lies in ``[min, max]``.

``record`` is the hot path: it uses only local names, two ``floor`` calls, one
``log2`` call (CPython's ``math.log2`` costs about a third of ``math.log``,
which also accepts a base) and a sparse ``dict``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from math import floor, log2

import numpy as np

from phalanx.stats.dense import COUNT_DTYPE, INDEX_DTYPE, MAX_WIRE_COUNT
from phalanx.stats.histogram_wire import HistogramWire, check_wire
from phalanx.stats.layout import (
    DEFAULT_RELATIVE_ERROR,
    MAX_VALUE,
    MIN_RELATIVE_ERROR,
    MIN_VALUE,
    NS_PER_S,
    check_relative_error,
    layout_for,
    rank,
)

__all__ = [
    "DEFAULT_RELATIVE_ERROR",
    "MAX_VALUE",
    "MIN_RELATIVE_ERROR",
    "MIN_VALUE",
    "Histogram",
    "HistogramWire",
    "check_wire",
]

_NS_PER_S = NS_PER_S


class Histogram:
    """Latency distribution with exact count, sum, min and max.

    Not thread-safe; one owner records into it. See the module docstring for
    the bucket layout, the error bound and the clamping rules.
    """

    __slots__ = (
        "_buckets",
        "_count",
        "_gamma",
        "_inv_log_gamma",
        "_max",
        "_min",
        "_relative_error",
        "_total_ns",
        "_zero_index",
    )

    def __init__(self, relative_error: float = DEFAULT_RELATIVE_ERROR) -> None:
        layout = layout_for(check_relative_error(relative_error))
        self._relative_error = layout.relative_error
        self._gamma = layout.gamma
        self._inv_log_gamma = layout.inv_log_gamma
        self._zero_index = layout.zero_index
        self._buckets: dict[int, int] = {}
        self._count = 0
        self._total_ns = 0
        self._min = math.inf
        self._max = -math.inf

    # -- recording ---------------------------------------------------------

    def record(self, value: float) -> None:
        """Add one value (seconds); clamped as the module docstring says. Never raises."""
        if not 0.0 <= value <= MAX_VALUE:
            value = MAX_VALUE if value > 0.0 else 0.0
        index = floor(log2(value) * self._inv_log_gamma) if value >= MIN_VALUE else self._zero_index
        buckets = self._buckets
        buckets[index] = buckets.get(index, 0) + 1
        self._count += 1
        self._total_ns += floor(value * 1e9)
        if value < self._min:
            self._min = value
        if value > self._max:
            self._max = value

    def record_many(self, values: Iterable[float]) -> None:
        """Record every value of ``values``, in order."""
        record = self.record
        for value in values:
            record(value)

    def merge(self, other: Histogram) -> None:
        """Add every value of ``other`` to this histogram (``other`` is unchanged).

        Raises ``ValueError`` when the relative errors differ.
        """
        if other._relative_error != self._relative_error:
            raise ValueError(
                f"cannot merge histograms with relative errors {self._relative_error}"
                f" and {other._relative_error}"
            )
        if other._count == 0:
            return
        buckets = self._buckets
        for index, n in other._buckets.items():
            buckets[index] = buckets.get(index, 0) + n
        self._count += other._count
        self._total_ns += other._total_ns
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def merge_checked_wire(self, wire: HistogramWire) -> None:
        """Merge a wire histogram that already passed :func:`check_wire` with this
        histogram's relative error (the caller guarantees both; nothing is re-checked)."""
        if wire.count == 0:
            return
        buckets = self._buckets
        get = buckets.get
        for index, n in wire.buckets().items():
            buckets[index] = get(index, 0) + n
        self._count += wire.count
        self._total_ns += wire.total_ns
        if wire.min < self._min:
            self._min = wire.min
        if wire.max > self._max:
            self._max = wire.max

    def merge_wire(self, wire: HistogramWire) -> None:
        """Merge a wire histogram without building an intermediate object.

        Raises ``ValueError`` if ``wire`` is malformed (see :func:`check_wire`)
        or its relative error differs; on error nothing is merged.
        """
        check_wire(wire)
        if wire.relative_error != self._relative_error:
            raise ValueError(
                f"cannot merge histograms with relative errors {self._relative_error}"
                f" and {wire.relative_error}"
            )
        self.merge_checked_wire(wire)

    # -- reading -----------------------------------------------------------

    @property
    def relative_error(self) -> float:
        return self._relative_error

    @property
    def count(self) -> int:
        return self._count

    @property
    def total_ns(self) -> int:
        """Exact sum of the recorded values, each truncated to whole nanoseconds."""
        return self._total_ns

    @property
    def total(self) -> float:
        """Sum of the recorded values in seconds (``total_ns / 1e9``)."""
        return self._total_ns / _NS_PER_S

    @property
    def min(self) -> float:
        """Smallest recorded value; 0.0 when empty."""
        return self._min if self._count else 0.0

    @property
    def max(self) -> float:
        """Largest recorded value; 0.0 when empty."""
        return self._max if self._count else 0.0

    @property
    def mean(self) -> float:
        """``total / count``; 0.0 when empty."""
        return self._total_ns / _NS_PER_S / self._count if self._count else 0.0

    def percentile(self, q: float) -> float:
        """The ``q`` quantile (``0 <= q <= 1``) in seconds; 0.0 when empty."""
        return self.percentiles((q,))[0]

    def percentiles(self, qs: Iterable[float]) -> tuple[float, ...]:
        """The quantiles ``qs`` (any order) in one pass over the buckets.

        Raises ``ValueError`` if a quantile is outside ``[0, 1]``.
        """
        quantiles = tuple(qs)
        for q in quantiles:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"quantile must be in [0, 1], got {q!r}")
        n = self._count
        if n == 0:
            return (0.0,) * len(quantiles)
        lo = self._min
        hi = self._max
        results = [0.0] * len(quantiles)
        wanted = sorted((rank(q, n), position) for position, q in enumerate(quantiles))
        buckets = self._buckets
        keys = sorted(buckets)
        zero_index = self._zero_index
        gamma = self._gamma
        scale = 2.0 * gamma / (gamma + 1.0)
        seen = 0
        key_pos = 0
        index = keys[0]
        for wanted_rank, position in wanted:
            if wanted_rank == 1:
                results[position] = lo
                continue
            if wanted_rank == n:
                results[position] = hi
                continue
            while seen < wanted_rank:
                index = keys[key_pos]
                seen += buckets[index]
                key_pos += 1
            value = lo if index == zero_index else gamma**index * scale
            results[position] = min(hi, max(lo, value))
        return tuple(results)

    # -- copying and the wire ----------------------------------------------

    def copy(self) -> Histogram:
        """An independent histogram equal to this one."""
        clone = Histogram(self._relative_error)
        clone._buckets = dict(self._buckets)
        clone._count = self._count
        clone._total_ns = self._total_ns
        clone._min = self._min
        clone._max = self._max
        return clone

    def to_wire(self) -> HistogramWire:
        """The compact form (buckets sorted by index).

        Raises ``ValueError`` when the histogram holds more than
        :data:`~phalanx.stats.dense.MAX_WIRE_COUNT` values or sums to 2**64 ns
        or more (a worker ships a delta every few seconds, far below both).
        """
        if self._count > MAX_WIRE_COUNT:
            raise ValueError(
                f"a wire histogram holds at most {MAX_WIRE_COUNT} values, this one {self._count}"
            )
        if self._total_ns >= 2**64:
            raise ValueError("a wire histogram's sum must be below 2**64 ns (584 years)")
        keys = sorted(self._buckets)
        buckets = self._buckets
        return HistogramWire(
            relative_error=self._relative_error,
            count=self._count,
            total_ns=self._total_ns,
            min=self.min,
            max=self.max,
            indices=np.array(keys, dtype=INDEX_DTYPE).tobytes(),
            counts=np.array([buckets[k] for k in keys], dtype=COUNT_DTYPE).tobytes(),
        )

    @classmethod
    def from_wire(cls, wire: HistogramWire) -> Histogram:
        """Rebuild a histogram; raises ``ValueError`` if ``wire`` is malformed."""
        histogram = cls(check_relative_error(wire.relative_error))
        histogram.merge_wire(wire)
        return histogram

    @classmethod
    def from_buckets(
        cls,
        relative_error: float,
        buckets: dict[int, int],
        *,
        total_ns: int,
        low: float,
        high: float,
    ) -> Histogram:
        """A histogram with these buckets (``{index: positive count}``), exact sum, min and max.

        For code that kept the parts of histograms it built itself (the
        aggregator's arrays); nothing is re-checked.
        """
        histogram = cls(relative_error)
        histogram._buckets = dict(buckets)
        histogram._count = sum(buckets.values())
        if histogram._count:
            histogram._total_ns = total_ns
            histogram._min = low
            histogram._max = high
        return histogram

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return (
            self._relative_error == other._relative_error
            and self._count == other._count
            and self._total_ns == other._total_ns
            and self.min == other.min
            and self.max == other.max
            and self._buckets == other._buckets
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"Histogram(relative_error={self._relative_error}, count={self._count},"
            f" min={self.min}, max={self.max}, buckets={len(self._buckets)})"
        )
