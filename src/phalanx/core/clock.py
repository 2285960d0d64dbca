"""Time as an injected dependency.

Pure logic takes ``now`` (seconds, monotonic) as an argument; the code at the
edge reads it from a :class:`Clock`. Tests use :class:`ManualClock`.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A source of monotonic time (seconds) and wall time (epoch seconds)."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...


class SystemClock:
    """The real clocks: ``time.perf_counter`` and ``time.time``."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.perf_counter()

    def wall(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to (tests)."""

    __slots__ = ("_mono", "_wall")

    def __init__(self, monotonic: float = 0.0, wall: float = 1_700_000_000.0) -> None:
        self._mono = monotonic
        self._wall = wall

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        self._mono += seconds
        self._wall += seconds
