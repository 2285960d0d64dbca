"""Wait times: how long a simulated user pauses between two tasks.

A wait time is any callable taking the user (or TaskSet) instance and returning
seconds. The factories here build such callables; because they are plain
functions, assigning one as a class attribute (``wait_time = between(1, 2)``)
makes it a method, exactly like a hand-written ``def wait_time(self) -> float``.

Pure module: no I/O, no clock reads. What a wait time needs from the instance
is read through two documented attributes that the run loop maintains:

- ``random``: the run's seeded :class:`random.Random` (reproducible runs);
- ``last_task_duration``: seconds (monotonic) that the task which just ended
  took, set by the run loop right before it asks for the wait time (0.0 before
  the first task). ``task_started_at`` (monotonic start of the current task) is
  kept beside it for custom wait times.

Invariants: every factory validates its arguments eagerly (``ValueError`` with
the offending value) and every returned callable yields a finite number >= 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from random import Random

WaitTime = Callable[[Any], float]
"""The type of a wait time: ``instance -> seconds``."""


class HasRandom(Protocol):
    """What :func:`between` reads from the instance."""

    @property
    def random(self) -> Random: ...


class HasTaskTiming(Protocol):
    """What :func:`constant_pacing` reads from the instance."""

    @property
    def last_task_duration(self) -> float: ...


def _seconds(name: str, value: float) -> float:
    """Check that ``value`` is a finite, non-negative number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if seconds < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return seconds


def between(min_wait: float, max_wait: float) -> WaitTime:
    """Wait a uniformly random time in ``[min_wait, max_wait]`` seconds."""
    low = _seconds("between(): min_wait", min_wait)
    high = _seconds("between(): max_wait", max_wait)
    if low > high:
        raise ValueError(
            f"between(): min_wait ({min_wait!r}) is greater than max_wait ({max_wait!r})"
        )
    span = high - low

    def wait_time(instance: HasRandom) -> float:
        return low + span * instance.random.random()

    wait_time.__qualname__ = f"between({min_wait!r}, {max_wait!r})"
    return wait_time


def constant(seconds: float) -> WaitTime:
    """Always wait ``seconds``."""
    value = _seconds("constant(): seconds", seconds)

    def wait_time(instance: object) -> float:
        return value

    wait_time.__qualname__ = f"constant({seconds!r})"
    return wait_time


def pacing_delay(interval: float, task_duration: float) -> float:
    """Seconds to wait so that one task starts every ``interval`` seconds.

    A task that took longer than ``interval`` is followed at once (0.0): the
    pace is not caught up by running later tasks back to back.
    """
    return max(0.0, interval - task_duration)


def constant_pacing(seconds: float) -> WaitTime:
    """Wait so that the time from one task's start to the next's is ``seconds``."""
    interval = _seconds("constant_pacing(): seconds", seconds)

    def wait_time(instance: HasTaskTiming) -> float:
        return pacing_delay(interval, instance.last_task_duration)

    wait_time.__qualname__ = f"constant_pacing({seconds!r})"
    return wait_time


def constant_throughput(task_runs_per_second: float) -> WaitTime:
    """Pace each user at ``task_runs_per_second`` tasks per second at most.

    Equivalent to ``constant_pacing(1 / task_runs_per_second)``.
    """
    if isinstance(task_runs_per_second, bool) or not isinstance(task_runs_per_second, int | float):
        raise TypeError(
            f"constant_throughput() takes a number of tasks per second, "
            f"got {task_runs_per_second!r}"
        )
    if not (math.isfinite(task_runs_per_second) and task_runs_per_second > 0):
        raise ValueError(
            f"constant_throughput() needs a positive, finite number of tasks per second, "
            f"got {task_runs_per_second!r}"
        )
    wait_time = constant_pacing(1.0 / task_runs_per_second)
    wait_time.__qualname__ = f"constant_throughput({task_runs_per_second!r})"
    return wait_time
