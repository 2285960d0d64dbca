"""LoadShape: run time from an injected clock, abstract handling, tick validation."""

from __future__ import annotations

import pytest

from phalanx import LoadShape
from phalanx.core.clock import ManualClock
from phalanx.scripting.shape import check_tick


class Ramp(LoadShape):
    def tick(self) -> tuple[int, float] | None:
        run_time = self.get_run_time()
        return None if run_time > 60 else (int(run_time) * 10, 5.0)


def test_run_time_is_zero_before_the_engine_starts_the_shape() -> None:
    assert Ramp().get_run_time() == 0.0
    assert Ramp().tick() == (0, 5.0)


def test_run_time_counts_from_the_start_given_by_the_engine() -> None:
    clock = ManualClock(monotonic=100.0)
    shape = Ramp()
    shape.reset_time(90.0, clock)
    assert shape.get_run_time() == 10.0
    clock.advance(5)
    assert shape.tick() == (150, 5.0)
    clock.advance(60)
    assert shape.tick() is None


def test_reset_time_without_a_start_uses_the_clock_now() -> None:
    clock = ManualClock(monotonic=42.0)
    shape = Ramp()
    shape.reset_time(clock=clock)
    clock.advance(2.5)
    assert shape.get_run_time() == 2.5


def test_reset_time_without_a_clock_uses_the_system_clock() -> None:
    shape = Ramp()
    shape.reset_time()
    assert shape.get_run_time() >= 0.0


def test_the_base_tick_must_be_overridden() -> None:
    class Lazy(LoadShape):
        pass

    with pytest.raises(NotImplementedError, match="Lazy must implement tick"):
        Lazy().tick()


def test_load_shape_is_abstract_and_subclasses_are_concrete_unless_marked() -> None:
    class Base(LoadShape):
        abstract = True

    class Leaf(Base):
        def tick(self) -> None:
            return None

    assert LoadShape.abstract
    assert Base.abstract
    assert Ramp.abstract is False
    assert Leaf.abstract is False


@pytest.mark.parametrize("result", [None, (0, 1.0), (10, 2), (5, 0.5)])
def test_check_tick_accepts_valid_results(result: object) -> None:
    checked = check_tick(result, "Ramp")
    assert checked == (None if result is None else (result[0], float(result[1])))  # type: ignore[index]


@pytest.mark.parametrize(
    ("result", "error"),
    [((1, 2, 3), TypeError), ([1, 2.0], TypeError), ((-1, 1.0), ValueError),
     ((1.5, 1.0), ValueError), ((True, 1.0), ValueError), ((1, 0), ValueError),
     ((1, float("nan")), ValueError), ((1, "fast"), ValueError)],
)
def test_check_tick_refuses_invalid_results(result: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"Ramp\.tick\(\)"):
        check_tick(result, "Ramp")
