"""Recorder: per-entry counts, error grouping, bounds, truncation and interval deltas."""

from __future__ import annotations

import math
from typing import Any

import pytest

from phalanx.core.results import ErrorKind, RequestFailure, RequestRecorder
from phalanx.stats import Histogram, Recorder, StatsDelta
from phalanx.stats.delta import check_delta
from phalanx.stats.limits import MAX_MESSAGE_LENGTH, MAX_NAME_LENGTH

TIMEOUT = RequestFailure(ErrorKind.READ_TIMEOUT, "read timed out")


def entries_by_key(delta: StatsDelta) -> dict[tuple[str, str], tuple[int, int, int]]:
    return {
        (e.method, e.name): (e.num_requests, e.num_failures, e.response_bytes)
        for e in delta.entries
    }


def test_recorder_through_the_request_recorder_protocol_counts_what_it_is_given() -> None:
    recorder: RequestRecorder = Recorder(0.0)  # mypy checks the protocol; this the behaviour
    recorder.record("GET", "/", 0.1, 10, None)
    recorder.record_exception("task", "ValueError", "bad", "script.py:3")
    assert isinstance(recorder, Recorder)
    delta = recorder.take_delta(1.0)
    assert [(e.name, e.num_requests, e.response_bytes) for e in delta.entries] == [("/", 1, 10)]
    assert [(e.task, e.count) for e in delta.exceptions] == [("task", 1)]


def test_requests_failures_and_bytes_are_counted_per_method_and_name() -> None:
    recorder = Recorder(0.0)
    recorder.record("GET", "/a", 0.1, 100, None)
    recorder.record("GET", "/a", 0.2, 50, TIMEOUT)
    recorder.record("POST", "/a", 0.3, 7, None)
    recorder.record("GET", "/b", 0.4, 0, TIMEOUT)
    delta = recorder.take_delta(5.0)
    check_delta(delta)
    assert entries_by_key(delta) == {
        ("GET", "/a"): (2, 1, 150),
        ("POST", "/a"): (1, 0, 7),
        ("GET", "/b"): (1, 1, 0),
    }
    expected = Histogram()
    expected.record_many([0.1, 0.2])
    get_a = next(e for e in delta.entries if (e.method, e.name) == ("GET", "/a"))
    assert Histogram.from_wire(get_a.histogram) == expected


def test_entries_in_a_delta_are_sorted_by_method_and_name() -> None:
    recorder = Recorder(0.0)
    for method, name in [("POST", "/b"), ("GET", "/z"), ("GET", "/a")]:
        recorder.record(method, name, 0.1, 0, None)
    keys = [(e.method, e.name) for e in recorder.take_delta(1.0).entries]
    assert keys == sorted(keys)


def test_failures_are_grouped_by_method_name_kind_and_message() -> None:
    recorder = Recorder(0.0)
    for _ in range(3):
        recorder.record("GET", "/a", 0.1, 0, TIMEOUT)
    recorder.record("GET", "/a", 0.1, 0, RequestFailure(ErrorKind.HTTP_STATUS, "HTTP 500"))
    recorder.record("GET", "/b", 0.1, 0, TIMEOUT)
    recorder.record("GET", "/b", 0.1, 0, RequestFailure(ErrorKind.READ_TIMEOUT, "other text"))
    errors = {(e.method, e.name, e.kind, e.message): e.count for e in recorder.take_delta(1).errors}
    assert errors == {
        ("GET", "/a", "read_timeout", "read timed out"): 3,
        ("GET", "/a", "http_status", "HTTP 500"): 1,
        ("GET", "/b", "read_timeout", "read timed out"): 1,
        ("GET", "/b", "read_timeout", "other text"): 1,
    }


def test_messages_are_cut_to_500_characters_and_names_to_the_name_limit() -> None:
    recorder = Recorder(0.0)
    long_name = "/x" * MAX_NAME_LENGTH
    recorder.record("GET", long_name, 0.1, 0, RequestFailure("failure", "m" * 2_000))
    recorder.record("GET", long_name, 0.1, 0, None)
    recorder.record_exception("t" * 5_000, "E" * 5_000, "boom" * 1_000, "f" * 5_000)
    delta = recorder.take_delta(1.0)
    check_delta(delta)
    (entry,) = delta.entries
    assert entry.name == long_name[:MAX_NAME_LENGTH]
    assert entry.num_requests == 2
    (error,) = delta.errors
    assert len(error.message) == MAX_MESSAGE_LENGTH == 500
    assert error.name == entry.name
    (exception,) = delta.exceptions
    assert len(exception.message) == MAX_MESSAGE_LENGTH
    assert len(exception.task) == len(exception.error_type) == len(exception.location)
    assert len(exception.task) == MAX_NAME_LENGTH


def test_names_beyond_max_entries_fold_into_the_other_entry() -> None:
    recorder = Recorder(0.0, max_entries=3)
    for i in range(10):
        recorder.record("GET", f"/user/{i}", 0.01 * (i + 1), 1, TIMEOUT if i >= 8 else None)
    recorder.record("GET", "/user/0", 0.5, 1, None)  # a known name still has its own entry
    delta = recorder.take_delta(1.0)
    check_delta(delta)
    assert entries_by_key(delta) == {
        ("GET", "/user/0"): (2, 0, 2),
        ("GET", "/user/1"): (1, 0, 1),
        ("GET", "/user/2"): (1, 0, 1),
        ("", "<other>"): (7, 2, 7),
    }
    assert {(e.method, e.name, e.count) for e in delta.errors} == {("", "<other>", 2)}


def test_errors_beyond_max_errors_fold_into_one_other_errors_row() -> None:
    recorder = Recorder(0.0, max_errors=2)
    for i in range(5):
        recorder.record("GET", "/", 0.1, 0, RequestFailure("failure", f"order {i} rejected"))
    recorder.record("GET", "/", 0.1, 0, RequestFailure("failure", "order 0 rejected"))
    errors = {(e.method, e.name, e.kind, e.message): e.count for e in recorder.take_delta(1).errors}
    assert errors == {
        ("GET", "/", "failure", "order 0 rejected"): 2,
        ("GET", "/", "failure", "order 1 rejected"): 1,
        ("", "<other>", "other", "<other errors>"): 3,
    }


def test_exceptions_are_grouped_and_bounded() -> None:
    recorder = Recorder(0.0, max_errors=1)
    recorder.record_exception("browse", "KeyError", "'id'", "s.py:3")
    recorder.record_exception("browse", "KeyError", "'id'", "s.py:3")
    recorder.record_exception("buy", "ValueError", "x", "s.py:9")
    exceptions = {
        (e.task, e.error_type, e.message, e.location): e.count
        for e in recorder.take_delta(1.0).exceptions
    }
    assert exceptions == {
        ("browse", "KeyError", "'id'", "s.py:3"): 2,
        ("<other>", "", "<other exceptions>", ""): 1,
    }


def test_take_delta_returns_the_interval_and_resets_everything() -> None:
    recorder = Recorder(100.0, max_entries=1)
    recorder.record("GET", "/a", 0.1, 5, TIMEOUT)
    recorder.record_exception("t", "E", "m", "l")
    assert recorder.pending_requests == 1
    first = recorder.take_delta(101.0)
    assert (first.start, first.end) == (100.0, 101.0)
    assert recorder.pending_requests == 0
    assert recorder.start == 101.0

    recorder.record("GET", "/b", 0.2, 1, None)  # the entry limit is per interval
    second = recorder.take_delta(102.5)
    assert (second.start, second.end) == (101.0, 102.5)
    assert entries_by_key(second) == {("GET", "/b"): (1, 0, 1)}
    assert second.errors == ()
    assert second.exceptions == ()

    third = recorder.take_delta(103.0)
    assert (third.start, third.end, third.entries) == (102.5, 103.0, ())


@pytest.mark.parametrize("now", [99.0, math.nan])
def test_take_delta_with_a_time_before_the_start_gives_an_empty_span(now: float) -> None:
    recorder = Recorder(100.0)
    delta = recorder.take_delta(now)
    assert (delta.start, delta.end) == (100.0, 100.0)
    check_delta(delta)


def test_odd_values_do_not_raise_and_keep_the_delta_valid() -> None:
    recorder = Recorder(0.0)
    for elapsed in (-1.0, math.nan, math.inf, 1e12, 0.0):
        recorder.record("GET", "/", elapsed, -10, None)
    delta = recorder.take_delta(1.0)
    check_delta(delta)
    assert entries_by_key(delta) == {("GET", "/"): (5, 0, 0)}


@pytest.mark.parametrize(
    "kwargs",
    [{"max_entries": 0}, {"max_errors": 0}, {"relative_error": 0.9}],
)
def test_invalid_limits_are_rejected_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"max_|relative_error"):
        Recorder(0.0, **kwargs)


def test_a_secret_straddling_the_length_limits_is_masked_whole() -> None:
    secret = "SUPERSECRETVALUE123"

    def redact(text: str) -> str:
        return text.replace(secret, "***")

    recorder = Recorder(0.0, redact=redact)
    failure = RequestFailure("failure", "x" * 490 + secret)
    recorder.record("GET", "/p/" + "y" * 990 + secret, 0.01, 0, failure)
    recorder.record_exception("T.task", "RuntimeError", "z" * 495 + secret, "s.py:1")
    delta = recorder.take_delta(1.0)
    texts = [delta.entries[0].name, delta.errors[0].message, delta.exceptions[0].message]
    for text in texts:
        assert "SUPER" not in text
        assert not any(secret[:k] in text[-k:] for k in range(3, len(secret)))
    assert len(delta.errors[0].message) <= 500
    assert len(delta.entries[0].name) <= 1000
