"""What every exporter receives: the final snapshot plus plain facts about the run.

Exporters depend on this module and on :mod:`phalanx.stats` only, never on
the engine, so they can be fed by a local run, a master, or a stored run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from phalanx.core.health import HealthReport
from phalanx.core.workers import WorkerSummary
from phalanx.stats import StatsSnapshot


@dataclass(frozen=True, slots=True)
class RunReport:
    snapshot: StatsSnapshot
    script: str | None
    script_sha256: str | None
    host: str | None
    users: int
    spawn_rate: float
    run_time: float | None
    started_at: float  # epoch seconds
    ended_at: float
    stop_reason: str
    passed: bool
    exit_code: int
    reasons: tuple[str, ...]
    health: HealthReport = field(default_factory=HealthReport)
    shape: str | None = None  # the LoadShape class that drove users and rate, if any
    workers: tuple[WorkerSummary, ...] = ()  # empty for a single-process run


def ms(seconds: float) -> float:
    """Seconds to milliseconds, rounded to microseconds (enough for any display)."""
    return round(seconds * 1000.0, 3)


def percentile_label(quantile: float) -> str:
    """``0.5 -> "50"``, ``0.999 -> "99.9"``, ``1.0 -> "100"``."""
    return f"{quantile * 100:.4f}".rstrip("0").rstrip(".")
