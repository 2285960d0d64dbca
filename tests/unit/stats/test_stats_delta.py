"""Stats deltas: msgpack round trip and strict, ValueError-only decoding of untrusted bytes."""

from __future__ import annotations

import math
import re

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phalanx.core.results import RequestFailure
from phalanx.stats import Aggregator, Recorder, StatsDelta, decode_delta, encode_delta
from phalanx.stats.delta import DeltaWire, EntryDelta, ErrorDelta, ExceptionDelta, check_delta
from phalanx.stats.limits import MAX_MESSAGE_LENGTH, MAX_NAME_LENGTH


def sample_delta() -> StatsDelta:
    recorder = Recorder(10.0)
    for i in range(50):
        failure = RequestFailure("http_status", "HTTP 503") if i % 7 == 0 else None
        recorder.record("GET", f"/page/{i % 3}", 0.001 * (i + 1), 100 + i, failure)
    recorder.record("POST", "/login", 0.25, 0, RequestFailure("read_timeout", "timed out"))
    recorder.record_exception("browse", "KeyError", "'id'", "locustfile.py:12")
    return recorder.take_delta(12.5)


def test_encode_then_decode_gives_an_equal_delta() -> None:
    delta = sample_delta()
    assert decode_delta(encode_delta(delta)).to_stats_delta() == delta


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = encode_delta(sample_delta())
    assert decode_delta(bytearray(data)).to_stats_delta() == sample_delta()
    assert decode_delta(memoryview(data)).to_stats_delta() == sample_delta()


def test_empty_delta_round_trips() -> None:
    delta = Recorder(1.0).take_delta(2.0)
    assert decode_delta(encode_delta(delta)).to_stats_delta() == delta


def test_the_wire_is_columnar_with_no_object_per_entry_or_bucket() -> None:
    raw = msgspec.msgpack.decode(encode_delta(sample_delta()))
    assert len(raw) == len(DeltaWire.__struct_fields__)
    assert raw[3] == ["GET", "GET", "GET", "POST"]  # methods
    assert raw[4][3] == "/login"  # names
    assert all(isinstance(column, bytes) for column in raw[5:14])


def test_encode_refuses_what_the_wire_cannot_carry() -> None:
    delta = sample_delta()
    first = delta.entries[0]
    huge = msgspec.structs.replace(first, response_bytes=2**64)
    with pytest.raises(ValueError, match="beyond what the wire carries"):
        encode_delta(msgspec.structs.replace(delta, entries=(huge,)))
    other = msgspec.structs.replace(
        delta.entries[1], histogram=msgspec.structs.replace(
            delta.entries[1].histogram, relative_error=0.02))
    with pytest.raises(ValueError, match="share one relative error"):
        encode_delta(msgspec.structs.replace(delta, entries=(first, other)))


def test_encoding_is_field_name_free() -> None:
    data = encode_delta(sample_delta())
    assert b"num_requests" not in data
    assert b"histogram" not in data


def test_decode_rejects_oversized_input_before_decoding() -> None:
    data = encode_delta(sample_delta())
    with pytest.raises(ValueError, match="over the limit"):
        decode_delta(data, max_bytes=len(data) - 1)
    assert decode_delta(data, max_bytes=len(data)).to_stats_delta() == sample_delta()
    with pytest.raises(ValueError, match="over the limit"):
        decode_delta(b"\x00" * (16 * 1024 * 1024 + 1))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        b"\x90",
        msgspec.msgpack.encode({"start": 1.0}),
        msgspec.msgpack.encode([1.0, 2.0, [], []]),
        msgspec.msgpack.encode([1.0, 2.0, [], [], [], "extra"]),
        msgspec.msgpack.encode(["1", 2.0, [], [], []]),
        msgspec.msgpack.encode([True, 2.0, [], [], []]),
        msgspec.msgpack.encode([1.0, 2.0, [["GET", "/", 1, 0, 0, None]], [], []]),
        msgspec.msgpack.encode([1.0, 2.0, [], [], []]) + b"\x00",
    ],
)
def test_decode_rejects_malformed_msgpack(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"(malformed|invalid) stats delta"):
        decode_delta(data)


def _reversed(indices: bytes) -> bytes:
    return np.frombuffer(indices, dtype="<i4")[::-1].tobytes()


def _entry(**changes: object) -> EntryDelta:
    return msgspec.structs.replace(sample_delta().entries[0], **changes)


def _invalid_deltas() -> list[tuple[StatsDelta, str]]:
    base = sample_delta()
    hist = base.entries[0].histogram
    return [
        (msgspec.structs.replace(base, start=math.nan), "finite"),
        (msgspec.structs.replace(base, end=math.inf), "finite"),
        (msgspec.structs.replace(base, start=20.0), "ends before"),
        (msgspec.structs.replace(base, entries=(_entry(num_requests=-1),)), "num_requests"),
        (msgspec.structs.replace(base, entries=(_entry(num_failures=-1),)), "num_failures"),
        (
            msgspec.structs.replace(base, entries=(_entry(num_failures=hist.count + 1),)),
            "num_failures",
        ),
        (msgspec.structs.replace(base, entries=(_entry(response_bytes=-5),)), "response_bytes"),
        (
            msgspec.structs.replace(
                base, entries=(_entry(histogram=msgspec.structs.replace(hist, relative_error=0.5)),)
            ),
            "relative.error",
        ),
        (
            msgspec.structs.replace(
                base,
                entries=(
                    _entry(
                        histogram=msgspec.structs.replace(hist, indices=_reversed(hist.indices))
                    ),
                ),
            ),
            "increasing",
        ),
        (
            msgspec.structs.replace(
                base,
                entries=(_entry(histogram=msgspec.structs.replace(hist, counts=hist.counts[4:])),),
            ),
            "differ in length",
        ),
        (
            msgspec.structs.replace(base, entries=(_entry(name="x" * (MAX_NAME_LENGTH + 1)),)),
            f"length <= {MAX_NAME_LENGTH}",
        ),
        (
            msgspec.structs.replace(
                base, errors=(ErrorDelta("GET", "/", "x", "m" * (MAX_MESSAGE_LENGTH + 1), 1),)
            ),
            f"length <= {MAX_MESSAGE_LENGTH}",
        ),
        (msgspec.structs.replace(base, errors=(ErrorDelta("GET", "/", "x", "m", 0),)), ">= 1"),
        (
            msgspec.structs.replace(base, exceptions=(ExceptionDelta("t", "E", "m", "f:1", -2),)),
            ">= 1",
        ),
        (
            msgspec.structs.replace(
                base, exceptions=(ExceptionDelta("t" * (MAX_NAME_LENGTH + 1), "E", "m", "f:1", 1),)
            ),
            f"length <= {MAX_NAME_LENGTH}",
        ),
    ]


@pytest.mark.parametrize(("delta", "message"), _invalid_deltas())
def test_decode_rejects_deltas_that_break_an_invariant(delta: StatsDelta, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_delta(encode_delta(delta))  # the object form may already be refused by encode
    with pytest.raises(ValueError, match=message):
        check_delta(delta)  # any valid relative error


def test_a_master_refuses_another_relative_error_before_building_its_layout() -> None:
    recorder = Recorder(0.0, relative_error=1e-4)
    recorder.record("GET", "/", 0.1, 0, None)
    data = encode_delta(recorder.take_delta(1.0))
    with pytest.raises(ValueError, match=r"differs from the expected 0\.01"):
        decode_delta(data)
    assert decode_delta(data, relative_error=1e-4).relative_error == 1e-4


def test_decode_rejects_a_float_where_a_count_belongs() -> None:
    fields = list(msgspec.msgpack.decode(encode_delta(sample_delta())))
    fields[-1] = [["t", "E", "m", "l", 2.0]]
    data = msgspec.msgpack.encode(fields)
    with pytest.raises(ValueError, match=r"invalid stats delta: Expected `int`, got `float` - "
                                         r"at `exceptions\[0\]\.count`"):
        decode_delta(data)


@pytest.mark.parametrize(("row", "field"), [
    (ErrorDelta("GET", "/", "k" * (MAX_NAME_LENGTH + 1), "m", 1), "errors[0].kind"),
    (ErrorDelta("G" * (MAX_NAME_LENGTH + 1), "/", "k", "m", 1), "errors[0].method"),
    (ExceptionDelta("t", "E" * (MAX_NAME_LENGTH + 1), "m", "f:1", 1),
     "exceptions[0].error_type"),
    (ExceptionDelta("t", "E", "m", "f" * (MAX_NAME_LENGTH + 1), 1), "exceptions[0].location"),
])
def test_an_over_long_text_field_is_named_in_the_error(row: object, field: str) -> None:
    base = sample_delta()
    delta = (msgspec.structs.replace(base, errors=(row,)) if isinstance(row, ErrorDelta)
             else msgspec.structs.replace(base, exceptions=(row,)))
    with pytest.raises(ValueError, match=re.escape(
            f"invalid stats delta: Expected `str` of length <= {MAX_NAME_LENGTH} - at `{field}`")):
        decode_delta(encode_delta(delta))


def _decodes_or_value_error(data: bytes) -> None:
    try:
        delta = decode_delta(data)
    except ValueError:
        return
    check_delta(delta.to_stats_delta())  # whatever got through is valid
    # ... and a master can merge it and read it, as the master does (trusted after decode)
    aggregator = Aggregator(start=0.0, relative_error=delta.relative_error)
    aggregator.apply(delta, received_at=1.0)
    aggregator.apply(delta, received_at=100.0)
    snapshot = aggregator.snapshot(100.0)
    assert snapshot.total.num_requests == 2 * int(delta.requests.sum())


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=512))
def test_random_bytes_raise_only_value_error(data: bytes) -> None:
    _decodes_or_value_error(data)


VALID = encode_delta(sample_delta())


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete", "set"]),
            st.integers(min_value=0, max_value=len(VALID) - 1),
            st.integers(min_value=0, max_value=255),
        ),
        min_size=1,
        max_size=8,
    ),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=len(VALID))),
)
def test_mutated_valid_payloads_raise_only_value_error(
    edits: list[tuple[str, int, int]], cut: int | None
) -> None:
    data = bytearray(VALID)
    for op, position, byte in edits:
        position %= max(1, len(data))
        if op == "flip" and data:
            data[position] ^= 1 << (byte % 8)
        elif op == "insert":
            data.insert(position, byte)
        elif op == "delete" and data:
            del data[position]
        elif data:
            data[position] = byte
    if cut is not None:
        del data[cut:]
    _decodes_or_value_error(bytes(data))


@settings(max_examples=200, deadline=None)
@given(
    value=st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**64 - 1)
        | st.floats()
        | st.text(max_size=20)
        | st.binary(max_size=20),
        lambda children: st.lists(children, max_size=6),
        max_leaves=40,
    )
)
def test_arbitrary_msgpack_values_raise_only_value_error(value: object) -> None:
    _decodes_or_value_error(msgspec.msgpack.encode(value))
