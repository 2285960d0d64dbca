"""Health of the load generator itself: a blocked event loop and a saturated CPU.

Both distort every latency figure silently, so both are watched during a run
and reported (log, live view, summary, JSON).

**Blocked loop.** A heartbeat task on the loop stamps the time every
``interval``; a daemon thread (:class:`LoopWatchdog`) checks the stamp. When
the stamp is older than ``threshold`` the loop is blocked by synchronous code
(``time.sleep``, a sync HTTP library, heavy CPU in a task): the thread then
samples the loop thread's current stack with ``sys._current_frames`` every
``interval`` for as long as the stall lasts, keeping the innermost frame that
belongs to user code (not phalanx, not the standard library). When the loop
comes back, the heartbeat sees the gap and reports a :class:`BlockedLoop` at
the location sampled most often during that stall (the samples are tagged
with the beat they follow, so two stalls never mix). The thread never touches
loop objects; the two sides share two attributes written by one side each.

**CPU.** :class:`CpuMonitor` turns process CPU time deltas into a percentage
of one core; above ``threshold`` (default 90%) it counts a warning.

:class:`HealthTracker` folds the events into an immutable
:class:`~phalanx.core.health.HealthReport` (per location: count, worst and
total blocked time).
"""

from __future__ import annotations

import asyncio
import os
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from phalanx.core.health import BlockedLoop, BlockedSummary, HealthReport

_PHALANX_DIR = str(Path(__file__).resolve().parents[1])
_STDLIB_DIRS = tuple(
    {str(Path(p).resolve()) for key in ("stdlib", "platstdlib", "purelib", "platlib")
     if (p := sysconfig.get_paths().get(key))}
)


def is_user_frame(filename: str) -> bool:
    """True for code the user wrote (not phalanx, not the standard library or site-packages)."""
    if filename.startswith("<"):
        return False
    try:
        resolved = str(Path(filename).resolve())
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return False
    if resolved.startswith(_PHALANX_DIR):
        return False
    return not resolved.startswith(_STDLIB_DIRS)


def user_location(frame: FrameType | None) -> tuple[str, str]:
    """``(file:line, function)`` of the innermost user frame of a stack, or of its top frame."""
    top: tuple[str, str] | None = None
    while frame is not None:
        code = frame.f_code
        here = (f"{code.co_filename}:{frame.f_lineno}", code.co_qualname)
        if top is None:
            top = here
        if is_user_frame(code.co_filename):
            return here
        frame = frame.f_back
    return top or ("?", "?")


class LoopWatchdog:
    """Samples where the loop thread is stuck; see the module docstring."""

    def __init__(self, *, threshold: float = 0.25, interval: float = 0.05) -> None:
        if threshold <= interval:
            raise ValueError("threshold must be larger than interval")
        self.threshold = threshold
        self.interval = interval
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()  # written by the loop side only
        # Written by the thread only: (the beat this stall follows, samples per location).
        self._samples: tuple[float, dict[tuple[str, str], int]] = (-1.0, {})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._thread = threading.Thread(target=self._watch, name="phalanx-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                beat = self._beat
                if time.monotonic() - beat > self.threshold:
                    # Sample the whole stall: the location seen most often is reported.
                    stall, counts = self._samples
                    if stall != beat:
                        counts = {}
                        self._samples = (beat, counts)
                    frame = sys._current_frames().get(self._loop_thread)
                    location = user_location(frame)
                    del frame
                    counts[location] = counts.get(location, 0) + 1
            except Exception:  # noqa: S112 - a diagnostic must never die or crash the run
                continue

    async def heartbeat(self, report: Callable[[BlockedLoop], None]) -> None:
        """Run on the loop until cancelled; calls ``report`` after each blocked stretch."""
        while True:
            before = time.monotonic()
            self._beat = before
            await asyncio.sleep(self.interval)
            gap = time.monotonic() - before - self.interval
            if gap > self.threshold:
                stall, counts = self._samples
                sample = max(counts, key=counts.__getitem__) if stall == before and counts else None
                location, function = sample or ("?", "?")
                report(BlockedLoop(gap, location, function))


class CpuMonitor:
    """CPU use of this process, as a percentage of one core, between two calls."""

    def __init__(self) -> None:
        self._cpu = time.process_time()
        self._wall = time.monotonic()

    def sample(self, min_window: float = 0.0) -> float | None:
        """Percent of one core since the last sample; ``None`` if less than ``min_window``
        seconds passed (a short window makes any burst look like saturation)."""
        cpu, wall = time.process_time(), time.monotonic()
        elapsed = wall - self._wall
        if elapsed < min_window:
            return None
        percent = 100.0 * (cpu - self._cpu) / elapsed if elapsed > 0 else 0.0
        self._cpu, self._wall = cpu, wall
        return percent


class HealthTracker:
    """Accumulates health events of one run (loop thread only)."""

    MAX_LOCATIONS = 100

    def __init__(self) -> None:
        self._blocked: dict[tuple[str, str], list[float]] = {}
        self._cpu = 0.0
        self._max_cpu = 0.0
        self._cpu_warnings = 0

    def blocked(self, event: BlockedLoop) -> bool:
        """Record a blocked stretch; True when its location is new (worth a full log line)."""
        key = (event.location, event.function)
        stats = self._blocked.get(key)
        if stats is None:
            if len(self._blocked) >= self.MAX_LOCATIONS:
                key = ("<other>", "<other>")
                stats = self._blocked.setdefault(key, [0, 0.0, 0.0])
            else:
                self._blocked[key] = [1, event.seconds, event.seconds]
                return True
        stats[0] += 1
        stats[1] = max(stats[1], event.seconds)
        stats[2] += event.seconds
        return False

    def cpu(self, percent: float, threshold: float) -> bool:
        """Record a CPU sample; True when it crosses ``threshold`` (a warning)."""
        self._cpu = percent
        self._max_cpu = max(self._max_cpu, percent)
        if percent > threshold:
            self._cpu_warnings += 1
            return True
        return False

    @property
    def cpu_percent(self) -> float:
        return self._cpu

    @property
    def blocked_count(self) -> int:
        return sum(int(stats[0]) for stats in self._blocked.values())

    def report(self) -> HealthReport:
        blocked = tuple(
            BlockedSummary(location, function, int(count), max_s, total_s)
            for (location, function), (count, max_s, total_s) in sorted(
                self._blocked.items(), key=lambda item: -item[1][2]
            )
        )
        return HealthReport(blocked, self._cpu, self._max_cpu, self._cpu_warnings)


def resident_bytes() -> int | None:
    """This process's resident memory now (Linux ``/proc``); ``None`` where unknown."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def physical_memory_bytes() -> int | None:
    """Memory this process may use: the machine's RAM, or a smaller cgroup limit
    (containers, Kubernetes: the OOM killer acts on the cgroup); ``None`` where unknown."""
    try:
        total: int | None = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        total = None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as limit_file:
                text = limit_file.read().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit() and (total is None or int(text) < total):
            total = int(text)
    return total


class MemoryGuard:
    """Pauses spawning while resident memory is above ``limit`` bytes.

    Hysteresis: paused above ``limit``, resumed below 90% of it, so the
    decision does not flap around the line. Pure: the caller passes the
    reading; :meth:`update` returns the new state.
    """

    RESUME_FRACTION = 0.9

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.paused = False

    def update(self, rss: int | None) -> bool:
        if self.limit is None or rss is None:
            return self.paused
        if not self.paused and rss > self.limit:
            self.paused = True
        elif self.paused and rss < self.limit * self.RESUME_FRACTION:
            self.paused = False
        return self.paused

