"""Wait times: bounds, pacing arithmetic, argument validation, use as methods."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest

from phalanx.scripting.wait_time import (
    between,
    constant,
    constant_pacing,
    constant_throughput,
    pacing_delay,
)


@dataclass
class FakeInstance:
    random: random.Random = field(default_factory=lambda: random.Random(7))
    last_task_duration: float = 0.0


def test_between_stays_within_bounds_and_spreads_over_the_range() -> None:
    instance = FakeInstance()
    wait = between(0.5, 2)
    samples = [wait(instance) for _ in range(2000)]
    assert all(0.5 <= s <= 2 for s in samples)
    assert min(samples) < 0.6
    assert max(samples) > 1.9


def test_between_with_equal_bounds_is_constant() -> None:
    assert between(1.5, 1.5)(FakeInstance()) == 1.5


def test_between_draws_from_the_instance_random_reproducibly() -> None:
    first = [between(0, 10)(FakeInstance()) for _ in range(3)]
    second = [between(0, 10)(FakeInstance()) for _ in range(3)]
    assert first == second


def test_constant_returns_its_value() -> None:
    assert constant(3)(FakeInstance()) == 3.0
    assert constant(0)(FakeInstance()) == 0.0


@pytest.mark.parametrize(
    ("interval", "duration", "expected"),
    [(1.0, 0.25, 0.75), (1.0, 0.0, 1.0), (1.0, 1.0, 0.0), (1.0, 5.0, 0.0), (0.0, 0.1, 0.0)],
)
def test_pacing_delay_fills_the_interval_and_never_goes_negative(
    interval: float, duration: float, expected: float
) -> None:
    assert pacing_delay(interval, duration) == pytest.approx(expected)


def test_constant_pacing_reads_the_last_task_duration() -> None:
    wait = constant_pacing(2)
    assert wait(FakeInstance(last_task_duration=0.5)) == pytest.approx(1.5)
    assert wait(FakeInstance(last_task_duration=3.0)) == 0.0


def test_constant_throughput_paces_at_the_inverse_rate() -> None:
    wait = constant_throughput(4)
    assert wait(FakeInstance(last_task_duration=0.05)) == pytest.approx(0.2)
    assert wait(FakeInstance(last_task_duration=1.0)) == 0.0


def test_wait_time_factories_work_as_methods_of_a_class() -> None:
    class Owner:
        wait_time = constant_pacing(1)

        def __init__(self) -> None:
            self.last_task_duration = 0.25

    assert Owner().wait_time() == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("factory", "args", "error", "needle"),
    [
        (between, (-1, 2), ValueError, "negative"),
        (between, (1, -2), ValueError, "negative"),
        (between, (3, 2), ValueError, "greater than max_wait"),
        (between, (0, math.inf), ValueError, "finite"),
        (between, (0, math.nan), ValueError, "finite"),
        (between, ("1", 2), TypeError, "number of seconds"),
        (constant, (-0.5,), ValueError, "negative"),
        (constant, (True,), TypeError, "number of seconds"),
        (constant_pacing, (-1,), ValueError, "negative"),
        (constant_throughput, (0,), ValueError, "positive"),
        (constant_throughput, (-2,), ValueError, "positive"),
        (constant_throughput, (math.inf,), ValueError, "positive"),
        (constant_throughput, (None,), TypeError, "tasks per second"),
    ],
)
def test_invalid_arguments_are_refused_with_a_clear_message(
    factory: object, args: tuple[object, ...], error: type[Exception], needle: str
) -> None:
    assert callable(factory)
    with pytest.raises(error, match=needle):
        factory(*args)
