"""Statistics: pure, synchronous, no I/O.

Data flows one way through this package::

    RequestRecorder calls -> Recorder (worker) -> StatsDelta -> encode_delta
    -> bytes -> decode_delta -> PackedDelta -> Aggregator (master) -> StatsSnapshot

:mod:`phalanx.stats.layout` holds the bucket math, :class:`Histogram` one
histogram and :mod:`phalanx.stats.dense` many as arrays (the master's merge);
:mod:`phalanx.stats.limits` holds the size limits and overflow names shared by
both ends.
"""

from phalanx.stats.aggregator import Aggregator
from phalanx.stats.delta import (
    EntryDelta,
    ErrorDelta,
    ExceptionDelta,
    PackedDelta,
    StatsDelta,
    decode_delta,
    encode_delta,
)
from phalanx.stats.histogram import Histogram, HistogramWire
from phalanx.stats.recorder import Recorder
from phalanx.stats.snapshot import (
    PERCENTILES,
    EntrySnapshot,
    ErrorSnapshot,
    ExceptionSnapshot,
    StatsSnapshot,
)

__all__ = [
    "PERCENTILES",
    "Aggregator",
    "EntryDelta",
    "EntrySnapshot",
    "ErrorDelta",
    "ErrorSnapshot",
    "ExceptionDelta",
    "ExceptionSnapshot",
    "Histogram",
    "HistogramWire",
    "PackedDelta",
    "Recorder",
    "StatsDelta",
    "StatsSnapshot",
    "decode_delta",
    "encode_delta",
]
