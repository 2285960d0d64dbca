"""Load shapes: a script-defined schedule of user count and spawn rate.

Subclass :class:`LoadShape` and implement :meth:`LoadShape.tick`; the engine
calls it about once a second. It returns ``(user_count, spawn_rate)`` to
apply, or ``None`` to end the test. ``self.get_run_time()`` is the number of
seconds since the engine called :meth:`LoadShape.reset_time` (at the start of
the run; 0.0 before that).

Time is injected: ``reset_time(start, clock)`` takes the start instant and the
clock the engine reads (``SystemClock`` when omitted), so tests drive a shape
with a ``ManualClock``. Like users, ``LoadShape`` is abstract and a subclass
is concrete unless it sets ``abstract = True`` in its own body.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from phalanx.core.clock import Clock, SystemClock
from phalanx.scripting.reporting import describe_exception, exception_location

log = logging.getLogger("phalanx.runner")


class LoadShape:
    """Base class of load shapes (see the module docstring)."""

    abstract: ClassVar[bool] = True

    _clock: Clock | None = None
    _start: float | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "abstract" not in cls.__dict__:
            cls.abstract = False

    def reset_time(self, start: float | None = None, clock: Clock | None = None) -> None:
        """Start counting run time at ``start`` (``clock.monotonic()`` when omitted)."""
        self._clock = clock if clock is not None else SystemClock()
        self._start = self._clock.monotonic() if start is None else start

    def get_run_time(self) -> float:
        """Seconds since :meth:`reset_time` (0.0 before it)."""
        if self._clock is None or self._start is None:
            return 0.0
        return max(0.0, self._clock.monotonic() - self._start)

    def tick(self) -> tuple[int, float] | None:
        """``(user_count, spawn_rate)`` to apply now, or ``None`` to stop the test."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement tick()")


def check_tick(result: object, shape: str) -> tuple[int, float] | None:
    """Validate what a shape's ``tick()`` returned; ``ValueError``/``TypeError`` if invalid."""
    if result is None:
        return None
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError(
            f"{shape}.tick() must return (user_count, spawn_rate) or None, got {result!r}"
        )
    users, rate = result
    if isinstance(users, bool) or not isinstance(users, int) or users < 0:
        raise ValueError(f"{shape}.tick(): user_count must be an integer >= 0, got {users!r}")
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not math.isfinite(rate)
        or rate <= 0
    ):
        raise ValueError(f"{shape}.tick(): spawn_rate must be a positive number, got {rate!r}")
    return users, float(rate)


@dataclass(frozen=True, slots=True)
class ShapeFailure:
    """A shape's ``tick`` raised or returned something invalid: where, and what."""

    shape: str
    error_type: str
    message: str
    location: str


def next_target(shape: LoadShape) -> tuple[int, float] | ShapeFailure | None:
    """The shape's next ``(users, spawn_rate)``, ``None`` when it ends, or its failure.

    Never raises for what the script does: the local runner and the master
    both stop the run on a :class:`ShapeFailure` and say where it happened.
    """
    name = type(shape).__name__
    try:
        raw = shape.tick()
    except Exception as exc:
        return ShapeFailure(name, *describe_exception(exc), exception_location(exc))
    try:
        return check_tick(raw, name)
    except (TypeError, ValueError) as exc:  # tick() returned something invalid
        code = getattr(type(shape).tick, "__code__", None)
        where = f"{code.co_filename}:{code.co_firstlineno}" if code else "?"
        return ShapeFailure(name, *describe_exception(exc), where)


def cap_target(target: tuple[int, float], max_users: int, max_spawn_rate: float,
               warned: set[str]) -> tuple[int, float]:
    """Hold a shape's target within the run's safety limits, warning once each
    (``warned`` remembers which warnings were given)."""
    users, rate = target
    if users > max_users:
        if "shape_users" not in warned:
            warned.add("shape_users")
            log.warning("the load shape asks for %d users; capped at --max-users %d",
                        users, max_users)
        users = max_users
    if rate > max_spawn_rate:
        if "shape_rate" not in warned:
            warned.add("shape_rate")
            log.warning("the load shape asks for %g users/s; capped at --max-spawn-rate %g",
                        rate, max_spawn_rate)
        rate = max_spawn_rate
    return users, rate
