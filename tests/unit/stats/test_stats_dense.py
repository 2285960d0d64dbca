"""Dense bucket arrays: the checks and percentiles of the sparse Histogram, many at once."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phalanx.stats import PERCENTILES, Histogram, HistogramWire
from phalanx.stats.delta import DeltaWire, decode_delta
from phalanx.stats.dense import MAX_WIRE_COUNT, PackedBuckets, percentiles
from phalanx.stats.histogram import MAX_VALUE, MIN_VALUE, check_wire
from phalanx.stats.layout import layout_for

LAYOUT = layout_for(0.01)
QUANTILES = (0.0, 0.001, 0.1, 0.5, 0.999, *PERCENTILES)

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0.0, max_value=2 * MIN_VALUE),
    st.floats(min_value=1e-4, max_value=10.0),
    # exactly on, or one step either side of, a bucket edge
    st.builds(
        lambda k, step: np.nextafter(LAYOUT.gamma**k, step * math.inf).item() if step else
        LAYOUT.gamma**k,
        st.integers(min_value=LAYOUT.zero_index, max_value=LAYOUT.zero_index + LAYOUT.size),
        st.sampled_from([-1, 0, 1]),
    ),
)
histograms = st.lists(st.lists(values, max_size=40), max_size=12)


def _delta_bytes(wires: list[HistogramWire]) -> bytes:
    """A columnar delta holding ``wires`` as its entries, packed as they are (no checks).

    Raises OverflowError when a field of a wire does not fit its column.
    """
    def column(values: list[object], dtype: str) -> bytes:
        return np.array(values, dtype=dtype).tobytes()

    wire = DeltaWire(
        start=0.0, end=1.0, relative_error=0.01,
        methods=("GET",) * len(wires), names=tuple(f"/{i}" for i in range(len(wires))),
        requests=column([w.count for w in wires], "<u4"),
        failures=column([0] * len(wires), "<u4"),
        response_bytes=column([0] * len(wires), "<u8"),
        total_ns=column([w.total_ns for w in wires], "<u8"),
        lows=column([w.min for w in wires], "<f8"),
        highs=column([w.max for w in wires], "<f8"),
        bucket_lengths=column([len(w.indices) // 4 for w in wires], "<u4"),
        bucket_indices=b"".join(w.indices for w in wires),
        bucket_counts=b"".join(w.counts for w in wires),
        errors=(), exceptions=(),
    )
    return msgspec.msgpack.encode(wire)


def unpack(wires: list[HistogramWire]) -> PackedBuckets:
    """The buckets of ``wires`` as a master reads them from a delta (checked)."""
    return decode_delta(_delta_bytes(wires)).buckets


def _filled(recorded: list[float]) -> Histogram:
    histogram = Histogram(0.01)
    histogram.record_many(recorded)
    return histogram


def _matrix(rows: list[Histogram]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    matrix = np.zeros((len(rows), LAYOUT.size), dtype=np.int64)
    for row, histogram in enumerate(rows):
        for index, count in histogram.to_wire().buckets().items():
            matrix[row, index - LAYOUT.zero_index] = count
    lows = np.array([h.min if h.count else math.inf for h in rows])
    highs = np.array([h.max if h.count else -math.inf for h in rows])
    return matrix, lows, highs


@settings(max_examples=200, deadline=None)
@given(rows=histograms)
def test_matrix_percentiles_are_the_histogram_percentiles_bit_for_bit(
    rows: list[list[float]],
) -> None:
    filled = [_filled(recorded) for recorded in rows]
    matrix, lows, highs = _matrix(filled)
    got = percentiles(matrix, lows, highs, QUANTILES, LAYOUT)
    assert got == [list(h.percentiles(QUANTILES)) for h in filled]


@settings(max_examples=200, deadline=None)
@given(rows=histograms)
def test_every_recorded_histogram_passes_the_batch_check(rows: list[list[float]]) -> None:
    filled = [_filled(recorded) for recorded in rows]
    wires = [h.to_wire() for h in filled]
    packed = unpack(wires)
    assert packed.lengths.tolist() == [len(w.buckets()) for w in wires]
    assert packed.columns.min(initial=0) >= 0
    assert packed.columns.max(initial=0) < LAYOUT.size
    rebuilt: list[dict[int, int]] = []
    offset = 0
    for length in packed.lengths.tolist():
        columns = packed.columns[offset:offset + length].tolist()
        counts = packed.counts[offset:offset + length].tolist()
        rebuilt.append({c + LAYOUT.zero_index: n for c, n in zip(columns, counts, strict=True)})
        offset += length
    assert rebuilt == [w.buckets() for w in wires]


def _pack(dtype: str, *numbers: int) -> bytes:
    return np.array(numbers, dtype=dtype).tobytes()


_BROKEN = [
    ("count", lambda w: {"count": w.count + 1}, "add up|total"),
    ("negative count", lambda w: {"count": -1}, "count must be in"),
    ("huge count", lambda w: {"count": MAX_WIRE_COUNT + 1}, "count must be in"),
    ("negative total", lambda w: {"total_ns": -1}, "total"),
    ("huge total", lambda w: {"total_ns": 2**64 - 1}, "total"),
    ("nan min", lambda w: {"min": math.nan}, "min and max"),
    ("min above max", lambda w: {"min": w.max * 2 + 1}, "min and max"),
    ("max too big", lambda w: {"max": MAX_VALUE * 2}, "min and max"),
    ("short counts", lambda w: {"counts": w.counts[:-4]}, "length"),
    ("ragged counts", lambda w: {"counts": w.counts + b"\x01"}, "length"),
    ("zero count", lambda w: {"counts": b"\x00\x00\x00\x00" + w.counts[4:]}, "positive|add up"),
    ("no buckets", lambda w: {"indices": b"", "counts": b""}, "buckets"),
    ("empty with buckets", lambda w: {"count": 0, "total_ns": 0, "min": 0.0, "max": 0.0},
     "empty"),
    ("repeated bucket", lambda w: {
        "indices": w.indices[:4] + w.indices[:4],
        "counts": _pack("<u4", 1, w.count - 1) if w.count > 1 else w.counts + w.counts,
    }, "increasing|add up|length|min and max"),
    ("out of range bucket", lambda w: {"indices": _pack("<i4", 2**31 - 1) + w.indices[4:]},
     "increasing|min and max"),
    ("bucket far below", lambda w: {"indices": _pack("<i4", -(2**31)) + w.indices[4:]},
     "min and max"),
]


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.lists(st.floats(min_value=1e-4, max_value=10.0), min_size=1, max_size=20),
                  min_size=1, max_size=8),
    which=st.integers(min_value=0),
    broken=st.sampled_from(_BROKEN),
)
def test_a_broken_histogram_anywhere_in_a_batch_is_found_and_named(
    rows: list[list[float]], which: int, broken: tuple[str, object, str]
) -> None:
    _, change, message = broken
    wires = [_filled(recorded).to_wire() for recorded in rows]
    position = which % len(wires)
    bad = msgspec.structs.replace(wires[position], **change(wires[position]))  # type: ignore[operator]
    wires[position] = bad
    with pytest.raises(ValueError, match=message):
        check_wire(bad)
    try:
        data = _delta_bytes(wires)
    except OverflowError:
        return  # a value the wire's columns cannot even carry
    with pytest.raises(ValueError, match=f"{message}|column") as caught:
        decode_delta(data)
    assert f"histogram {position}: " in str(caught.value) or "column" in str(caught.value)


def test_a_batch_with_empty_histograms_keeps_their_places() -> None:
    wires = [Histogram().to_wire(), _filled([0.1, 0.2]).to_wire(), Histogram().to_wire(),
             _filled([3.0]).to_wire()]
    packed = unpack(wires)
    assert packed.lengths.tolist() == [0, 2, 0, 1]
    assert packed.counts.tolist() == [1, 1, 1]


def test_empty_batch_and_empty_rows() -> None:
    packed = unpack([])
    assert (packed.columns.size, packed.counts.size, packed.lengths.size) == (0, 0, 0)
    assert percentiles(np.zeros((0, LAYOUT.size), np.int64), np.zeros(0), np.zeros(0),
                       PERCENTILES, LAYOUT) == []
    empty = np.zeros((2, LAYOUT.size), np.int64)
    assert percentiles(empty, np.full(2, math.inf), np.full(2, -math.inf), (0.5, 1.0),
                       LAYOUT) == [[0.0, 0.0], [0.0, 0.0]]


def test_to_wire_refuses_a_histogram_too_large_for_the_wire() -> None:
    histogram = _filled([0.1])
    histogram._count = MAX_WIRE_COUNT + 1  # what 4.3 billion recorded values would give
    with pytest.raises(ValueError, match="at most"):
        histogram.to_wire()


def test_wire_buckets_are_packed_little_endian() -> None:
    wire = _filled([0.01, 0.01, 0.5]).to_wire()
    assert isinstance(wire, HistogramWire)
    first, last = LAYOUT.index_of(0.01), LAYOUT.index_of(0.5)
    assert wire.indices == first.to_bytes(4, "little", signed=True) + last.to_bytes(
        4, "little", signed=True)
    assert wire.counts == (2).to_bytes(4, "little") + (1).to_bytes(4, "little")
