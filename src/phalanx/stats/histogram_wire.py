"""The serialized form of one histogram: :class:`HistogramWire` and its check.

Kept apart from :mod:`phalanx.stats.histogram` on purpose: that module is
compiled by mypyc in compiled builds (see :mod:`phalanx.core.build`), and a
msgspec ``Struct`` defined in a compiled module loses its class options
(``array_like`` among them), which would change the wire form. Structs live
only in modules that are never compiled; ``tests/unit/test_build.py`` pins it.
"""

from __future__ import annotations

import msgspec
import numpy as np

from phalanx.stats.dense import (
    COUNT_DTYPE,
    INDEX_DTYPE,
    MAX_WIRE_COUNT,
    HistogramColumns,
    check_columns,
)
from phalanx.stats.layout import layout_for

__all__ = ["HistogramWire", "check_wire"]


class HistogramWire(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """The compact, serializable form of a :class:`Histogram`.

    ``indices`` are the bucket indices in strictly increasing order, packed
    as little-endian int32, and ``counts`` the matching positive counts,
    packed as little-endian uint32 (no Python object per bucket: a master
    reads a whole delta's buckets as two arrays). ``count`` is at most
    :data:`~phalanx.stats.dense.MAX_WIRE_COUNT`. ``total_ns`` is the exact sum
    in whole nanoseconds. An empty histogram has ``count == 0``, no buckets
    and ``min == max == 0.0``. Use :func:`check_wire` before trusting one
    that came from outside.
    """

    relative_error: float
    count: int
    total_ns: int
    min: float
    max: float
    indices: bytes
    counts: bytes

    def buckets(self) -> dict[int, int]:
        """``{index: count}`` of the packed buckets (not checked: see :func:`check_wire`)."""
        indices = np.frombuffer(self.indices, dtype=INDEX_DTYPE).tolist()
        counts = np.frombuffer(self.counts, dtype=COUNT_DTYPE).tolist()
        return dict(zip(indices, counts, strict=True))


def check_wire(wire: HistogramWire) -> None:
    """Raise ``ValueError`` unless ``wire`` is a well-formed histogram.

    Checks: relative error in ``[MIN_RELATIVE_ERROR, 0.5)``; ``0 <= count <=
    MAX_WIRE_COUNT``; packed bucket lists of equal length with strictly
    increasing indices and positive counts summing to ``count``;
    ``0 <= min <= max <= MAX_VALUE``; the first and last buckets are those of
    ``min`` and ``max``; ``total_ns`` lies between ``count`` times the
    truncated ``min`` and ``max`` (and below ``2**64``). An empty histogram
    has no buckets and zeros. :func:`phalanx.stats.dense.check_columns`
    checks the same for many at once.
    """
    layout = layout_for(wire.relative_error)
    if not 0 <= wire.count <= MAX_WIRE_COUNT:
        raise ValueError(f"histogram 0: count must be in [0, {MAX_WIRE_COUNT}]")
    if not 0 <= wire.total_ns < 2**64:
        raise ValueError("histogram 0: total must be in [0, 2**64)")
    size = len(wire.indices)
    if size != len(wire.counts) or size % INDEX_DTYPE.itemsize:
        raise ValueError("histogram 0: bucket lists differ in length")
    check_columns(
        HistogramColumns(
            count=np.array([wire.count], dtype=np.int64),
            lows=np.array([wire.min], dtype=np.float64),
            highs=np.array([wire.max], dtype=np.float64),
            totals_ns=np.array([wire.total_ns], dtype=np.uint64),
            lengths=np.array([size // INDEX_DTYPE.itemsize], dtype=np.intp),
            indices=np.frombuffer(wire.indices, dtype=INDEX_DTYPE),
            counts=np.frombuffer(wire.counts, dtype=COUNT_DTYPE),
        ),
        layout,
    )


