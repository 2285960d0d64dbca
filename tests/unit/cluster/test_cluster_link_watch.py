"""The worker's master-link watch: fail closed, stop within timeout + one check interval."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phalanx.cluster.link_watch import (
    DEFAULT_MASTER_TIMEOUT,
    LinkState,
    LinkWatch,
    heartbeat_interval_fits,
    next_heartbeat_due,
)


def test_default_master_timeout_is_ten_seconds() -> None:
    assert LinkWatch().master_timeout == DEFAULT_MASTER_TIMEOUT == 10.0


def test_master_timeout_must_be_positive_and_at_most_sixty_seconds() -> None:
    for bad in (0.0, -1.0, 60.001, math.inf, math.nan):
        with pytest.raises(ValueError, match="master_timeout"):
            LinkWatch(bad)
    assert LinkWatch(60.0).master_timeout == 60.0


def test_before_hearing_the_master_no_load_may_run() -> None:
    watch = LinkWatch(5.0)
    assert watch.state(0.0) is LinkState.NEVER_HEARD
    assert watch.should_stop_load(0.0)
    assert watch.seconds_left(0.0) == 0.0


def test_load_may_run_while_the_master_was_heard_within_the_timeout() -> None:
    watch = LinkWatch(5.0)
    watch.heard(100.0)
    assert watch.state(104.999) is LinkState.CONNECTED
    assert not watch.should_stop_load(104.999)
    assert watch.seconds_left(102.0) == 3.0


def test_load_stops_once_the_master_was_silent_for_the_timeout() -> None:
    watch = LinkWatch(5.0)
    watch.heard(100.0)
    assert watch.state(105.0) is LinkState.LOST
    assert watch.should_stop_load(105.0)
    assert watch.should_stop_load(1_000.0)
    assert watch.seconds_left(106.0) == 0.0


def test_hearing_the_master_again_reconnects_a_lost_link() -> None:
    watch = LinkWatch(5.0)
    watch.heard(0.0)
    assert watch.state(10.0) is LinkState.LOST
    watch.heard(10.0)
    assert watch.state(10.0) is LinkState.CONNECTED


def test_a_late_arriving_earlier_time_never_moves_last_heard_backwards() -> None:
    watch = LinkWatch(5.0)
    watch.heard(10.0)
    watch.heard(3.0)
    assert watch.last_heard == 10.0


def test_check_interval_is_a_quarter_of_the_timeout_and_at_most_one_second() -> None:
    assert LinkWatch(2.0).check_interval == 0.5
    assert LinkWatch(10.0).check_interval == 1.0


@given(
    st.lists(st.floats(0.0, 1_000.0), min_size=1, max_size=20),
    st.floats(0.1, 60.0),
    st.floats(0.01, 5.0),
    st.floats(0.0, 1.0),
)
def test_a_worker_that_loses_its_master_stops_within_timeout_plus_one_check_interval(
    heard_at: list[float], timeout: float, interval: float, phase: float
) -> None:
    watch = LinkWatch(timeout)
    for t in heard_at:
        watch.heard(t)
    last = max(heard_at)
    # The worker checks every `interval` seconds from an arbitrary phase.
    first_check = last + phase * interval
    deadline = last + timeout + interval
    stopped_at = None
    for k in range(int((timeout + 2 * interval) / interval) + 2):
        now = first_check + k * interval
        if watch.should_stop_load(now):
            stopped_at = now
            break
        assert now - last < timeout  # never stops while the master is still fresh
    assert stopped_at is not None
    assert stopped_at <= deadline + 1e-9


def test_next_heartbeat_is_due_at_once_when_none_was_sent() -> None:
    assert next_heartbeat_due(None, 1.0, now=50.0) == 0.0


def test_next_heartbeat_waits_out_the_interval_and_is_never_negative() -> None:
    assert next_heartbeat_due(10.0, 2.0, now=11.5) == 0.5
    assert next_heartbeat_due(10.0, 2.0, now=12.0) == 0.0
    assert next_heartbeat_due(10.0, 2.0, now=30.0) == 0.0


def test_next_heartbeat_refuses_a_non_positive_interval() -> None:
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="interval"):
            next_heartbeat_due(0.0, bad, 1.0)


def test_heartbeat_interval_fits_only_at_most_a_third_of_the_master_timeout() -> None:
    assert heartbeat_interval_fits(1.0, 10.0)
    assert heartbeat_interval_fits(10.0 / 3, 10.0)
    assert not heartbeat_interval_fits(4.0, 10.0)
    assert not heartbeat_interval_fits(0.0, 10.0)


@given(st.floats(0.0, 1e6), st.floats(0.001, 100.0), st.floats(0.0, 1e6))
def test_a_master_sending_when_due_never_leaves_a_gap_longer_than_the_interval(
    last_sent: float, interval: float, now: float
) -> None:
    delay = next_heartbeat_due(last_sent, interval, now)
    assert delay >= 0.0
    assert now + delay <= max(now, last_sent + interval) + 1e-6
