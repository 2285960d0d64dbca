"""Distribution over workers: exact sums, evenness per class and in total, fewest moves."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phalanx.cluster.distribution import distribute, moves, ramp_plan, rebalance
from phalanx.engine.dispatch import steps_needed

Split = Mapping[str, Mapping[str, int]]

class_counts_st = st.dictionaries(
    st.sampled_from([f"C{i}" for i in range(5)]), st.integers(0, 40), max_size=5
)
workers_st = st.lists(st.sampled_from([f"w{i}" for i in range(8)]), unique=True, max_size=8)
nonempty_workers_st = st.lists(
    st.sampled_from([f"w{i}" for i in range(8)]), unique=True, min_size=1, max_size=8
)
current_st = st.dictionaries(
    st.sampled_from([f"w{i}" for i in range(10)]),
    st.dictionaries(st.sampled_from([f"C{i}" for i in range(6)]), st.integers(0, 15), max_size=6),
    max_size=10,
)


def assert_even(split: Split, class_counts: Mapping[str, int], workers: list[str]) -> None:
    assert sorted(split) == sorted(workers)
    for name, count in class_counts.items():
        per_worker = [split[worker][name] for worker in workers]
        assert sum(per_worker) == count
        assert max(per_worker) - min(per_worker) <= 1
    totals = [sum(split[worker].values()) for worker in workers]
    assert max(totals) - min(totals) <= 1
    for counts in split.values():
        assert set(counts) == set(class_counts)


def best_possible_moves(current: Split, class_counts: Mapping[str, int],
                        workers: list[str]) -> int:
    """Brute force: the fewest starts over every even split."""
    ordered = sorted(workers)
    n = len(ordered)
    classes = sorted(class_counts)
    choices = [itertools.combinations(range(n), class_counts[c] % n) for c in classes]
    best = math.inf
    for pick in itertools.product(*choices):
        split = {w: {c: class_counts[c] // n for c in classes} for w in ordered}
        for name, chosen in zip(classes, pick, strict=True):
            for index in chosen:
                split[ordered[index]][name] += 1
        totals = [sum(counts.values()) for counts in split.values()]
        if max(totals) - min(totals) <= 1:
            best = min(best, moves(current, split))
    assert best != math.inf
    return int(best)


# --- distribute -----------------------------------------------------------------------------


def test_distribute_gives_every_worker_an_equal_share_when_counts_divide() -> None:
    assert distribute({"A": 6, "B": 3}, ["w2", "w1", "w3"]) == {
        "w1": {"A": 2, "B": 1}, "w2": {"A": 2, "B": 1}, "w3": {"A": 2, "B": 1},
    }


def test_distribute_rotates_remainders_so_totals_stay_even() -> None:
    # Three classes of one user each over three workers: one each, not all on w1.
    split = distribute({"A": 1, "B": 1, "C": 1}, ["w1", "w2", "w3"])
    assert split == {"w1": {"A": 1, "B": 0, "C": 0}, "w2": {"A": 0, "B": 1, "C": 0},
                     "w3": {"A": 0, "B": 0, "C": 1}}


def test_distribute_with_no_workers_places_nothing() -> None:
    assert distribute({"A": 5}, []) == {}


def test_distribute_with_more_workers_than_users_leaves_some_idle() -> None:
    split = distribute({"A": 1}, ["w1", "w2", "w3"])
    assert [split[w]["A"] for w in ("w1", "w2", "w3")] == [1, 0, 0]


def test_distribute_refuses_duplicate_workers_and_negative_counts() -> None:
    with pytest.raises(ValueError, match="unique"):
        distribute({"A": 1}, ["w1", "w1"])
    with pytest.raises(ValueError, match=">= 0"):
        distribute({"A": -1}, ["w1"])


@given(class_counts_st, nonempty_workers_st)
def test_distribute_preserves_sums_and_is_even_per_class_and_in_total(
    class_counts: dict[str, int], workers: list[str]
) -> None:
    assert_even(distribute(class_counts, workers), class_counts, workers)


@given(class_counts_st, workers_st)
def test_distribute_is_deterministic_whatever_the_input_order(
    class_counts: dict[str, int], workers: list[str]
) -> None:
    shuffled_workers = list(reversed(workers))
    shuffled_counts = dict(reversed(list(class_counts.items())))
    assert distribute(class_counts, workers) == distribute(shuffled_counts, shuffled_workers)


# --- rebalance ------------------------------------------------------------------------------


def test_rebalance_from_nothing_equals_distribute() -> None:
    counts = {"A": 7, "B": 5, "C": 2}
    workers = ["w1", "w2", "w3"]
    assert rebalance({}, counts, workers) == distribute(counts, workers)


def test_rebalance_with_nothing_changed_moves_nobody() -> None:
    counts = {"A": 7, "B": 5}
    workers = ["w1", "w2", "w3"]
    current = distribute(counts, workers)
    assert rebalance(current, counts, workers) == current


def test_rebalance_hands_a_missing_workers_users_to_the_others_who_keep_theirs() -> None:
    counts = {"A": 9, "B": 3}
    current = distribute(counts, ["w1", "w2", "w3"])
    split = rebalance(current, counts, ["w1", "w2"])
    assert_even(split, counts, ["w1", "w2"])
    for worker in ("w1", "w2"):
        for name in counts:
            assert split[worker][name] >= current[worker][name]
    assert moves(current, split) == sum(current["w3"].values())


def test_rebalance_gives_a_returning_worker_its_share_back() -> None:
    counts = {"A": 9, "B": 3}
    everyone = ["w1", "w2", "w3"]
    before = distribute(counts, everyone)
    without = rebalance(before, counts, ["w1", "w2"])
    back = rebalance(without, counts, everyone)
    assert_even(back, counts, everyone)
    assert sum(back["w3"].values()) == 4
    # Only the returning worker's share is started; the others only stop users.
    assert moves(without, back) == 4


def test_rebalance_with_no_workers_places_nothing() -> None:
    assert rebalance({"w1": {"A": 3}}, {"A": 3}, []) == {}


def test_rebalance_keeps_remainders_where_they_run_rather_than_the_rotation() -> None:
    # w2 runs the odd user of A; the rotation would put it on w1. Keeping it costs nothing.
    current = {"w1": {"A": 1}, "w2": {"A": 2}}
    assert rebalance(current, {"A": 3}, ["w1", "w2"]) == {"w1": {"A": 1}, "w2": {"A": 2}}


def test_rebalance_moves_a_remainder_when_totals_would_be_uneven() -> None:
    # Per class w1 would keep both odd users, but then totals would be 2 vs 0.
    current = {"w1": {"A": 1, "B": 1}, "w2": {"A": 0, "B": 0}}
    split = rebalance(current, {"A": 1, "B": 1}, ["w1", "w2"])
    assert_even(split, {"A": 1, "B": 1}, ["w1", "w2"])
    assert moves(current, split) == 1


@given(current_st, class_counts_st, nonempty_workers_st)
def test_rebalance_preserves_sums_and_evenness_from_any_starting_point(
    current: dict[str, dict[str, int]], class_counts: dict[str, int], workers: list[str]
) -> None:
    assert_even(rebalance(current, class_counts, workers), class_counts, workers)


@given(current_st, class_counts_st, workers_st)
def test_rebalance_is_deterministic_whatever_the_input_order(
    current: dict[str, dict[str, int]], class_counts: dict[str, int], workers: list[str]
) -> None:
    reordered_current = {w: dict(reversed(list(c.items()))) for w, c in reversed(current.items())}
    reordered_counts = dict(reversed(list(class_counts.items())))
    assert rebalance(current, class_counts, workers) == rebalance(
        reordered_current, reordered_counts, list(reversed(workers))
    )


@given(current_st, class_counts_st, nonempty_workers_st)
def test_rebalance_starts_no_fewer_users_than_the_totals_lower_bound_requires(
    current: dict[str, dict[str, int]], class_counts: dict[str, int], workers: list[str]
) -> None:
    split = rebalance(current, class_counts, workers)
    # Lower bounds: per worker on totals, and per cell per class (each class alone).
    totals_bound = sum(
        max(0, sum(split[w].values()) - sum(current.get(w, {}).values())) for w in workers
    )
    assert moves(current, split) >= totals_bound
    # Never worse than starting from scratch with the rotation.
    assert moves(current, split) <= moves(current, distribute(class_counts, workers))


small_counts_st = st.dictionaries(st.sampled_from(["A", "B", "C"]), st.integers(0, 9), max_size=3)
small_workers_st = st.lists(st.sampled_from(["w0", "w1", "w2", "w3"]), unique=True,
                            min_size=1, max_size=4)
small_current_st = st.dictionaries(
    st.sampled_from(["w0", "w1", "w2", "w3", "w4"]),
    st.dictionaries(st.sampled_from(["A", "B", "C", "D"]), st.integers(0, 6), max_size=4),
    max_size=5,
)


@settings(max_examples=300)
@given(small_current_st, small_counts_st, small_workers_st)
def test_rebalance_starts_exactly_as_few_users_as_the_best_even_split(
    current: dict[str, dict[str, int]], class_counts: dict[str, int], workers: list[str]
) -> None:
    split = rebalance(current, class_counts, workers)
    assert moves(current, split) == best_possible_moves(current, class_counts, workers)


@given(class_counts_st, nonempty_workers_st, nonempty_workers_st)
def test_rebalance_after_a_membership_change_starts_a_class_only_where_below_base_share(
    class_counts: dict[str, int], before: list[str], after: list[str]
) -> None:
    current = distribute(class_counts, before)
    split = rebalance(current, class_counts, after)
    assert_even(split, class_counts, after)
    # A worker that stays starts users of a class only where it ran no more than the base share.
    for worker in set(before) & set(after):
        for name in class_counts:
            if current[worker][name] >= split[worker][name]:
                continue
            assert current[worker][name] <= class_counts[name] // len(after)


def test_moves_counts_only_users_started() -> None:
    assert moves({"w1": {"A": 3}}, {"w1": {"A": 1, "B": 2}, "w2": {"A": 1}}) == 3


# --- ramp_plan ------------------------------------------------------------------------------


def test_ramp_plan_splits_the_rate_by_work_left_so_all_finish_together() -> None:
    current = {"w1": {"A": 0}, "w2": {"A": 0}}
    target = {"w1": {"A": 30}, "w2": {"A": 10}}
    assert ramp_plan(current, target, 8.0, 2) == {"w1": 6.0, "w2": 2.0}


def test_ramp_plan_gives_idle_workers_a_harmless_even_rate() -> None:
    current = {"w1": {"A": 5}, "w2": {"A": 0}}
    target = {"w1": {"A": 5}, "w2": {"A": 4}}
    assert ramp_plan(current, target, 10.0, 2) == {"w1": 5.0, "w2": 10.0}
    assert ramp_plan(target, target, 10.0, 2) == {"w1": 5.0, "w2": 5.0}


def test_ramp_plan_counts_stops_as_steps_too() -> None:
    current = {"w1": {"A": 10}, "w2": {"A": 0}}
    target = {"w1": {"A": 5}, "w2": {"A": 5}}
    assert ramp_plan(current, target, 2.0, 2) == {"w1": 1.0, "w2": 1.0}


def test_ramp_plan_refuses_a_rate_or_worker_count_out_of_range() -> None:
    for rate in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="spawn_rate"):
            ramp_plan({}, {"w1": {"A": 1}}, rate, 1)
    with pytest.raises(ValueError, match="n_workers"):
        ramp_plan({}, {"w1": {"A": 1}}, 1.0, 0)


@given(current_st, current_st, st.floats(0.01, 10_000.0))
def test_ramp_plan_makes_the_cluster_ramp_at_the_global_rate(
    current: dict[str, dict[str, int]], target: dict[str, dict[str, int]], rate: float
) -> None:
    if not target:
        assert ramp_plan(current, target, rate, 1) == {}
        return
    plan = ramp_plan(current, target, rate, len(target))
    assert set(plan) == set(target)
    assert all(r > 0 for r in plan.values())
    steps = {w: steps_needed(current.get(w, {}), target[w]) for w in target}
    busy = [w for w in target if steps[w] > 0]
    if busy:
        assert math.isclose(sum(plan[w] for w in busy), rate, rel_tol=1e-9)
        finish = {steps[w] / plan[w] for w in busy}
        total = sum(steps.values())
        assert all(math.isclose(t, total / rate, rel_tol=1e-9) for t in finish)


@given(current_st, class_counts_st, nonempty_workers_st)
def test_rebalance_of_its_own_result_changes_nothing(
    current: dict[str, dict[str, int]], class_counts: dict[str, int], workers: list[str]
) -> None:
    split = rebalance(current, class_counts, workers)
    assert rebalance(split, class_counts, workers) == split
