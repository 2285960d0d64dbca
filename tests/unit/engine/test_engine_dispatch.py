"""Dispatch arithmetic: exact weights, fixed counts, proportional ramps."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phalanx.engine.dispatch import (
    ClassSpec,
    next_step,
    ramp_allowance,
    seconds_until_step,
    steps_needed,
    target_counts,
)

specs = st.lists(
    st.tuples(st.integers(0, 20), st.integers(0, 5)), min_size=1, max_size=6
).map(lambda items: [ClassSpec(f"C{i}", w, f) for i, (w, f) in enumerate(items)])


def test_weights_split_users_exactly_in_proportion() -> None:
    counts = target_counts([ClassSpec("A", 3), ClassSpec("B", 1)], 100)
    assert counts == {"A": 75, "B": 25}


def test_largest_remainder_goes_to_first_declared_on_ties() -> None:
    assert target_counts([ClassSpec("A", 1), ClassSpec("B", 1)], 3) == {"A": 2, "B": 1}
    assert target_counts([ClassSpec("A", 1), ClassSpec("B", 1), ClassSpec("C", 1)], 1) == {
        "A": 1, "B": 0, "C": 0,
    }


def test_fixed_count_is_served_first_and_never_exceeded() -> None:
    classes = [ClassSpec("Admin", 1, fixed_count=2), ClassSpec("Shopper", 1)]
    assert target_counts(classes, 10) == {"Admin": 2, "Shopper": 8}
    assert target_counts(classes, 1) == {"Admin": 1, "Shopper": 0}


def test_zero_users_and_zero_weights_give_zero_counts() -> None:
    assert target_counts([ClassSpec("A", 0), ClassSpec("B", 0)], 5) == {"A": 0, "B": 0}
    assert target_counts([ClassSpec("A", 2)], 0) == {"A": 0}


def test_duplicate_names_and_negative_totals_are_rejected() -> None:
    with pytest.raises(ValueError, match="unique"):
        target_counts([ClassSpec("A"), ClassSpec("A")], 1)
    with pytest.raises(ValueError, match=">= 0"):
        target_counts([ClassSpec("A")], -1)


@given(specs, st.integers(0, 500))
def test_target_counts_sum_to_total_and_stay_within_one_of_the_exact_share(
    classes: list[ClassSpec], total: int
) -> None:
    counts = target_counts(classes, total)
    fixed_total = 0
    for spec in classes:
        if spec.fixed_count > 0:
            assert counts[spec.name] <= spec.fixed_count
            fixed_total += counts[spec.name]
    weighted = [s for s in classes if s.fixed_count <= 0]
    weight_sum = sum(s.weight for s in weighted)
    if weighted and weight_sum:
        assert sum(counts.values()) == total
        left = total - fixed_total
        for spec in weighted:
            assert abs(counts[spec.name] - left * spec.weight / weight_sum) < 1
    else:
        assert sum(counts.values()) == fixed_total


@given(specs, st.integers(0, 200), st.integers(0, 200))
def test_steps_reach_any_target_and_mix_stays_proportional(
    classes: list[ClassSpec], start_total: int, end_total: int
) -> None:
    current = target_counts(classes, start_total)
    target = target_counts(classes, end_total)
    expected_steps = steps_needed(current, target)
    taken = 0
    while (step := next_step(current, target)) is not None:
        name, delta = step
        before = current[name]
        current[name] = before + delta
        # every step closes the gap of its class, never overshoots
        assert abs(current[name] - target[name]) < abs(before - target[name])
        taken += 1
        assert taken <= expected_steps
    assert current == target
    assert taken == expected_steps


def test_ramp_up_interleaves_classes_by_weight() -> None:
    target = target_counts([ClassSpec("A", 3), ClassSpec("B", 1)], 8)
    current = {"A": 0, "B": 0}
    order = []
    while (step := next_step(current, target)) is not None:
        current[step[0]] += step[1]
        order.append(step[0])
    # after every 4 spawns, 3 are A and 1 is B
    assert order[:4].count("A") == 3
    assert order[4:].count("A") == 3


def test_removals_come_before_additions() -> None:
    step = next_step({"A": 5, "B": 0}, {"A": 3, "B": 2})
    assert step == ("A", -1)


def test_ramp_allowance_allows_first_step_at_once_then_one_per_interval() -> None:
    assert ramp_allowance(2.0, 0.0) == 1
    assert ramp_allowance(2.0, 0.49) == 1
    assert ramp_allowance(2.0, 0.5) == 2
    assert ramp_allowance(10.0, 1.0) == 11
    assert ramp_allowance(1.0, -1.0) == 0
    with pytest.raises(ValueError, match="rate"):
        ramp_allowance(0.0, 1.0)


@pytest.mark.parametrize(
    ("rate", "steps"), list(itertools.product([0.5, 1.0, 3.0, 50.0], [0, 1, 7]))
)
def test_seconds_until_step_agrees_with_allowance(rate: float, steps: int) -> None:
    wait = seconds_until_step(rate, 0.0, steps)
    assert ramp_allowance(rate, wait) >= steps + 1
    if wait > 0:
        assert ramp_allowance(rate, wait * 0.99) <= steps
