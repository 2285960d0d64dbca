"""The master's worker table: joins, heartbeats, expiry, leaving, limits and counted oddities."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phalanx.cluster.worker_table import (
    CPU_WARNING_PERCENT,
    WorkerInfo,
    WorkerState,
    WorkerTable,
)


def table(timeout: float = 5.0, max_workers: int = 3) -> WorkerTable:
    return WorkerTable(heartbeat_timeout=timeout, max_workers=max_workers)


def info(t: WorkerTable, key: str) -> WorkerInfo:
    found = t.get(key)
    assert found is not None
    return found


def test_a_joined_worker_is_ready_and_alive() -> None:
    t = table()
    result = t.join("k1", "w1", 4, now=10.0)
    assert result.accepted
    assert not result.rejoined
    assert result.reason == ""
    assert t.alive_keys() == ("k1",)
    assert t.snapshot() == (WorkerInfo(key="k1", name="w1", state=WorkerState.READY,
                                       cpu_count=4, users=0, cpu_percent=0.0, rss_bytes=0,
                                       cpu_warning=False, last_seen=10.0, joined_at=10.0),)


def test_join_above_max_workers_is_refused_with_a_reason_and_changes_nothing() -> None:
    t = table(max_workers=2)
    t.join("k1", "w1", 1, 0.0)
    t.join("k2", "w2", 1, 0.0)
    result = t.join("k3", "w3", 1, 0.0)
    assert not result.accepted
    assert result.reason == "max_workers"
    assert t.alive_keys() == ("k1", "k2")
    assert t.get("k3") is None


def test_a_missing_worker_frees_its_slot_for_another() -> None:
    t = table(timeout=5.0, max_workers=1)
    t.join("k1", "w1", 1, 0.0)
    assert t.expire(6.0) == ["k1"]
    assert t.join("k2", "w2", 1, 6.0).accepted


def test_a_missing_worker_rejoins_as_ready_unless_the_table_is_full() -> None:
    t = table(timeout=5.0, max_workers=1)
    t.join("k1", "w1", 1, 0.0)
    t.expire(6.0)
    back = t.join("k1", "w1", 1, 7.0)
    assert back.accepted
    assert back.rejoined
    assert info(t, "k1").state is WorkerState.READY
    assert info(t, "k1").joined_at == 7.0
    t.expire(13.0)
    t.join("k2", "w2", 1, 13.0)
    refused = t.join("k1", "w1", 1, 13.0)
    assert not refused.accepted
    assert refused.rejoined
    assert refused.reason == "max_workers"
    assert info(t, "k1").state is WorkerState.MISSING


def test_a_worker_that_left_can_join_again() -> None:
    t = table()
    t.join("k1", "w1", 1, 0.0)
    t.leave("k1", 1.0)
    again = t.join("k1", "w1", 1, 2.0)
    assert again.accepted
    assert again.rejoined
    assert t.alive_keys() == ("k1",)


def test_join_of_an_alive_worker_is_a_restart_that_resets_it_to_ready_even_when_full() -> None:
    t = table(max_workers=1)
    t.join("k1", "w1", 1, 0.0)
    t.heartbeat("k1", users=50, cpu_percent=10.0, rss_bytes=1, now=1.0)
    again = t.join("k1", "w1-new", 2, 2.0)
    assert again.accepted
    assert again.rejoined
    assert info(t, "k1").state is WorkerState.READY
    assert info(t, "k1").users == 0
    assert info(t, "k1").name == "w1-new"


def test_heartbeat_with_users_marks_running_and_without_marks_ready() -> None:
    t = table()
    t.join("k1", "w1", 1, 0.0)
    assert t.heartbeat("k1", users=3, cpu_percent=20.0, rss_bytes=1000, now=1.0).accepted
    got = info(t, "k1")
    assert got.state is WorkerState.RUNNING
    assert (got.users, got.cpu_percent, got.rss_bytes, got.last_seen) == (3, 20.0, 1000, 1.0)
    t.heartbeat("k1", users=0, cpu_percent=1.0, rss_bytes=1000, now=2.0)
    assert info(t, "k1").state is WorkerState.READY


def test_heartbeat_from_an_unknown_key_is_ignored_and_counted() -> None:
    t = table()
    result = t.heartbeat("stranger", 1, 1.0, 1, 0.0)
    assert not result.accepted
    assert result.reason == "heartbeat_unknown"
    assert t.ignored() == {"heartbeat_unknown": 1}
    assert t.snapshot() == ()


def test_heartbeat_from_a_missing_worker_is_ignored_until_it_rejoins() -> None:
    t = table(timeout=5.0)
    t.join("k1", "w1", 1, 0.0)
    t.expire(6.0)
    result = t.heartbeat("k1", 5, 1.0, 1, 7.0)
    assert not result.accepted
    assert result.reason == "heartbeat_missing"
    assert info(t, "k1").state is WorkerState.MISSING
    assert info(t, "k1").last_seen == 0.0
    assert t.ignored() == {"heartbeat_missing": 1}


def test_heartbeat_and_leave_from_a_gone_worker_are_ignored_and_counted() -> None:
    t = table()
    t.join("k1", "w1", 1, 0.0)
    assert t.leave("k1", 1.0).accepted
    assert t.heartbeat("k1", 1, 1.0, 1, 2.0).reason == "heartbeat_gone"
    assert t.leave("k1", 2.0).reason == "leave_gone"
    assert t.leave("nobody", 2.0).reason == "leave_unknown"
    assert t.ignored() == {"heartbeat_gone": 1, "leave_gone": 1, "leave_unknown": 1}


def test_leave_makes_a_worker_gone_at_once_with_no_users() -> None:
    t = table()
    t.join("k1", "w1", 1, 0.0)
    t.heartbeat("k1", 9, 1.0, 1, 1.0)
    t.leave("k1", 2.0)
    got = info(t, "k1")
    assert got.state is WorkerState.GONE
    assert got.users == 0
    assert t.alive_keys() == ()
    assert t.expire(100.0) == []


def test_a_missing_worker_can_leave() -> None:
    t = table(timeout=1.0)
    t.join("k1", "w1", 1, 0.0)
    t.expire(2.0)
    assert t.leave("k1", 3.0).accepted
    assert info(t, "k1").state is WorkerState.GONE


def test_expire_marks_only_workers_silent_longer_than_the_timeout() -> None:
    t = table(timeout=5.0)
    t.join("k1", "w1", 1, 0.0)
    t.join("k2", "w2", 1, 0.0)
    t.heartbeat("k2", 0, 1.0, 1, 3.0)
    assert t.expire(5.0) == []  # exactly the timeout: not yet
    assert t.expire(5.5) == ["k1"]
    assert t.alive_keys() == ("k2",)
    assert t.expire(8.5) == ["k2"]


def test_expire_reports_each_newly_missing_worker_once() -> None:
    t = table(timeout=1.0)
    t.join("k1", "w1", 1, 0.0)
    assert t.expire(2.0) == ["k1"]
    assert t.expire(3.0) == []


def test_last_seen_never_goes_backwards() -> None:
    t = table()
    t.join("k1", "w1", 1, 10.0)
    t.heartbeat("k1", 0, 1.0, 1, now=4.0)
    assert info(t, "k1").last_seen == 10.0


def test_cpu_warning_is_raised_once_above_90_percent_and_cleared_below() -> None:
    t = table()
    t.join("k1", "w1", 1, 0.0)
    assert not t.heartbeat("k1", 1, CPU_WARNING_PERCENT, 1, 1.0).cpu_warning
    first = t.heartbeat("k1", 1, 95.0, 1, 2.0)
    assert first.cpu_warning
    assert first.cpu_warning_raised
    second = t.heartbeat("k1", 1, 99.0, 1, 3.0)
    assert second.cpu_warning
    assert not second.cpu_warning_raised
    assert t.cpu_warnings() == ("k1",)
    assert not t.heartbeat("k1", 1, 50.0, 1, 4.0).cpu_warning
    assert t.cpu_warnings() == ()


def test_snapshot_is_sorted_by_key_and_immutable() -> None:
    t = table()
    t.join("kb", "b", 1, 0.0)
    t.join("ka", "a", 1, 0.0)
    snap = t.snapshot()
    assert [w.key for w in snap] == ["ka", "kb"]
    with pytest.raises(AttributeError):
        snap[0].users = 5  # type: ignore[misc]
    t.heartbeat("ka", 7, 1.0, 1, 1.0)
    assert snap[0].users == 0


def test_table_refuses_a_bad_timeout_or_worker_limit() -> None:
    for timeout in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="heartbeat_timeout"):
            WorkerTable(heartbeat_timeout=timeout, max_workers=1)
    with pytest.raises(ValueError, match="max_workers"):
        WorkerTable(heartbeat_timeout=1.0, max_workers=0)


keys = st.sampled_from(["k0", "k1", "k2", "k3", "k4"])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("join"), keys, st.floats(0.0, 3.0)),
        st.tuples(st.just("heartbeat"), keys, st.floats(0.0, 3.0)),
        st.tuples(st.just("leave"), keys, st.floats(0.0, 3.0)),
        st.tuples(st.just("expire"), keys, st.floats(0.0, 3.0)),
    ),
    max_size=60,
)


@settings(max_examples=200)
@given(operations, st.integers(1, 4))
def test_any_sequence_of_events_keeps_the_table_consistent_and_never_raises(
    ops: list[tuple[str, str, float]], max_workers: int
) -> None:
    timeout = 2.0
    t = WorkerTable(heartbeat_timeout=timeout, max_workers=max_workers)
    now = 0.0
    ignored_expected = 0
    for op, key, step in ops:
        now += step
        before = t.get(key)
        if op == "join":
            t.join(key, key, 1, now)
        elif op == "heartbeat":
            result = t.heartbeat(key, 1, 10.0, 1, now)
            ignored_expected += not result.accepted
            alive = before is not None and before.state in (WorkerState.READY,
                                                            WorkerState.RUNNING)
            assert result.accepted == alive
        elif op == "leave":
            result_leave = t.leave(key, now)
            ignored_expected += not result_leave.accepted
            assert result_leave.accepted == (before is not None
                                             and before.state is not WorkerState.GONE)
        else:
            alive_before = set(t.alive_keys())
            missing = t.expire(now)
            assert missing == sorted(missing)
            assert set(missing) <= alive_before
            # Whoever is still alive was heard within the timeout.
            for worker in t.snapshot():
                if worker.state in (WorkerState.READY, WorkerState.RUNNING):
                    assert now - worker.last_seen <= timeout
        assert len(t.alive_keys()) <= max_workers
        assert sum(t.ignored().values()) == ignored_expected
        assert [w.key for w in t.snapshot()] == sorted(w.key for w in t.snapshot())
