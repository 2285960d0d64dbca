"""What a worker ships upward: immutable, compact stats deltas.

A :class:`StatsDelta` holds everything one :class:`~phalanx.stats.recorder.Recorder`
saw during the interval ``[start, end)``: one :class:`EntryDelta` per
(method, name) with its latency histogram, and the counted errors and task
exceptions. That object form is what recorders produce and people read.

On the wire a delta is *columnar* (:class:`DeltaWire`): one packed array per
entry field and one for all the buckets of all the entries, so a master that
merges hundreds of deltas per second reads one with a fixed number of numpy
calls and no Python object per entry or bucket. :func:`encode_delta` writes
that form; :func:`decode_delta` reads it into a :class:`PackedDelta`, the
validated arrays the :class:`~phalanx.stats.aggregator.Aggregator` merges.

Deltas cross a trust boundary (worker to master). :func:`decode_delta` is the
only way in from bytes: it enforces a size limit, decodes strictly against the
schema and then checks every invariant, raising ``ValueError`` (and nothing
else) on any bad input. :class:`~phalanx.stats.aggregator.Aggregator` trusts a
:class:`PackedDelta`: make one only with :func:`decode_delta` (or
:func:`check_delta`), never by hand.

Invariants of a valid delta
---------------------------
- ``start <= end``, both finite.
- every entry: ``num_requests == histogram.count``,
  ``0 <= num_failures <= num_requests``, ``response_bytes >= 0`` and a
  well-formed histogram (see :func:`phalanx.stats.histogram.check_wire`);
  all the histograms of one delta have the same relative error.
- every error and exception row has ``count >= 1``.
- text fields are no longer than the limits in :mod:`phalanx.stats.limits`.

The wire also bounds what one entry of one delta may hold: fewer than
``2**32`` requests and failures, and byte and nanosecond sums below
``2**64`` (:func:`encode_delta` raises ``ValueError`` beyond; a worker
reports every few seconds, far below).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Final

import msgspec
import numpy as np

from phalanx.stats.dense import (
    COUNT_DTYPE,
    INDEX_DTYPE,
    HistogramColumns,
    PackedBuckets,
    check_columns,
)
from phalanx.stats.histogram import HistogramWire
from phalanx.stats.layout import DEFAULT_RELATIVE_ERROR, BucketLayout, layout_for
from phalanx.stats.limits import MAX_MESSAGE_LENGTH, MAX_NAME_LENGTH

if TYPE_CHECKING:
    from numpy.typing import NDArray

DEFAULT_MAX_DELTA_BYTES: Final = 16 * 1024 * 1024

_U4: Final = np.dtype("<u4")
_U8: Final = np.dtype("<u8")
_F8: Final = np.dtype("<f8")

# Bounds msgspec enforces while it decodes (in C: a master checks thousands of names per
# second); objects built in Python meet them when they pass through check_delta.
_Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)]
_Message = Annotated[str, msgspec.Meta(max_length=MAX_MESSAGE_LENGTH)]
_Count = Annotated[int, msgspec.Meta(ge=1)]


class EntryDelta(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Requests to one (method, name) during the interval."""

    method: str
    name: str
    num_requests: int
    num_failures: int
    response_bytes: int
    histogram: HistogramWire


class ErrorDelta(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True,
                 gc=False):
    """How many failed requests of one (method, name) had this kind and message."""

    method: _Name
    name: _Name
    kind: _Name
    message: _Message
    count: _Count


class ExceptionDelta(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True,
                     gc=False):
    """How many times a user task raised this exception at this location."""

    task: _Name
    error_type: _Name
    message: _Message
    location: _Name
    count: _Count


class StatsDelta(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything recorded during ``[start, end)`` (seconds, the recorder's clock)."""

    start: float
    end: float
    entries: tuple[EntryDelta, ...]
    errors: tuple[ErrorDelta, ...]
    exceptions: tuple[ExceptionDelta, ...]


class DeltaWire(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True,
                gc=False):
    """The columnar wire form: entry ``i`` is element ``i`` of every column.

    Columns are packed little-endian: ``requests``, ``failures`` and
    ``bucket_lengths`` uint32, ``response_bytes`` and ``total_ns`` uint64,
    ``lows`` and ``highs`` float64 (each histogram's min and max); the
    buckets of all entries, in entry order, are ``bucket_indices`` (int32)
    and ``bucket_counts`` (uint32).
    """

    start: float
    end: float
    relative_error: float
    methods: tuple[_Name, ...]
    names: tuple[_Name, ...]
    requests: bytes
    failures: bytes
    response_bytes: bytes
    total_ns: bytes
    lows: bytes
    highs: bytes
    bucket_lengths: bytes
    bucket_indices: bytes
    bucket_counts: bytes
    errors: tuple[ErrorDelta, ...]
    exceptions: tuple[ExceptionDelta, ...]


@dataclass(frozen=True, slots=True, eq=False)
class PackedDelta:
    """A checked delta as arrays: what :func:`decode_delta` returns and a master merges.

    Entry ``i`` is (``methods[i]``, ``names[i]``) with ``requests[i]``,
    ``failures[i]``, ``response_bytes[i]`` and ``total_ns[i]`` (uint64),
    min ``lows[i]`` and max ``highs[i]``, and
    ``buckets.lengths[i]`` buckets in ``buckets``.
    """

    start: float
    end: float
    relative_error: float
    methods: tuple[str, ...]
    names: tuple[str, ...]
    requests: NDArray[np.int64]
    failures: NDArray[np.int64]
    response_bytes: NDArray[np.uint64]
    total_ns: NDArray[np.uint64]
    lows: NDArray[np.float64]
    highs: NDArray[np.float64]
    buckets: PackedBuckets
    errors: tuple[ErrorDelta, ...]
    exceptions: tuple[ExceptionDelta, ...]

    def to_stats_delta(self) -> StatsDelta:
        """The object form (one :class:`EntryDelta` per entry), equal to what was encoded."""
        layout = layout_for(self.relative_error)
        entries = []
        offset = 0
        lengths = self.buckets.lengths.tolist()
        for i, (method, name) in enumerate(zip(self.methods, self.names, strict=True)):
            end = offset + lengths[i]
            indices = self.buckets.columns[offset:end] + layout.zero_index
            count = int(self.requests[i])
            histogram = HistogramWire(
                relative_error=self.relative_error,
                count=count,
                total_ns=int(self.total_ns[i]),
                min=float(self.lows[i]),
                max=float(self.highs[i]),
                indices=indices.astype(INDEX_DTYPE).tobytes(),
                counts=self.buckets.counts[offset:end].astype(COUNT_DTYPE).tobytes(),
            )
            entries.append(EntryDelta(method, name, count, int(self.failures[i]),
                                      int(self.response_bytes[i]), histogram))
            offset = end
        return StatsDelta(self.start, self.end, tuple(entries), self.errors, self.exceptions)


def encode_delta(delta: StatsDelta) -> bytes:
    """``delta`` in its columnar wire form, as msgpack bytes.

    Raises ``ValueError`` if the wire cannot carry it: histograms with
    different relative errors, ``num_requests`` other than the histogram's
    count, or a value beyond the wire bounds of the module docstring.
    """
    entries = delta.entries
    relative_error = entries[0].histogram.relative_error if entries else DEFAULT_RELATIVE_ERROR
    try:
        for entry in entries:
            if entry.histogram.relative_error != relative_error:
                raise ValueError("the histograms of one stats delta must share one relative error")
            if entry.num_requests != entry.histogram.count:
                raise ValueError(
                    f"entry {entry.name!r}: num_requests differs from the histogram count"
                )
            if not 0 <= entry.num_failures <= entry.num_requests:
                raise ValueError(f"entry {entry.name!r}: num_failures must be in [0, num_requests]")
            if entry.response_bytes < 0:
                raise ValueError(f"entry {entry.name!r}: response_bytes must not be negative")
            size = len(entry.histogram.indices)
            if size != len(entry.histogram.counts) or size % INDEX_DTYPE.itemsize:
                raise ValueError(f"entry {entry.name!r}: histogram bucket lists differ in length")
        wires = [entry.histogram for entry in entries]
        wire = DeltaWire(
            start=delta.start,
            end=delta.end,
            relative_error=relative_error,
            methods=tuple(entry.method for entry in entries),
            names=tuple(entry.name for entry in entries),
            requests=np.array([e.num_requests for e in entries], dtype=_U4).tobytes(),
            failures=np.array([e.num_failures for e in entries], dtype=_U4).tobytes(),
            response_bytes=np.array([e.response_bytes for e in entries], dtype=_U8).tobytes(),
            total_ns=np.array([w.total_ns for w in wires], dtype=_U8).tobytes(),
            lows=np.array([w.min for w in wires], dtype=_F8).tobytes(),
            highs=np.array([w.max for w in wires], dtype=_F8).tobytes(),
            bucket_lengths=np.array([len(w.indices) // INDEX_DTYPE.itemsize for w in wires],
                                    dtype=_U4).tobytes(),
            bucket_indices=b"".join([w.indices for w in wires]),
            bucket_counts=b"".join([w.counts for w in wires]),
            errors=delta.errors,
            exceptions=delta.exceptions,
        )
    except OverflowError:
        raise ValueError("a stats delta field is beyond what the wire carries") from None
    return msgspec.msgpack.encode(wire)


def decode_delta(
    data: bytes | bytearray | memoryview,
    *,
    max_bytes: int = DEFAULT_MAX_DELTA_BYTES,
    relative_error: float | None = DEFAULT_RELATIVE_ERROR,
) -> PackedDelta:
    """Decode and validate msgpack bytes from an untrusted peer.

    Raises ``ValueError`` if ``data`` is longer than ``max_bytes``, is not a
    msgpack encoding of a :class:`DeltaWire` (strict types, no extra
    fields), has another relative error than ``relative_error`` (checked
    first: a peer never chooses which bucket layout is built; None accepts
    any valid one), or breaks an invariant listed in the module docstring.
    """
    return _check(_decode_wire(data, max_bytes, relative_error))


def _decode_wire(data: bytes | bytearray | memoryview, max_bytes: int,
                 relative_error: float | None) -> DeltaWire:
    size = memoryview(data).nbytes
    if size > max_bytes:
        raise ValueError(f"stats delta of {size} bytes is over the limit of {max_bytes} bytes")
    try:
        wire = msgspec.msgpack.decode(data, type=DeltaWire, strict=True)
    except msgspec.ValidationError as exc:  # well-formed msgpack, a value out of bounds
        raise ValueError(f"invalid stats delta: {_named_path(str(exc))}") from None
    except msgspec.MsgspecError as exc:
        raise ValueError(f"malformed stats delta: {exc}") from None
    except RecursionError:  # pragma: no cover - the schema bounds nesting; defence in depth
        raise ValueError("malformed stats delta: nested too deeply") from None
    if relative_error is not None and wire.relative_error != relative_error:
        raise ValueError(f"stats delta relative error {wire.relative_error} differs from the"
                         f" expected {relative_error}")
    return wire


def check_delta(delta: StatsDelta) -> PackedDelta:
    """Raise ``ValueError`` unless ``delta`` satisfies every documented invariant.

    Returns the delta as the master would receive it (through its wire form).
    """
    return decode_delta(encode_delta(delta), max_bytes=2**63, relative_error=None)


_PATH = re.compile(r"`\$\[(\d+)\]((?:\[\d+\])*)`")


def _named_path(text: str) -> str:
    """msgspec's positional path in ``text`` (``$[14][0][3]``: the wire is an array) with
    field names (``errors[0].message``)."""
    match = _PATH.search(text)
    fields = DeltaWire.__struct_fields__
    if match is None or int(match.group(1)) >= len(fields):
        return text
    name = fields[int(match.group(1))]
    indices = [int(i) for i in re.findall(r"\d+", match.group(2))]
    rows = {"errors": ErrorDelta, "exceptions": ExceptionDelta}
    if name in rows and len(indices) == 2 and indices[1] < len(rows[name].__struct_fields__):
        where = f"{name}[{indices[0]}].{rows[name].__struct_fields__[indices[1]]}"
    else:
        where = name + "".join(f"[{i}]" for i in indices)
    return f"{text[:match.start()]}`{where}`{text[match.end():]}"


def _check_head(wire: DeltaWire) -> BucketLayout:
    """Check what is not per entry: times, relative error, and every column's size."""
    if not (math.isfinite(wire.start) and math.isfinite(wire.end)):
        raise ValueError("stats delta start and end must be finite")
    if wire.end < wire.start:
        raise ValueError("stats delta ends before it starts")
    layout = layout_for(wire.relative_error)  # ValueError when out of range
    entries = len(wire.names)
    if len(wire.methods) != entries:
        raise ValueError("stats delta has not as many methods as names")
    for name, dtype in _ENTRY_COLUMNS:
        _check_size(getattr(wire, name), dtype, entries, name)
    buckets = int(np.frombuffer(wire.bucket_lengths, dtype=_U4).sum(dtype=np.int64))
    _check_size(wire.bucket_indices, INDEX_DTYPE, buckets, "bucket_indices")
    _check_size(wire.bucket_counts, COUNT_DTYPE, buckets, "bucket_counts")
    return layout


def _check_size(data: bytes, dtype: np.dtype[np.generic], length: int, name: str) -> None:
    if len(data) != length * dtype.itemsize:
        raise ValueError(f"stats delta column {name} does not hold {length} values")


_ENTRY_COLUMNS: Final = (("requests", _U4), ("failures", _U4), ("response_bytes", _U8),
                         ("total_ns", _U8), ("lows", _F8), ("highs", _F8),
                         ("bucket_lengths", _U4))


def _check(wire: DeltaWire) -> PackedDelta:
    layout = _check_head(wire)  # every column has the size of its entries or buckets
    requests = np.frombuffer(wire.requests, dtype=_U4).astype(np.int64)
    failures = np.frombuffer(wire.failures, dtype=_U4).astype(np.int64)
    response_bytes = np.frombuffer(wire.response_bytes, dtype=_U8)
    total_ns = np.frombuffer(wire.total_ns, dtype=_U8)
    lows = np.frombuffer(wire.lows, dtype=_F8)
    highs = np.frombuffer(wire.highs, dtype=_F8)
    lengths = np.frombuffer(wire.bucket_lengths, dtype=_U4).astype(np.intp)
    indices = np.frombuffer(wire.bucket_indices, dtype=INDEX_DTYPE)
    counts = np.frombuffer(wire.bucket_counts, dtype=COUNT_DTYPE)
    if (failures > requests).any():
        raise ValueError(f"entry {_first_name(wire, failures > requests)}: num_failures must be"
                         " in [0, num_requests]")
    try:
        packed = check_columns(
            HistogramColumns(requests, lows, highs, total_ns, lengths, indices, counts),
            layout,
        )
    except ValueError as exc:
        raise ValueError(f"stats delta: {exc}") from None
    return PackedDelta(
        start=wire.start,
        end=wire.end,
        relative_error=layout.relative_error,
        methods=wire.methods,
        names=wire.names,
        requests=requests,
        failures=failures,
        response_bytes=response_bytes,
        total_ns=total_ns,
        lows=lows,
        highs=highs,
        buckets=packed,
        errors=wire.errors,
        exceptions=wire.exceptions,
    )


def _first_name(wire: DeltaWire, mask: NDArray[np.bool_]) -> str:
    return repr(wire.names[int(np.flatnonzero(mask)[0])])
