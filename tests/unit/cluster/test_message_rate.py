"""The master's per-worker message rate limit: token buckets, drop bursts, disconnects."""

from __future__ import annotations

import math
from itertools import accumulate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phalanx.cluster.message_rate import TOKEN_SLACK, MessageRateLimiter, RateDecision

rates = st.floats(min_value=0.01, max_value=1_000.0, allow_nan=False, allow_infinity=False)
bursts = st.integers(min_value=1, max_value=50)
starts = st.floats(min_value=0.0, max_value=1e5, allow_nan=False, allow_infinity=False)


def send(limiter: MessageRateLimiter, key: str, now: float, count: int) -> list[RateDecision]:
    return [limiter.allow(key, now) for _ in range(count)]


def allowed_count(decisions: list[RateDecision]) -> int:
    return sum(decision.allowed for decision in decisions)


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.0, -1.0, math.nan, math.inf, -math.inf])
def test_rate_must_be_finite_and_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        MessageRateLimiter(rate, 1)


@pytest.mark.parametrize("burst", [0, -3])
def test_burst_must_be_at_least_one(burst: int) -> None:
    with pytest.raises(ValueError, match="burst"):
        MessageRateLimiter(1.0, burst)


def test_burst_must_be_an_integer() -> None:
    with pytest.raises(ValueError, match="burst"):
        MessageRateLimiter(1.0, math.inf)  # type: ignore[arg-type]


def test_max_keys_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        MessageRateLimiter(1.0, 1, max_keys=0)


@pytest.mark.parametrize("after", [0.0, -1.0, math.nan, math.inf])
def test_disconnect_after_must_be_finite_and_positive_or_none(after: float) -> None:
    with pytest.raises(ValueError, match="disconnect_after"):
        MessageRateLimiter(1.0, 1, disconnect_after=after)
    assert MessageRateLimiter(1.0, 1, disconnect_after=None).disconnect_after is None


@pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf])
def test_non_finite_now_is_refused(now: float) -> None:
    with pytest.raises(ValueError, match="now"):
        MessageRateLimiter(1.0, 1).allow("k", now)


# --- the bucket ----------------------------------------------------------------------------


def test_a_new_key_starts_with_a_full_burst() -> None:
    limiter = MessageRateLimiter(rate=1.0, burst=5)
    decisions = send(limiter, "k", 100.0, 6)
    assert [d.allowed for d in decisions] == [True] * 5 + [False]


def test_the_bucket_refills_at_rate() -> None:
    limiter = MessageRateLimiter(rate=4.0, burst=2)
    send(limiter, "k", 0.0, 3)
    assert not limiter.allow("k", 0.2).allowed  # 0.8 tokens
    assert limiter.allow("k", 0.25).allowed  # 1 token
    assert not limiter.allow("k", 0.25).allowed
    assert allowed_count(send(limiter, "k", 0.75, 5)) == 2


def test_the_bucket_never_holds_more_than_burst() -> None:
    limiter = MessageRateLimiter(rate=10.0, burst=3)
    send(limiter, "k", 0.0, 3)
    assert allowed_count(send(limiter, "k", 3_600.0, 10)) == 3


def test_now_going_backwards_creates_no_tokens() -> None:
    limiter = MessageRateLimiter(rate=1.0, burst=1)
    assert limiter.allow("k", 100.0).allowed
    assert not limiter.allow("k", 50.0).allowed
    assert not limiter.allow("k", 100.5).allowed  # measured from 100.0, not from 50.0
    assert limiter.allow("k", 101.0).allowed


def test_keys_have_their_own_buckets() -> None:
    limiter = MessageRateLimiter(rate=1.0, burst=2)
    send(limiter, "flood", 0.0, 100)
    assert allowed_count(send(limiter, "calm", 0.0, 2)) == 2
    assert limiter.dropped() == {"flood": 98}


@settings(max_examples=200, deadline=None)
@given(rate=rates, burst=bursts, start=starts,
       steps=st.lists(st.one_of(st.just(0.0), st.floats(min_value=-2.0, max_value=3.0)),
                      min_size=1, max_size=150))
def test_no_interval_gets_more_than_burst_plus_rate_times_its_length(
        rate: float, burst: int, start: float, steps: list[float]) -> None:
    limiter = MessageRateLimiter(rate, burst)
    times = [start + t / rate for t in accumulate(steps)]  # may go backwards
    clamped = list(accumulate(times, max))
    allowed = [limiter.allow("k", now).allowed for now in times]
    prefix = [0, *accumulate(allowed)]
    for i in range(len(times)):
        for j in range(i, len(times)):
            limit = burst + rate * (clamped[j] - clamped[i]) + TOKEN_SLACK
            assert prefix[j + 1] - prefix[i] <= limit


@settings(max_examples=200, deadline=None)
@given(rate=rates, burst=bursts, start=starts,
       earlier=st.integers(min_value=0, max_value=200),
       extra=st.lists(st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=3.0)),
                      min_size=1, max_size=100))
def test_a_key_at_or_below_rate_is_never_dropped_after_its_first_burst(
        rate: float, burst: int, start: float, earlier: int, extra: list[float]) -> None:
    limiter = MessageRateLimiter(rate, burst)
    send(limiter, "k", start, earlier)  # any first burst, spent or flooded
    now = start
    for more in extra:
        previous, now = now, now + (1.0 + more) / rate
        while now - previous < 1.0 / rate:  # the float sum may round below the gap
            now = math.nextafter(now, math.inf)
        assert limiter.allow("k", now).allowed


@settings(max_examples=100, deadline=None)
@given(rate=rates, burst=bursts,
       events=st.lists(st.tuples(st.booleans(), st.floats(min_value=0.0, max_value=2.0)),
                       max_size=100))
def test_what_one_key_sends_never_changes_another_keys_answers(
        rate: float, burst: int, events: list[tuple[bool, float]]) -> None:
    shared, alone = MessageRateLimiter(rate, burst), MessageRateLimiter(rate, burst)
    now = 0.0
    for is_a, step in events:
        now += step / rate
        if is_a:
            assert shared.allow("a", now) == alone.allow("a", now)
        else:
            shared.allow("b", now)


# --- drops ---------------------------------------------------------------------------------


def test_first_drop_marks_only_the_first_drop_of_each_burst_of_drops() -> None:
    limiter = MessageRateLimiter(rate=1.0, burst=1)
    decisions = send(limiter, "k", 0.0, 4)
    assert [d.first_drop for d in decisions] == [False, True, False, False]
    assert limiter.allow("k", 1.0).allowed  # allowed again: the next drop starts a new burst
    assert [d.first_drop for d in send(limiter, "k", 1.0, 2)] == [True, False]


def test_dropped_total_counts_the_drops_of_the_key() -> None:
    limiter = MessageRateLimiter(rate=1.0, burst=1)
    decisions = send(limiter, "k", 0.0, 4)
    assert [d.dropped_total for d in decisions] == [0, 1, 2, 3]
    assert limiter.allow("k", 1.0).dropped_total == 3


def test_dropped_is_a_copy_of_the_counts_of_keys_with_drops() -> None:
    limiter = MessageRateLimiter(rate=1.0, burst=1)
    send(limiter, "a", 0.0, 3)
    send(limiter, "b", 0.0, 1)
    snapshot = limiter.dropped()
    send(limiter, "a", 0.0, 1)
    assert snapshot == {"a": 2}
    assert limiter.dropped() == {"a": 3}


def test_forget_restarts_a_key_full_with_no_drops() -> None:
    limiter = MessageRateLimiter(rate=1.0, burst=2)
    send(limiter, "k", 0.0, 5)
    limiter.forget("k")
    limiter.forget("never-seen")
    assert limiter.dropped() == {}
    assert allowed_count(send(limiter, "k", 0.0, 3)) == 2


# --- eviction ------------------------------------------------------------------------------


def test_at_most_max_keys_buckets_are_kept() -> None:
    limiter = MessageRateLimiter(rate=1.0, burst=1, max_keys=3)
    for n in range(10):
        limiter.allow(f"k{n}", 0.0)
    assert len(limiter) == 3


def test_the_least_recently_used_key_is_evicted() -> None:
    limiter = MessageRateLimiter(rate=1.0, burst=1, max_keys=2)
    send(limiter, "a", 0.0, 2)
    send(limiter, "b", 0.0, 2)
    send(limiter, "a", 0.0, 1)  # a is now more recent than b
    limiter.allow("c", 0.0)  # evicts b
    assert limiter.dropped() == {"a": 2}
    assert not limiter.allow("a", 0.0).allowed  # a kept its empty bucket


def test_an_evicted_key_restarts_full_so_each_eviction_gives_at_most_one_burst() -> None:
    limiter = MessageRateLimiter(rate=1.0, burst=3, max_keys=1)
    assert allowed_count(send(limiter, "a", 0.0, 10)) == 3
    limiter.allow("b", 0.0)  # evicts a
    assert allowed_count(send(limiter, "a", 0.0, 10)) == 3  # the documented residual


# --- disconnect ----------------------------------------------------------------------------


def flood(limiter: MessageRateLimiter, key: str, start: float, seconds: float,
          per_second: float) -> list[tuple[float, RateDecision]]:
    count = round(seconds * per_second)
    times = [start + n / per_second for n in range(count)]
    return [(now, limiter.allow(key, now)) for now in times]


def test_a_key_over_its_rate_for_longer_than_disconnect_after_is_disconnected() -> None:
    limiter = MessageRateLimiter(rate=10.0, burst=5, disconnect_after=2.0)
    decisions = flood(limiter, "k", 0.0, seconds=4.0, per_second=100.0)
    first = next(now for now, d in decisions if not d.allowed)
    flagged = [now for now, d in decisions if d.disconnect]
    assert flagged
    assert flagged[0] > first + 2.0
    assert all(not d.disconnect for now, d in decisions if now <= first + 2.0)
    assert all(d.disconnect for now, d in decisions if now > first + 2.0 + 0.011)


def test_no_disconnect_when_disconnect_after_is_none() -> None:
    limiter = MessageRateLimiter(rate=10.0, burst=5)
    decisions = flood(limiter, "k", 0.0, seconds=4.0, per_second=100.0)
    assert not any(d.disconnect for _, d in decisions)
    assert any(not d.allowed for _, d in decisions)


def test_a_key_that_slows_to_its_rate_is_never_disconnected() -> None:
    limiter = MessageRateLimiter(rate=10.0, burst=5, disconnect_after=1.0)
    flood(limiter, "k", 0.0, seconds=0.5, per_second=100.0)
    calm = flood(limiter, "k", 0.5, seconds=5.0, per_second=10.0)
    assert all(d.allowed and not d.disconnect for _, d in calm)


def test_drops_further_apart_than_the_over_window_start_a_new_episode() -> None:
    limiter = MessageRateLimiter(rate=1.0, burst=1, disconnect_after=5.0)
    assert limiter.over_window == 2.0
    now = 0.0
    for _ in range(10):  # a drop every 2.5 s: never continuously over
        decisions = send(limiter, "k", now, 2)
        assert not decisions[1].allowed
        assert not any(d.disconnect for d in decisions)
        now += 2.5
    for _ in range(10):  # then a drop every 1 s: over from the first of them
        decisions = send(limiter, "k", now, 2)
        assert not decisions[1].allowed
        now += 1.0
    assert decisions[1].disconnect


def test_a_disconnect_is_reported_on_allowed_messages_of_a_flood_too() -> None:
    limiter = MessageRateLimiter(rate=10.0, burst=1, disconnect_after=1.0)
    decisions = flood(limiter, "k", 0.0, seconds=3.0, per_second=20.0)
    late_allowed = [d for now, d in decisions if now > 2.0 and d.allowed]
    assert late_allowed
    assert all(d.disconnect for d in late_allowed)
