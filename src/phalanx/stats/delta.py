"""What a worker ships upward: immutable, compact stats deltas.

A :class:`StatsDelta` holds everything one :class:`~phalanx.stats.recorder.Recorder`
saw during the interval ``[start, end)``: one :class:`EntryDelta` per
(method, name) with its latency histogram, and the counted errors and task
exceptions. The structs are ``array_like`` msgspec Structs, so msgpack carries
field values without field names.

Deltas cross a trust boundary (worker to master). :func:`decode_delta` is the
only way in from bytes: it enforces a size limit, decodes strictly against the
schema and then checks every invariant with :func:`check_delta`, raising
``ValueError`` (and nothing else) on any bad input.

Invariants of a valid delta
---------------------------
- ``start <= end``, both finite.
- every entry: ``num_requests == histogram.count``,
  ``0 <= num_failures <= num_requests``, ``response_bytes >= 0`` and a
  well-formed histogram (see :func:`phalanx.stats.histogram.check_wire`);
  all the histograms of one delta have the same relative error. They are
  checked together, with a fixed number of numpy calls
  (:func:`phalanx.stats.dense.unpack`).
- every error and exception row has ``count >= 1``.
- text fields are no longer than the limits in :mod:`phalanx.stats.limits`.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec

from phalanx.stats.dense import unpack
from phalanx.stats.histogram import HistogramWire
from phalanx.stats.layout import layout_for
from phalanx.stats.limits import MAX_MESSAGE_LENGTH, MAX_NAME_LENGTH

DEFAULT_MAX_DELTA_BYTES: Final = 16 * 1024 * 1024


class EntryDelta(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """Requests to one (method, name) during the interval."""

    method: str
    name: str
    num_requests: int
    num_failures: int
    response_bytes: int
    histogram: HistogramWire


class ErrorDelta(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """How many failed requests of one (method, name) had this kind and message."""

    method: str
    name: str
    kind: str
    message: str
    count: int


class ExceptionDelta(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """How many times a user task raised this exception at this location."""

    task: str
    error_type: str
    message: str
    location: str
    count: int


class StatsDelta(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """Everything recorded during ``[start, end)`` (seconds, the recorder's clock)."""

    start: float
    end: float
    entries: tuple[EntryDelta, ...]
    errors: tuple[ErrorDelta, ...]
    exceptions: tuple[ExceptionDelta, ...]


def encode_delta(delta: StatsDelta) -> bytes:
    """``delta`` as msgpack bytes."""
    return msgspec.msgpack.encode(delta)


def decode_delta(
    data: bytes | bytearray | memoryview, *, max_bytes: int = DEFAULT_MAX_DELTA_BYTES
) -> StatsDelta:
    """Decode and validate msgpack bytes from an untrusted peer.

    Raises ``ValueError`` if ``data`` is longer than ``max_bytes``, is not a
    msgpack encoding of a :class:`StatsDelta` (strict types, no extra
    fields), or breaks an invariant listed in the module docstring.
    """
    size = memoryview(data).nbytes
    if size > max_bytes:
        raise ValueError(f"stats delta of {size} bytes is over the limit of {max_bytes} bytes")
    try:
        delta = msgspec.msgpack.decode(data, type=StatsDelta, strict=True)
    except msgspec.MsgspecError as exc:
        raise ValueError(f"malformed stats delta: {exc}") from None
    except RecursionError:  # pragma: no cover - the schema bounds nesting; defence in depth
        raise ValueError("malformed stats delta: nested too deeply") from None
    check_delta(delta)
    return delta


def check_delta(delta: StatsDelta) -> None:
    """Raise ``ValueError`` unless ``delta`` satisfies every documented invariant."""
    if not (math.isfinite(delta.start) and math.isfinite(delta.end)):
        raise ValueError("stats delta start and end must be finite")
    if delta.end < delta.start:
        raise ValueError("stats delta ends before it starts")
    entries = delta.entries
    for entry in entries:
        if len(entry.method) > MAX_NAME_LENGTH or len(entry.name) > MAX_NAME_LENGTH:
            raise ValueError(f"text field longer than {MAX_NAME_LENGTH} characters")
        if entry.num_requests != entry.histogram.count:
            raise ValueError(f"entry {entry.name!r}: num_requests differs from the histogram count")
        if not 0 <= entry.num_failures <= entry.num_requests:
            raise ValueError(f"entry {entry.name!r}: num_failures must be in [0, num_requests]")
        if entry.response_bytes < 0:
            raise ValueError(f"entry {entry.name!r}: response_bytes must not be negative")
    if entries:
        relative_error = entries[0].histogram.relative_error
        if any(entry.histogram.relative_error != relative_error for entry in entries):
            raise ValueError("the histograms of one stats delta must share one relative error")
        try:
            unpack([entry.histogram for entry in entries], layout_for(relative_error))
        except ValueError as exc:
            raise ValueError(f"stats delta histograms: {exc}") from None
    for error in delta.errors:
        _check_names(error.method, error.name, error.kind)
        _check_message(error.message)
        if error.count < 1:
            raise ValueError("error count must be at least 1")
    for exception in delta.exceptions:
        _check_names(exception.task, exception.error_type, exception.location)
        _check_message(exception.message)
        if exception.count < 1:
            raise ValueError("exception count must be at least 1")


def _check_names(*texts: str) -> None:
    for text in texts:
        if len(text) > MAX_NAME_LENGTH:
            raise ValueError(f"text field longer than {MAX_NAME_LENGTH} characters")


def _check_message(text: str) -> None:
    if len(text) > MAX_MESSAGE_LENGTH:
        raise ValueError(f"message longer than {MAX_MESSAGE_LENGTH} characters")
