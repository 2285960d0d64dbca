"""The wire codec: round trips, strict bounds, direction, and fuzzing (only ProtocolError)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phalanx.protocol import (
    DEFAULT_MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    Bye,
    Heartbeat,
    Hello,
    MasterHeartbeat,
    Message,
    ProtocolError,
    ProtocolVersionError,
    Refuse,
    Rejoin,
    Start,
    Stats,
    Stop,
    Welcome,
    decode,
    decode_from_master,
    decode_from_worker,
    encode,
)
from phalanx.protocol.messages import MAX_CLASSES
from phalanx.stats import Recorder, decode_delta, encode_delta

LIMIT = 1024 * 1024

HELLO = Hello(protocol_version=PROTOCOL_VERSION, worker_name="w1", script_sha256="a" * 64,
              phalanx_version="0.1.0", cpu_count=8)
SAMPLES: tuple[Message, ...] = (
    HELLO,
    Heartbeat(seq=3, users=10, state="running", cpu_percent=42.5, rss_bytes=50_000_000),
    Stats(seq=4, delta=b"\x01\x02"),
    Bye(reason="shutting down"),
    Welcome(run_id="run-1"),
    Refuse(reason="script sha256 differs"),
    Rejoin(reason="marked missing: your users went to other workers"),
    Start(run_id="run-1", host="https://target.test", users_per_class={"Shopper": 5, "Bot": 0},
          spawn_rate=2.5, stop_timeout=10.0),
    Stop(graceful=True),
    MasterHeartbeat(seq=7),
)


def raw(*fields: object) -> bytes:
    """A frame with the right version byte and an arbitrary msgpack body."""
    return bytes([PROTOCOL_VERSION]) + msgspec.msgpack.encode(list(fields))


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_encode_and_decode(message: Message) -> None:
    assert decode(encode(message), max_bytes=LIMIT) == message


def test_frame_starts_with_the_protocol_version_byte() -> None:
    assert encode(HELLO)[0] == PROTOCOL_VERSION == 2


def test_worker_frames_decode_only_as_worker_messages_and_master_frames_only_as_master() -> None:
    for message in SAMPLES:
        frame = encode(message)
        is_worker = isinstance(message, Hello | Heartbeat | Stats | Bye)
        if is_worker:
            assert decode_from_worker(frame, max_bytes=LIMIT) == message
            with pytest.raises(ProtocolError):
                decode_from_master(frame, max_bytes=LIMIT)
        else:
            assert decode_from_master(frame, max_bytes=LIMIT) == message
            with pytest.raises(ProtocolError):
                decode_from_worker(frame, max_bytes=LIMIT)


def test_stats_message_carries_a_stats_delta_the_master_can_decode() -> None:
    recorder = Recorder(0.0)
    recorder.record("GET", "/a", 0.012, 100, None)
    delta = recorder.take_delta(1.0)
    frame = encode(Stats(seq=1, delta=encode_delta(delta)))
    message = decode_from_worker(frame, max_bytes=LIMIT)
    assert isinstance(message, Stats)
    assert decode_delta(message.delta).to_stats_delta() == delta


def test_oversized_frame_is_rejected_before_decoding() -> None:
    frame = encode(Bye(reason="x" * 100))
    with pytest.raises(ProtocolError, match="over the limit"):
        decode(frame, max_bytes=len(frame) - 1)
    assert decode(frame, max_bytes=len(frame)) == Bye(reason="x" * 100)


def test_default_limit_leaves_room_for_a_maximal_stats_delta() -> None:
    assert DEFAULT_MAX_MESSAGE_BYTES > 16 * 1024 * 1024


def test_empty_frame_is_rejected() -> None:
    with pytest.raises(ProtocolError, match="empty"):
        decode(b"", max_bytes=LIMIT)


def test_other_protocol_version_is_rejected_naming_the_version() -> None:
    frame = bytes([1]) + encode(HELLO)[1:]  # a phalanx 0.1 worker from before packed buckets
    with pytest.raises(ProtocolVersionError) as info:
        decode(frame, max_bytes=LIMIT)
    assert info.value.version == 1
    assert "version 1" in str(info.value)
    assert isinstance(info.value, ProtocolError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (encode(HELLO) + b"\x00", "trailing bytes"),
        (encode(HELLO)[:-3], "truncated"),
        (raw("nosuchtag", 1), "unknown tag"),
        (raw("stop"), "missing field"),
        (raw("stop", True, 1), "extra field"),
        (raw("stop", 1), "int where a bool is expected"),
        (raw("mhb", "1"), "str where an int is expected (no coercion)"),
        (raw("mhb", -1), "negative sequence number"),
        (raw("mhb", 2**64 - 1), "integer out of range"),
        (raw("hello", 1, "w1", "a" * 64, "0.1", 0), "cpu_count 0"),
        (raw("hello", 1, "w" * 65, "a" * 64, "0.1", 1), "worker name too long"),
        (raw("hello", 1, "w1\nINFO forged log line", "a" * 64, "0.1", 1), "newline in name"),
        (raw("hello", 1, "w1\n", "a" * 64, "0.1", 1), "trailing newline in name"),
        (raw("hello", 1, "", "a" * 64, "0.1", 1), "empty name"),
        (raw("hello", 1, "w1", "A" * 64, "0.1", 1), "sha256 not lowercase hex"),
        (raw("hello", 1, "w1", "a" * 63, "0.1", 1), "sha256 too short"),
        (raw("hb", 1, 1, "dancing", 1.0, 1), "unknown worker state"),
        (raw("hb", 1, 1, "running", float("nan"), 1), "NaN cpu"),
        (raw("hb", 1, 1, "running", float("inf"), 1), "infinite cpu"),
        (raw("hb", 1, -1, "running", 1.0, 1), "negative users"),
        (raw("bye", "a\x1b[2Jb"), "terminal escape in reason"),
        (raw("bye", "x" * 501), "reason too long"),
        (raw("stats", 1, "not bytes"), "delta not bytes"),
        (raw("start", "r", "h", {"A": 1}, 0.0, 1.0), "spawn rate 0"),
        (raw("start", "r", "h", {"A": 1}, 1.0, -1.0), "negative stop timeout"),
        (raw("start", "r", "h", {"A": -1}, 1.0, 1.0), "negative user count"),
        (raw("start", "r", "h", {"not a class": 1}, 1.0, 1.0), "invalid class name"),
        (raw("start", "r", "h w", {"A": 1}, 1.0, 1.0), "space in host"),
        (raw("start", "r/1", "h", {"A": 1}, 1.0, 1.0), "invalid run id"),
        (raw("start", "r", "h", {f"C{i}": 1 for i in range(MAX_CLASSES + 1)}, 1.0, 1.0),
         "too many classes"),
        (bytes([PROTOCOL_VERSION]) + msgspec.msgpack.encode({"tag": "stop"}), "map, not array"),
        (bytes([PROTOCOL_VERSION]) + b"\xc1", "invalid msgpack byte"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_malformed_or_out_of_bounds_frame_raises_protocol_error(frame: bytes, why: str) -> None:
    with pytest.raises(ProtocolError):
        decode(frame, max_bytes=10 * LIMIT)


def test_error_messages_quoting_peer_bytes_are_single_printable_lines() -> None:
    frame = raw("evil\nFAKE LOG LINE \x1b[31m" + "x" * 5000, 1)
    with pytest.raises(ProtocolError) as info:
        decode(frame, max_bytes=LIMIT)
    message = str(info.value)
    assert message.isprintable()
    assert len(message) < 400


def test_start_carries_only_what_a_worker_needs() -> None:
    assert Start.__struct_fields__ == (
        "run_id", "host", "users_per_class", "spawn_rate", "stop_timeout",
    )


def test_hello_carries_no_identity_only_a_display_name() -> None:
    assert Hello.__struct_fields__ == (
        "protocol_version", "worker_name", "script_sha256", "phalanx_version", "cpu_count",
    )


def _decode_any(frame: bytes) -> None:
    """Decode ``frame``: a message or ProtocolError (with a loggable text) are fine."""
    error: ProtocolError | None = None
    try:
        decode(frame, max_bytes=LIMIT)
    except ProtocolError as exc:
        error = exc
    assert error is None or str(error).isprintable()


@given(st.binary(max_size=2048))
def test_random_bytes_only_ever_raise_protocol_error(data: bytes) -> None:
    _decode_any(data)
    _decode_any(bytes([PROTOCOL_VERSION]) + data)


@given(
    st.sampled_from(SAMPLES),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_mutated_valid_frames_only_ever_raise_protocol_error(
    message: Message, flips: list[tuple[int, int]]
) -> None:
    frame = bytearray(encode(message))
    for position, value in flips:
        frame[position % len(frame)] = value
    _decode_any(bytes(frame))


@given(st.sampled_from(SAMPLES), st.integers(0, 200), st.binary(max_size=16))
def test_truncated_or_spliced_valid_frames_only_ever_raise_protocol_error(
    message: Message, cut: int, insert: bytes
) -> None:
    frame = encode(message)
    position = cut % (len(frame) + 1)
    _decode_any(frame[:position])
    _decode_any(frame[:position] + insert + frame[position:])


@given(st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=5), children, max_size=5),
    max_leaves=30,
))
def test_arbitrary_msgpack_values_only_ever_raise_protocol_error(value: object) -> None:
    _decode_any(bytes([PROTOCOL_VERSION]) + msgspec.msgpack.encode(value))
    for tag in ("hello", "hb", "stats", "bye", "welcome", "refuse", "start", "stop", "mhb"):
        _decode_any(bytes([PROTOCOL_VERSION]) + msgspec.msgpack.encode([tag, value]))
