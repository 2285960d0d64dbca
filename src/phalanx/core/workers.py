"""Immutable facts about the workers of a distributed run, for views and reports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WorkerSummary:
    """One worker as the master last saw it.

    ``fingerprint`` names its authenticated key (never a name it chose);
    ``name`` is the allow-list label (or what it said, for display only).
    """

    name: str
    fingerprint: str
    state: str  # ready, running, missing, gone
    users: int
    cpu_percent: float
    max_cpu_percent: float
    rss_bytes: int
    cpu_warning: bool
