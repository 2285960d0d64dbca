"""Histogram: accuracy bound, exact aggregates, merge algebra, wire form.

"Exact percentile" in these tests is the nearest-rank one: the ``q``
percentile of ``n`` values is the value of rank ``ceil(q * n)`` (1-based, at
least 1) in sorted order, with ``q`` read as the decimal it is written as.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from fractions import Fraction

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phalanx.stats import PERCENTILES
from phalanx.stats.dense import MAX_WIRE_COUNT
from phalanx.stats.histogram import (
    MAX_VALUE,
    MIN_VALUE,
    Histogram,
    HistogramWire,
    check_wire,
)
from phalanx.stats.layout import layout_for

QUANTILES = (0.0, 0.001, 0.01, 0.1, 0.25, 0.333, 0.5, 0.75, *PERCENTILES)
# Float rounding in log/pow may push a value a hair across its bucket edge.
SLACK = 1 + 1e-9


def exact_percentile(ordered: Sequence[float], q: float) -> float:
    rank = max(1, math.ceil(Fraction(str(q)) * len(ordered)))
    return ordered[rank - 1]


def assert_within_bound(histogram: Histogram, values: Sequence[float], qs: Sequence[float]) -> None:
    ordered = sorted(values)
    e = histogram.relative_error
    for q, got in zip(qs, histogram.percentiles(qs), strict=True):
        want = exact_percentile(ordered, q)
        if want >= MIN_VALUE:
            assert abs(got - want) <= e * want * SLACK, (q, got, want)
        else:
            assert abs(got - want) < MIN_VALUE, (q, got, want)
        assert ordered[0] <= got <= ordered[-1]


def _uniform(rng: random.Random) -> float:
    return rng.uniform(0.001, 2.0)


def _lognormal(rng: random.Random) -> float:
    return rng.lognormvariate(-3.0, 1.5)


def _bimodal(rng: random.Random) -> float:
    return rng.gauss(0.005, 0.0005) if rng.random() < 0.9 else rng.gauss(1.5, 0.2)


def _constant(rng: random.Random) -> float:
    return 0.1234


def _tiny(rng: random.Random) -> float:
    return rng.uniform(MIN_VALUE, 1e-4)


def _huge(rng: random.Random) -> float:
    return rng.uniform(1_000.0, MAX_VALUE)


def _sub_microsecond(rng: random.Random) -> float:
    return rng.uniform(0.0, 3 * MIN_VALUE)


DISTRIBUTIONS: dict[str, Callable[[random.Random], float]] = {
    "uniform": _uniform,
    "lognormal": _lognormal,
    "bimodal": _bimodal,
    "constant": _constant,
    "tiny": _tiny,
    "huge": _huge,
    "sub_microsecond": _sub_microsecond,
}


@pytest.mark.parametrize("relative_error", [0.01, 0.002, 0.05])
@pytest.mark.parametrize("distribution", sorted(DISTRIBUTIONS))
def test_every_quantile_is_within_the_relative_error_of_the_exact_percentile(
    distribution: str, relative_error: float
) -> None:
    rng = random.Random(f"{distribution}-{relative_error}")
    values = [max(0.0, DISTRIBUTIONS[distribution](rng)) for _ in range(20_000)]
    histogram = Histogram(relative_error)
    histogram.record_many(values)
    assert_within_bound(histogram, values, QUANTILES)


@pytest.mark.parametrize("distribution", sorted(DISTRIBUTIONS))
def test_count_total_min_max_are_exact(distribution: str) -> None:
    rng = random.Random(distribution)
    values = [max(0.0, DISTRIBUTIONS[distribution](rng)) for _ in range(5_000)]
    histogram = Histogram()
    histogram.record_many(values)
    assert histogram.count == len(values)
    assert histogram.min == min(values)
    assert histogram.max == max(values)
    assert histogram.total_ns == sum(math.floor(v * 1e9) for v in values)
    assert histogram.total == pytest.approx(math.fsum(values), rel=1e-9, abs=len(values) * 1e-9)
    assert histogram.mean == pytest.approx(histogram.total / len(values))


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(min_value=MIN_VALUE, max_value=MAX_VALUE), min_size=1, max_size=200),
    q=st.sampled_from([i / 1000 for i in range(1001)]),
    relative_error=st.sampled_from([0.001, 0.01, 0.1, 0.3]),
)
def test_any_quantile_of_any_data_is_within_the_bound(
    values: list[float], q: float, relative_error: float
) -> None:
    histogram = Histogram(relative_error)
    histogram.record_many(values)
    assert_within_bound(histogram, values, [q])
    assert histogram.percentile(q) == histogram.percentiles([q])[0]


def test_empty_histogram_reports_zeros() -> None:
    histogram = Histogram()
    assert histogram.count == 0
    assert (histogram.min, histogram.max, histogram.mean, histogram.total) == (0.0, 0.0, 0.0, 0.0)
    assert histogram.percentile(0.5) == 0.0
    assert histogram.percentiles(PERCENTILES) == (0.0,) * len(PERCENTILES)


def test_quantile_zero_is_min_and_one_is_max() -> None:
    histogram = Histogram()
    histogram.record_many([0.0123, 0.5, 0.77777, 3.14159])
    assert histogram.percentile(0.0) == 0.0123
    assert histogram.percentile(1.0) == 3.14159


def test_percentiles_accept_quantiles_in_any_order() -> None:
    histogram = Histogram()
    histogram.record_many(i / 1000 for i in range(1, 1001))
    qs = (0.99, 0.1, 1.0, 0.5, 0.0, 0.5)
    assert histogram.percentiles(qs) == tuple(histogram.percentile(q) for q in qs)


@pytest.mark.parametrize("q", [-0.01, 1.01, math.nan, math.inf])
def test_quantile_outside_zero_one_is_rejected(q: float) -> None:
    histogram = Histogram()
    histogram.record(0.1)
    with pytest.raises(ValueError, match="quantile"):
        histogram.percentile(q)


@pytest.mark.parametrize(
    ("value", "recorded"),
    [(-1.0, 0.0), (-math.inf, 0.0), (math.nan, 0.0), (math.inf, MAX_VALUE), (1e9, MAX_VALUE)],
)
def test_out_of_range_values_are_clamped_not_rejected(value: float, recorded: float) -> None:
    histogram = Histogram()
    histogram.record(value)
    assert histogram.count == 1
    assert histogram.min == histogram.max == recorded
    assert histogram.percentile(0.5) == recorded
    check_wire(histogram.to_wire())


def test_bucket_count_stays_bounded_over_the_whole_range() -> None:
    histogram = Histogram(0.01)
    value = 1e-9
    while value < 1e7:
        histogram.record(value)
        value *= 1.001
    limit = math.log(MAX_VALUE / MIN_VALUE) / math.log(1.01 / 0.99) + 3
    assert len(histogram.to_wire().buckets()) <= limit
    assert len(histogram.to_wire().buckets()) == layout_for(0.01).size  # every bucket, once


@pytest.mark.parametrize("relative_error", [0.0, 1e-300, 1e-5, -0.1, 0.5, 0.7, math.nan])
def test_relative_error_outside_open_zero_half_is_rejected(relative_error: float) -> None:
    with pytest.raises(ValueError, match="relative_error"):
        Histogram(relative_error)


value_lists = st.lists(
    st.floats(allow_nan=True, allow_infinity=True, min_value=None, max_value=None), max_size=50
)


def _filled(values: list[float], relative_error: float = 0.01) -> Histogram:
    histogram = Histogram(relative_error)
    histogram.record_many(values)
    return histogram


@settings(max_examples=150, deadline=None)
@given(a=value_lists, b=value_lists, c=value_lists)
def test_merge_is_associative_commutative_and_equals_recording_everything(
    a: list[float], b: list[float], c: list[float]
) -> None:
    left = _filled(a)
    left.merge(_filled(b))
    left.merge(_filled(c))

    right_inner = _filled(b)
    right_inner.merge(_filled(c))
    right = _filled(a)
    right.merge(right_inner)

    swapped = _filled(c)
    swapped.merge(_filled(a))
    swapped.merge(_filled(b))

    assert left == right == swapped == _filled(a + b + c)
    assert left.percentiles(PERCENTILES) == _filled(a + b + c).percentiles(PERCENTILES)


def test_merge_leaves_the_other_histogram_unchanged() -> None:
    a = _filled([0.1, 0.2])
    b = _filled([0.3])
    before = b.copy()
    a.merge(b)
    assert b == before
    assert a.count == 3


def test_merge_with_a_different_relative_error_raises() -> None:
    a = _filled([0.1], 0.01)
    b = _filled([0.1], 0.02)
    with pytest.raises(ValueError, match="relative error"):
        a.merge(b)
    with pytest.raises(ValueError, match="relative error"):
        a.merge_wire(b.to_wire())
    assert a == _filled([0.1], 0.01)


def test_copy_is_independent() -> None:
    a = _filled([0.1, 0.2])
    b = a.copy()
    b.record(5.0)
    assert a == _filled([0.1, 0.2])
    assert b != a


@settings(max_examples=150, deadline=None)
@given(values=value_lists, relative_error=st.sampled_from([0.001, 0.01, 0.2]))
def test_wire_round_trip_through_msgpack_gives_an_equal_histogram(
    values: list[float], relative_error: float
) -> None:
    histogram = _filled(values, relative_error)
    wire = histogram.to_wire()
    check_wire(wire)
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(wire), type=HistogramWire)
    assert decoded == wire
    assert Histogram.from_wire(decoded) == histogram


def test_wire_form_is_a_compact_array() -> None:
    wire = _filled([0.01] * 100 + [0.2] * 50).to_wire()
    assert isinstance(msgspec.msgpack.decode(msgspec.msgpack.encode(wire)), list)
    assert len(msgspec.msgpack.encode(wire)) < 64


def _indices(*values: int) -> bytes:
    return np.array(values, dtype="<i4").tobytes()


def _counts(*values: int) -> bytes:
    return np.array(values, dtype="<u4").tobytes()


def _valid_wire() -> HistogramWire:
    return _filled([0.01, 0.02, 0.5]).to_wire()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"relative_error": 0.6}, "relative_error"),
        ({"relative_error": 0.0}, "relative_error"),
        ({"relative_error": 1e-300}, "relative_error"),
        ({"count": -1}, r"count must be in"),
        ({"count": MAX_WIRE_COUNT + 1}, r"count must be in"),
        ({"total_ns": -1}, "total"),
        ({"counts": _counts(1, 1)}, "length"),
        ({"counts": b"\x01\x00\x00\x00" * 2 + b"\x01"}, "length"),
        ({"counts": _counts(1, 1, 2), "count": 4, "total_ns": 10}, "total"),
        ({"count": 4}, "add up"),
        ({"counts": _counts(2, 0, 1)}, "positive"),
        ({"indices": _indices(5, 3, 9)}, "increasing"),
        ({"min": 0.03}, "min and max"),
        ({"min": math.nan}, "min and max"),
        ({"max": MAX_VALUE * 2}, "min and max"),
        ({"min": 0.6, "max": 0.5}, "min and max"),
        ({"total_ns": 1}, "total"),
        ({"indices": b"", "counts": b""}, "buckets"),
    ],
)
def test_malformed_wire_is_rejected(changes: dict[str, object], message: str) -> None:
    wire = msgspec.structs.replace(_valid_wire(), **changes)
    with pytest.raises(ValueError, match=message):
        check_wire(wire)
    with pytest.raises(ValueError, match=message):
        Histogram.from_wire(wire)


def test_empty_wire_must_be_all_zero() -> None:
    empty = Histogram().to_wire()
    check_wire(empty)
    with pytest.raises(ValueError, match="empty"):
        check_wire(msgspec.structs.replace(empty, max=1.0))
