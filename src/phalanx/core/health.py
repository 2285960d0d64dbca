"""Immutable facts about the load generator's own health during a run.

Produced by :mod:`phalanx.engine.health`, shown by the terminal view and kept
in the JSON summary. A blocked event loop or a saturated CPU means the
latencies measured meanwhile are inflated by the generator, not the target.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BlockedLoop:
    """The loop did not run for ``seconds``; ``location`` is where user code was at the time."""

    seconds: float
    location: str
    function: str


@dataclass(frozen=True, slots=True)
class BlockedSummary:
    """All blocked stretches seen at one location."""

    location: str
    function: str
    count: int
    max_seconds: float
    total_seconds: float


@dataclass(frozen=True, slots=True)
class HealthReport:
    blocked: tuple[BlockedSummary, ...] = ()
    cpu_percent: float = 0.0
    max_cpu_percent: float = 0.0
    cpu_warnings: int = 0

    @property
    def blocked_count(self) -> int:
        return sum(item.count for item in self.blocked)

    @property
    def healthy(self) -> bool:
        return not self.blocked and self.cpu_warnings == 0
