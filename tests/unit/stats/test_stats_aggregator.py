"""Aggregator: exact merging, run and window rates, snapshot shape, bounds and reset."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phalanx.core.results import RequestFailure
from phalanx.stats import (
    PERCENTILES,
    Aggregator,
    EntrySnapshot,
    Histogram,
    Recorder,
    StatsDelta,
    decode_delta,
    encode_delta,
)
from phalanx.stats.delta import PackedDelta

FAIL = RequestFailure("http_status", "HTTP 500")


def one_request_delta(
    start: float, end: float, elapsed: float, *, name: str = "/", count: int = 1, failed: int = 0
) -> StatsDelta:
    recorder = Recorder(start)
    for i in range(count):
        recorder.record("GET", name, elapsed, 10, FAIL if i < failed else None)
    return recorder.take_delta(end)


def run_fields(entry: EntrySnapshot) -> tuple[object, ...]:
    return (
        entry.method,
        entry.name,
        entry.num_requests,
        entry.num_failures,
        entry.response_bytes,
        entry.min,
        entry.max,
        entry.mean,
        entry.percentiles,
        entry.rps,
        entry.failures_per_s,
    )


# -- exact merging -------------------------------------------------------------

requests = st.lists(
    st.tuples(
        st.sampled_from(["GET", "POST"]),
        st.sampled_from(["/a", "/b", "/c"]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=0, max_value=10_000),
        st.sampled_from([None, FAIL, RequestFailure("read_timeout", "timed out")]),
        st.integers(min_value=0, max_value=3),  # which worker
        st.booleans(),  # does that worker ship a delta after this request
    ),
    max_size=120,
)


@settings(max_examples=100, deadline=None)
@given(requests=requests)
def test_merging_deltas_of_many_recorders_equals_one_recorder_that_saw_everything(
    requests: list[tuple[str, str, float, int, RequestFailure | None, int, bool]],
) -> None:
    workers = [Recorder(0.0) for _ in range(4)]
    single = Recorder(0.0)
    merged = Aggregator(start=0.0)
    clock = 0.0
    for method, name, elapsed, size, failure, worker, ship in requests:
        single.record(method, name, elapsed, size, failure)
        workers[worker].record(method, name, elapsed, size, failure)
        if ship:
            clock += 1.0
            merged.apply(decode_delta(encode_delta(workers[worker].take_delta(clock))))
    clock += 1.0
    for recorder in workers:
        merged.apply(recorder.take_delta(clock))
    reference = Aggregator(start=0.0)
    reference.apply(single.take_delta(clock))

    for method in ("GET", "POST"):
        for name in ("/a", "/b", "/c"):
            assert merged.histogram(method, name) == reference.histogram(method, name)
    assert merged.total_histogram() == reference.total_histogram()
    total = Histogram()
    for _, _, elapsed, *_ in requests:
        total.record(elapsed)
    assert merged.total_histogram() == total

    # run fields agree exactly; window fields differ since the intervals differ
    ours = merged.snapshot(clock)
    theirs = reference.snapshot(clock)
    assert [run_fields(e) for e in ours.entries] == [run_fields(e) for e in theirs.entries]
    assert run_fields(ours.total) == run_fields(theirs.total)
    assert ours.errors == theirs.errors


def test_apply_rejects_a_delta_with_another_relative_error_and_changes_nothing() -> None:
    aggregator = Aggregator(start=0.0, relative_error=0.01)
    recorder = Recorder(0.0, relative_error=0.02)
    recorder.record("GET", "/", 0.1, 0, None)
    with pytest.raises(ValueError, match="relative error"):
        aggregator.apply(recorder.take_delta(1.0))
    assert aggregator.snapshot(1.0).total.num_requests == 0


def test_apply_rejects_an_invalid_delta_and_changes_nothing() -> None:
    aggregator = Aggregator(start=0.0)
    good = one_request_delta(0.0, 1.0, 0.1)
    bad_entry = msgspec.structs.replace(good.entries[0], num_failures=5)
    bad = msgspec.structs.replace(good, entries=(good.entries[0], bad_entry))
    with pytest.raises(ValueError, match="num_failures"):
        aggregator.apply(bad)
    snapshot = aggregator.snapshot(1.0)
    assert snapshot.total.num_requests == 0
    assert snapshot.entries == ()


def test_apply_rejects_a_non_finite_received_at() -> None:
    aggregator = Aggregator(start=0.0)
    with pytest.raises(ValueError, match="received_at"):
        aggregator.apply(one_request_delta(0.0, 1.0, 0.1), received_at=math.nan)


# -- the snapshot --------------------------------------------------------------


def test_snapshot_reports_run_totals_rates_and_a_total_entry() -> None:
    aggregator = Aggregator(start=100.0)
    recorder = Recorder(100.0)
    for i in range(10):
        recorder.record("GET", "/a", 0.1, 100, FAIL if i < 2 else None)
    for _ in range(5):
        recorder.record("POST", "/b", 0.3, 10, None)
    aggregator.apply(recorder.take_delta(105.0))
    snapshot = aggregator.snapshot(110.0)

    assert (snapshot.start, snapshot.now, snapshot.duration) == (100.0, 110.0, 10.0)
    a, b = snapshot.entries
    assert (a.method, a.name, a.num_requests, a.num_failures, a.response_bytes) == (
        "GET",
        "/a",
        10,
        2,
        1_000,
    )
    assert a.rps == pytest.approx(1.0)
    assert a.failures_per_s == pytest.approx(0.2)
    assert a.fail_ratio == pytest.approx(0.2)
    assert a.avg_response_bytes == pytest.approx(100.0)
    assert (a.min, a.max) == (0.1, 0.1)
    assert a.mean == pytest.approx(0.1)
    assert [q for q, _ in a.percentiles] == list(PERCENTILES)
    assert a.percentile(0.5) == pytest.approx(0.1, rel=0.01)
    assert b.rps == pytest.approx(0.5)

    total = snapshot.total
    assert (total.method, total.name) == ("", "Aggregated")
    assert (total.num_requests, total.num_failures, total.response_bytes) == (15, 2, 1_050)
    assert total.rps == pytest.approx(1.5)
    assert total.max == 0.3
    assert snapshot.fail_ratio == pytest.approx(2 / 15)


def test_empty_aggregator_gives_a_zero_snapshot() -> None:
    snapshot = Aggregator(start=5.0).snapshot(5.0)
    assert (len(snapshot.entries), len(snapshot.errors), len(snapshot.exceptions)) == (0, 0, 0)
    assert snapshot.duration == 0.0
    total = snapshot.total
    assert (total.num_requests, total.rps, total.current_rps, snapshot.fail_ratio) == (0, 0, 0, 0)
    assert all(seconds == 0.0 for _, seconds in total.percentiles + total.current_percentiles)


def test_run_rates_are_zero_when_no_time_has_passed() -> None:
    aggregator = Aggregator(start=5.0)
    aggregator.apply(one_request_delta(5.0, 5.0, 0.1))
    assert aggregator.snapshot(5.0).total.rps == 0.0


def test_entries_are_sorted_by_name_then_method_and_errors_by_count() -> None:
    aggregator = Aggregator(start=0.0)
    recorder = Recorder(0.0)
    recorder.record("POST", "/a", 0.1, 0, None)
    recorder.record("GET", "/b", 0.1, 0, RequestFailure("x", "rare"))
    for _ in range(3):
        recorder.record("GET", "/a", 0.1, 0, RequestFailure("x", "common"))
    for _ in range(2):
        recorder.record_exception("t", "E", "twice", "l")
    recorder.record_exception("t", "E", "once", "l")
    aggregator.apply(recorder.take_delta(1.0))
    snapshot = aggregator.snapshot(1.0)
    assert [(e.name, e.method) for e in snapshot.entries] == [
        ("/a", "GET"),
        ("/a", "POST"),
        ("/b", "GET"),
    ]
    assert [(e.message, e.count) for e in snapshot.errors] == [("common", 3), ("rare", 1)]
    assert [(e.message, e.count) for e in snapshot.exceptions] == [("twice", 2), ("once", 1)]


def test_errors_and_exceptions_from_several_deltas_add_up() -> None:
    aggregator = Aggregator(start=0.0)
    for step in range(3):
        recorder = Recorder(float(step))
        recorder.record("GET", "/", 0.1, 0, FAIL)
        recorder.record_exception("t", "E", "m", "l")
        aggregator.apply(recorder.take_delta(step + 1.0))
    snapshot = aggregator.snapshot(3.0)
    assert [e.count for e in snapshot.errors] == [3]
    assert [e.count for e in snapshot.exceptions] == [3]


def test_percentile_lookup_rejects_a_quantile_that_is_not_reported() -> None:
    aggregator = Aggregator(start=0.0)
    aggregator.apply(one_request_delta(0.0, 1.0, 0.25))
    total = aggregator.snapshot(1.0).total
    assert total.percentile(1.0) == 0.25
    assert total.current_percentile(0.99) == 0.25
    with pytest.raises(ValueError, match="PERCENTILES"):
        total.percentile(0.42)


# -- the current window --------------------------------------------------------


def test_current_rate_and_percentiles_use_only_deltas_ending_inside_the_window() -> None:
    aggregator = Aggregator(start=0.0, window=10.0)
    aggregator.apply(one_request_delta(0.0, 5.0, 9.0, count=100))  # ends before the window
    aggregator.apply(one_request_delta(5.0, 15.0, 0.02, count=50, failed=5))
    aggregator.apply(one_request_delta(15.0, 20.0, 0.04, count=50))
    snapshot = aggregator.snapshot(20.0)
    total = snapshot.total
    # window (10, 20]: the deltas ending at 15 and 20, covering [5, 20] -> 15 s
    assert total.current_rps == pytest.approx(100 / 15)
    assert total.current_failures_per_s == pytest.approx(5 / 15)
    assert total.current_percentile(1.0) == 0.04
    assert total.current_percentile(0.5) == pytest.approx(0.02, rel=0.01)
    assert total.percentile(1.0) == 9.0  # the run still has everything
    assert total.rps == pytest.approx(200 / 20)
    (entry,) = snapshot.entries
    assert entry.current_rps == total.current_rps


def test_current_span_is_what_the_deltas_cover_when_shorter_than_the_window() -> None:
    aggregator = Aggregator(start=0.0, window=10.0)
    aggregator.apply(one_request_delta(0.0, 2.0, 0.01, count=30))
    assert aggregator.snapshot(2.0).total.current_rps == pytest.approx(15.0)


def test_parallel_workers_add_their_rates() -> None:
    aggregator = Aggregator(start=0.0, window=10.0)
    for worker in range(3):
        for second in range(10):
            aggregator.apply(one_request_delta(second, second + 1.0, 0.01 * (worker + 1), count=10))
    total = aggregator.snapshot(10.0).total
    assert total.current_rps == pytest.approx(30.0)
    assert total.current_percentile(1.0) == 0.03


def test_window_is_empty_when_no_delta_ends_inside_it() -> None:
    aggregator = Aggregator(start=0.0, window=10.0)
    aggregator.apply(one_request_delta(0.0, 1.0, 0.01, count=10))
    entry = aggregator.snapshot(11.0).entries[0]
    assert (entry.current_rps, entry.current_failures_per_s) == (0.0, 0.0)
    assert all(seconds == 0.0 for _, seconds in entry.current_percentiles)
    assert entry.num_requests == 10


def test_deltas_ending_after_now_are_not_in_the_window() -> None:
    aggregator = Aggregator(start=0.0, window=10.0)
    aggregator.apply(one_request_delta(0.0, 5.0, 0.01, count=10))
    aggregator.apply(one_request_delta(5.0, 6.0, 0.01, count=10))
    assert aggregator.snapshot(5.0).total.current_rps == pytest.approx(2.0)


def test_received_at_places_a_delta_on_the_aggregator_clock() -> None:
    aggregator = Aggregator(start=1_000.0, window=10.0)
    # a worker whose monotonic clock reads 5..7 while the master's reads 1000..1010
    aggregator.apply(one_request_delta(5.0, 7.0, 0.01, count=10), received_at=1_010.0)
    total = aggregator.snapshot(1_010.0).total
    assert total.current_rps == pytest.approx(5.0)
    assert aggregator.snapshot(1_021.0).total.current_rps == 0.0


def test_old_deltas_are_pruned_and_the_recent_deque_is_bounded() -> None:
    aggregator = Aggregator(start=0.0, window=2.0, max_recent=5)
    for second in range(100):
        aggregator.apply(one_request_delta(second, second + 1.0, 0.01, count=1))
    snapshot = aggregator.snapshot(100.0)
    assert snapshot.total.num_requests == 100
    assert snapshot.total.current_rps == pytest.approx(1.0)  # deltas ending at 99 and 100
    assert len(aggregator._recent) <= 3


# -- bounds and reset ----------------------------------------------------------


def test_names_beyond_max_entries_fold_into_the_other_entry_in_totals_and_window() -> None:
    aggregator = Aggregator(start=0.0, max_entries=2)
    for i in range(5):
        aggregator.apply(one_request_delta(float(i), i + 1.0, 0.01, name=f"/n{i}", count=2))
    snapshot = aggregator.snapshot(5.0)
    # 5 deltas cover [0, 5]: each named entry got 2 requests, "<other>" 2 + 2 + 2
    rows = {(e.method, e.name): (e.num_requests, e.current_rps * 5) for e in snapshot.entries}
    assert rows == {("GET", "/n0"): (2, 2.0), ("GET", "/n1"): (2, 2.0), ("", "<other>"): (6, 6.0)}
    assert snapshot.total.num_requests == 10


def test_error_rows_beyond_max_errors_fold_into_one_row() -> None:
    aggregator = Aggregator(start=0.0, max_errors=2)
    recorder = Recorder(0.0)
    for i in range(4):
        recorder.record("GET", "/", 0.1, 0, RequestFailure("x", f"m{i}"))
    aggregator.apply(recorder.take_delta(1.0))
    errors = [(e.name, e.message, e.count) for e in aggregator.snapshot(1.0).errors]
    assert errors == [("<other>", "<other errors>", 2), ("/", "m0", 1), ("/", "m1", 1)]


def test_reset_forgets_everything_and_starts_a_new_run() -> None:
    aggregator = Aggregator(start=0.0)
    recorder = Recorder(0.0)
    recorder.record("GET", "/", 0.1, 0, FAIL)
    recorder.record_exception("t", "E", "m", "l")
    aggregator.apply(recorder.take_delta(1.0))
    aggregator.reset(50.0)
    snapshot = aggregator.snapshot(50.0)
    assert snapshot.start == 50.0
    assert (len(snapshot.entries), len(snapshot.errors), len(snapshot.exceptions)) == (0, 0, 0)
    assert (snapshot.total.num_requests, snapshot.total.current_rps) == (0, 0.0)
    assert aggregator.histogram("GET", "/") is None


@pytest.mark.parametrize(
    "kwargs",
    [{"window": 0.0}, {"window": math.nan}, {"max_entries": 0}, {"max_recent": 0}],
)
def test_invalid_settings_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"window|max_"):
        Aggregator(start=0.0, **kwargs)


def test_two_entries_of_one_delta_folding_into_the_other_entry_both_count() -> None:
    aggregator = Aggregator(start=0.0, max_entries=1)
    recorder = Recorder(0.0)
    for name, elapsed in (("/a", 0.01), ("/b", 0.02), ("/b", 0.03), ("/c", 0.5)):
        recorder.record("GET", name, elapsed, 10, None)
    aggregator.apply(recorder.take_delta(1.0))
    snapshot = aggregator.snapshot(1.0)
    rows = {(e.name, e.num_requests, e.min, e.max) for e in snapshot.entries}
    assert rows == {("/a", 1, 0.01, 0.01), ("<other>", 3, 0.02, 0.5)}
    other = aggregator.histogram("", "<other>")
    expected = Histogram()
    expected.record_many([0.02, 0.03, 0.5])
    assert other == expected


def test_many_entries_arriving_over_many_slots_match_one_histogram_each() -> None:
    aggregator = Aggregator(start=0.0, window=4.0)
    expected: dict[str, Histogram] = {}
    for step in range(30):
        recorder = Recorder(float(step))
        # new names keep appearing while older slots are still live
        for k in range(min(3 * step + 3, 70)):
            name = f"/r{k}"
            elapsed = 0.001 * (1 + (k * 7 + step * 13) % 500)
            recorder.record("GET", name, elapsed, 1, None)
            expected.setdefault(name, Histogram()).record(elapsed)
        aggregator.apply(decode_delta(encode_delta(recorder.take_delta(step + 1.0))),
                         received_at=step + 1.0)
        if step % 7 == 0:
            aggregator.snapshot(step + 1.0)
    snapshot = aggregator.snapshot(30.0)
    assert len(snapshot.entries) == 70
    for entry in snapshot.entries:
        histogram = expected[entry.name]
        assert aggregator.histogram("GET", entry.name) == histogram
        assert entry.num_requests == histogram.count
        assert entry.percentiles == tuple(zip(PERCENTILES, histogram.percentiles(PERCENTILES),
                                              strict=True))
        assert (entry.min, entry.max, entry.mean) == (histogram.min, histogram.max,
                                                      histogram.mean)
    total = Histogram()
    for histogram in expected.values():
        total.merge(histogram)
    assert aggregator.total_histogram() == total
    assert snapshot.total.percentiles == tuple(zip(PERCENTILES, total.percentiles(PERCENTILES),
                                                   strict=True))


def test_snapshot_values_are_plain_python_numbers() -> None:
    aggregator = Aggregator(start=0.0)
    aggregator.apply(one_request_delta(0.0, 1.0, 0.25, count=3, failed=1))
    snapshot = aggregator.snapshot(1.0)
    for entry in (*snapshot.entries, snapshot.total):
        for value in (entry.num_requests, entry.num_failures, entry.response_bytes):
            assert type(value) is int
        floats = (entry.min, entry.max, entry.mean, entry.rps, entry.current_rps,
                  *(v for _, v in entry.percentiles), *(v for _, v in entry.current_percentiles))
        for value in floats:
            assert type(value) is float


def test_a_slot_holds_rows_only_for_the_entries_its_deltas_touched() -> None:
    aggregator = Aggregator(start=0.0, window=10.0)
    for second in range(40):
        recorder = Recorder(float(second))
        for k in range(3):  # 3 new names every second: 120 entries in all
            recorder.record("GET", f"/id/{second * 3 + k}", 0.01 * (k + 1), 1, None)
        aggregator.apply(recorder.take_delta(second + 1.0))
    snapshot = aggregator.snapshot(40.0)
    assert len(snapshot.entries) == 120
    assert snapshot.total.num_requests == 120
    live = list(aggregator._recent.values())
    assert live
    assert all(len(slot.entries) == 3 for slot in live)
    # not one row per entry ever seen
    assert all(slot.counts is None or slot.counts.shape[0] <= 16 for slot in live)
    assert snapshot.total.current_rps == pytest.approx(3.0, rel=0.15)


def test_a_busy_slot_merges_its_deltas_densely_and_leaves_the_window_whole() -> None:
    aggregator = Aggregator(start=0.0, window=2.0)
    expected = Histogram()
    window = Histogram()
    for k in range(60):  # 60 deltas of one entry land in the slot ending at 1.0
        recorder = Recorder(0.0)
        for i in range(40):
            elapsed = 0.001 * (1 + (k * 37 + i * 11) % 900)
            recorder.record("GET", "/busy", elapsed, 1, FAIL if i == 0 else None)
            expected.record(elapsed)
            window.record(elapsed)
        aggregator.apply(recorder.take_delta(1.0), received_at=1.0)
    (slot,) = aggregator._recent.values()
    assert slot.counts is not None  # merged into a dense block once the deltas outgrew it
    snapshot = aggregator.snapshot(1.0)
    (entry,) = snapshot.entries
    assert entry.current_percentiles == tuple(zip(PERCENTILES, window.percentiles(PERCENTILES),
                                                  strict=True))
    assert entry.current_failures_per_s * 1.0 == pytest.approx(60.0)
    # a later delta pushes the busy slot out of the window: only the run keeps it
    aggregator.apply(one_request_delta(4.0, 5.0, 0.5, name="/busy"), received_at=5.0)
    later = aggregator.snapshot(5.0).entries[0]
    expected.record(0.5)
    assert aggregator.histogram("GET", "/busy") == expected
    assert later.num_requests == 60 * 40 + 1
    assert later.current_percentiles[0] == (0.5, 0.5)
    assert later.current_failures_per_s == 0.0
    assert aggregator._archive.counts.sum() == 60 * 40  # the busy slot was folded in, once


# -- exact sums and remembered rows ---------------------------------------------


def _sized_delta(start: float, end: float, sizes: dict[str, int]) -> StatsDelta:
    """One request per name, each ``sizes[name]`` response bytes (the wire allows < 2**64)."""
    recorder = Recorder(start)
    for name in sizes:
        recorder.record("GET", name, 0.01, 0, None)
    delta = recorder.take_delta(end)
    entries = tuple(msgspec.structs.replace(entry, response_bytes=sizes[entry.name])
                    for entry in delta.entries)
    return msgspec.structs.replace(delta, entries=entries)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["/a", "/b", "/c", "/d"]),
                                st.one_of(st.integers(0, 2**20), st.integers(2**58, 2**64 - 1)),
                                min_size=1),
                min_size=1, max_size=12),
       st.integers(min_value=1, max_value=4))
def test_byte_sums_stay_exact_far_beyond_what_an_int64_holds(
        deltas: list[dict[str, int]], max_entries: int) -> None:
    aggregator = Aggregator(start=0.0, max_entries=max_entries)
    expected: dict[str, int] = {}
    named: list[str] = []
    for step, sizes in enumerate(deltas):
        aggregator.apply(_sized_delta(float(step), step + 1.0, sizes))
        for name in sorted(sizes):  # the aggregator meets a delta's entries in sorted order
            if name not in named and len(named) < max_entries:
                named.append(name)
            row = name if name in named else "<other>"
            expected[row] = expected.get(row, 0) + sizes[name]
    snapshot = aggregator.snapshot(float(len(deltas)))
    assert {e.name: e.response_bytes for e in snapshot.entries} == expected
    assert snapshot.total.response_bytes == sum(expected.values())
    assert all(type(e.response_bytes) is int for e in snapshot.entries)


def test_rows_remembered_for_an_entry_list_are_forgotten_on_reset() -> None:
    aggregator = Aggregator(start=0.0)
    aggregator.apply(_sized_delta(0.0, 1.0, {"/a": 1, "/b": 2}))  # /a row 0, /b row 1
    aggregator.reset(10.0)
    aggregator.apply(_sized_delta(10.0, 11.0, {"/b": 5}))  # /b is row 0 now
    aggregator.apply(_sized_delta(11.0, 12.0, {"/a": 7, "/b": 3}))
    snapshot = aggregator.snapshot(12.0)
    assert {e.name: (e.num_requests, e.response_bytes) for e in snapshot.entries} == {
        "/a": (1, 7), "/b": (2, 8)}


def test_the_remembered_rows_are_bounded_and_stay_right_when_dropped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from phalanx.stats import aggregator as module

    monkeypatch.setattr(module, "_ROW_MEMO_ENTRIES", 5)
    aggregator = Aggregator(start=0.0)
    expected: dict[str, int] = {}
    for step in range(40):
        names = {f"/n{(step * 3 + k) % 11}": step + k for k in range(1 + step % 4)}
        aggregator.apply(_sized_delta(float(step), step + 1.0, names))
        for name, size in names.items():
            expected[name] = expected.get(name, 0) + size
        assert aggregator._row_memo_entries <= 5
    snapshot = aggregator.snapshot(40.0)
    assert {e.name: e.response_bytes for e in snapshot.entries} == expected


@pytest.mark.parametrize("value", [1, 2**40, 2**60, 2**61 + 12345, 2**63, 2**64 - 1])
def test_exact_sums_fold_before_the_int64_array_could_overflow(value: int) -> None:
    import numpy as np

    from phalanx.stats.aggregator import _ExactSums

    sums = _ExactSums()
    expected = [0, 0, 0]
    for step in range(50):
        rows = np.array([0, 2, 2] if step % 2 else [1], dtype=np.intp)  # rows may repeat
        values = np.full(rows.size, value, dtype=np.uint64)
        sums.add(rows, values, 3)
        for row in rows.tolist():
            expected[row] += value
        assert int(sums._fast.max()) < 2**63 - 1 - 2**62  # room for the next add, always
    assert sums.values(3) == expected
    assert sums.values(5) == [*expected, 0, 0]


def test_the_row_memo_keeps_no_copy_of_what_a_peer_sent() -> None:
    aggregator = Aggregator(start=0.0, max_entries=3)
    face = "\N{GRINNING FACE}" * 150  # 600 bytes of UTF-8 per name

    def received(step: int, names: dict[str, int]) -> PackedDelta:
        return decode_delta(encode_delta(_sized_delta(float(step), step + 1.0, names)))

    for step in range(20):
        aggregator.apply(received(step, {f"/{step}/{k}/{face}": 1 for k in range(3)}))
        aggregator.apply(received(step, {f"/0/0/{face}": 1}))
    kept = {id(name) for _, name in aggregator._keys}
    for _methods, names in aggregator._row_memo:
        assert all(id(name) in kept for name in names)  # the aggregator's own strings
    # Lists that fold into the overflow entry are not remembered at all.
    assert aggregator._row_memo_entries <= 3 + 1
    assert {e.name: e.num_requests for e in aggregator.snapshot(20.0).entries}["<other>"] == 57
