"""A mergeable, log-bucketed latency histogram with a bounded relative error.

All latency math in phalanx lives in this module.

Layout
------
Values are seconds. With ``e = relative_error`` and ``gamma = (1 + e) / (1 - e)``,
a value ``v`` in ``[MIN_VALUE, MAX_VALUE]`` goes to bucket
``j = floor(log2(v) / log2(gamma))``, which holds ``[gamma**j, gamma**(j + 1))``.
The bucket's representative value is ``2 * gamma**(j + 1) / (gamma + 1)``; every
value of the bucket lies within a relative distance ``e`` of it, so each
percentile is reported within relative error ``e`` of the exact one.

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
from functools import lru_cache
from math import floor, log2
from typing import Final

import msgspec

MIN_VALUE: Final = 1e-6
"""Smallest value (seconds) with a relative-error guarantee; smaller ones share one bucket."""

MAX_VALUE: Final = 100_000.0
"""Largest value (seconds, about 27.8 hours) a histogram holds; larger ones are clamped."""

DEFAULT_RELATIVE_ERROR: Final = 0.01

MIN_RELATIVE_ERROR: Final = 1e-4
"""Smallest accepted relative error; it bounds the bucket range to about 127,000."""

_NS_PER_S: Final = 1e9
# q * n is computed in floating point; shave a relative hair off before ceil so
# that e.g. 0.99 * 100 == 99.00000000000001 still means rank 99.
_RANK_SLACK: Final = 1.0 - 1e-12


class HistogramWire(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """The compact, serializable form of a :class:`Histogram`.

    ``indices`` are the bucket indices in strictly increasing order and
    ``counts`` the matching (positive) counts. ``total_ns`` is the exact sum in
    whole nanoseconds. An empty histogram has ``count == 0``, no buckets and
    ``min == max == 0.0``. Use :func:`check_wire` before trusting one that came
    from outside.
    """

    relative_error: float
    count: int
    total_ns: int
    min: float
    max: float
    indices: tuple[int, ...]
    counts: tuple[int, ...]


def _inverse_log_gamma(relative_error: float) -> float:
    """``1 / log2(gamma)``: bucket indices are computed with ``log2`` (see ``record``)."""
    return 1.0 / log2((1.0 + relative_error) / (1.0 - relative_error))


def _check_relative_error(relative_error: object) -> float:
    if (
        not isinstance(relative_error, float | int)
        or isinstance(relative_error, bool)
        or not MIN_RELATIVE_ERROR <= relative_error < 0.5
    ):
        raise ValueError(
            f"relative_error must be a number in [{MIN_RELATIVE_ERROR}, 0.5),"
            f" got {relative_error!r}"
        )
    return float(relative_error)


def check_wire(wire: HistogramWire) -> None:
    """Raise ``ValueError`` unless ``wire`` is a well-formed histogram.

    Checks: relative error in ``[MIN_RELATIVE_ERROR, 0.5)``; counts non-negative; parallel bucket
    lists of equal length with strictly increasing indices and positive counts
    summing to ``count``; ``0 <= min <= max <= MAX_VALUE``; the first and last
    buckets are those of ``min`` and ``max``; ``total_ns`` lies between
    ``count`` times the truncated ``min`` and ``max``.

    A master runs this for every entry of every worker delta, so the loops
    are C-level builtins (``sorted``, ``set``, ``min``, ``sum``), not Python.
    """
    inv, zero_index = _layout(wire.relative_error)
    count = wire.count
    indices = wire.indices
    counts = wire.counts
    if count < 0 or wire.total_ns < 0:
        raise ValueError("histogram count and total must not be negative")
    if len(indices) != len(counts):
        raise ValueError("histogram bucket lists differ in length")
    if count == 0:
        if indices or wire.total_ns != 0 or wire.min != 0.0 or wire.max != 0.0:
            raise ValueError("an empty histogram must have no buckets and zero min, max, total")
        return
    lo = wire.min
    hi = wire.max
    if not 0.0 <= lo <= hi <= MAX_VALUE:
        raise ValueError("histogram min and max must satisfy 0 <= min <= max <= MAX_VALUE")
    if not indices:
        raise ValueError("a non-empty histogram must have buckets")
    if len(set(indices)) != len(indices) or list(indices) != sorted(indices):
        raise ValueError("histogram bucket indices must be strictly increasing")
    if min(counts) <= 0:
        raise ValueError("histogram bucket counts must be positive")
    if sum(counts) != count:
        raise ValueError("histogram bucket counts do not add up to count")
    if indices[0] != _index(lo, inv, zero_index) or indices[-1] != _index(hi, inv, zero_index):
        raise ValueError("histogram buckets do not match its min and max")
    if not floor(lo * _NS_PER_S) * count <= wire.total_ns <= floor(hi * _NS_PER_S) * count:
        raise ValueError("histogram total is inconsistent with count, min and max")


@lru_cache(maxsize=16)
def _layout(relative_error: float) -> tuple[float, int]:
    """``(1 / log2(gamma), zero bucket index)`` of a relative error, checked (memoised)."""
    inv = _inverse_log_gamma(_check_relative_error(relative_error))
    return inv, floor(log2(MIN_VALUE) * inv) - 1


def _index(value: float, inv_log_gamma: float, zero_index: int) -> int:
    """Bucket index of an already clamped value (the same formula as ``record``)."""
    return floor(log2(value) * inv_log_gamma) if value >= MIN_VALUE else zero_index


def _rank(q: float, n: int) -> int:
    """Nearest rank (1-based) of quantile ``q`` among ``n >= 1`` values."""
    return min(n, max(1, math.ceil(q * n * _RANK_SLACK)))


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
        self._relative_error = _check_relative_error(relative_error)
        self._gamma = (1.0 + self._relative_error) / (1.0 - self._relative_error)
        self._inv_log_gamma = _inverse_log_gamma(self._relative_error)
        self._zero_index = floor(log2(MIN_VALUE) * self._inv_log_gamma) - 1
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
        for index, n in zip(wire.indices, wire.counts, strict=True):
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
        wanted = sorted((_rank(q, n), position) for position, q in enumerate(quantiles))
        buckets = self._buckets
        keys = sorted(buckets)
        zero_index = self._zero_index
        gamma = self._gamma
        scale = 2.0 * gamma / (gamma + 1.0)
        seen = 0
        key_pos = 0
        index = keys[0]
        for rank, position in wanted:
            if rank == 1:
                results[position] = lo
                continue
            if rank == n:
                results[position] = hi
                continue
            while seen < rank:
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
        """The compact form (buckets sorted by index)."""
        keys = sorted(self._buckets)
        buckets = self._buckets
        return HistogramWire(
            relative_error=self._relative_error,
            count=self._count,
            total_ns=self._total_ns,
            min=self.min,
            max=self.max,
            indices=tuple(keys),
            counts=tuple(buckets[k] for k in keys),
        )

    @classmethod
    def from_wire(cls, wire: HistogramWire) -> Histogram:
        """Rebuild a histogram; raises ``ValueError`` if ``wire`` is malformed."""
        histogram = cls(_check_relative_error(wire.relative_error))
        histogram.merge_wire(wire)
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
