"""Generator health: a blocked event loop is detected and the blocking line is named."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import pytest

from phalanx import StopUser, User, constant, task
from phalanx.core.health import BlockedLoop
from phalanx.engine.health import (
    CpuMonitor,
    HealthTracker,
    LoopWatchdog,
    MemoryGuard,
    is_user_frame,
    resident_bytes,
)
from phalanx.engine.runner import LocalRunner, RunPlan
from phalanx.scripting.context import UserContext
from phalanx.stats import Aggregator, Recorder

pytestmark = pytest.mark.timeout(30)


def blocking_call() -> None:
    time.sleep(0.4)  # the blocking line the watchdog must name


class Blocker(User):
    wait_time = constant(0.05)

    @task
    async def block(self) -> None:
        blocking_call()
        raise StopUser  # one block per user is enough for the test


async def first_stall(watchdog: LoopWatchdog, *blockers: Callable[[], None]) -> BlockedLoop:
    """Run ``blockers`` back to back on the loop; return the first stall reported."""
    events: list[BlockedLoop] = []
    reported = asyncio.Event()

    def report(event: BlockedLoop) -> None:
        events.append(event)
        reported.set()

    watchdog.start()
    try:
        async with asyncio.TaskGroup() as tg:
            beat = tg.create_task(watchdog.heartbeat(report))
            await asyncio.sleep(0)  # the heartbeat stamps its first beat, then waits
            for blocker in blockers:
                blocker()
            await asyncio.wait_for(reported.wait(), timeout=10)
            beat.cancel()
    finally:
        watchdog.stop()
    return events[0]


async def test_watchdog_names_the_line_that_blocked_the_loop() -> None:
    event = await first_stall(LoopWatchdog(threshold=0.15, interval=0.02), blocking_call)
    assert event.seconds >= 0.15
    line = blocking_call.__code__.co_firstlineno + 1
    assert event.location.endswith(f"test_engine_health.py:{line}")
    assert event.function == "blocking_call"


async def test_a_healthy_loop_reports_nothing() -> None:
    watchdog = LoopWatchdog(threshold=5.0, interval=0.02)  # far above any CI hiccup
    events: list[BlockedLoop] = []
    watchdog.start()
    try:
        task_ = asyncio.create_task(watchdog.heartbeat(events.append))
        for _ in range(10):
            await asyncio.sleep(0.01)
        task_.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task_
    finally:
        watchdog.stop()
    assert events == []


async def test_runner_reports_blocking_users_in_its_health() -> None:
    recorder = Recorder(0.0)
    runner = LocalRunner(UserContext(recorder=recorder, random=random.Random(1)), recorder,
                         Aggregator(start=0.0))
    result = await runner.run(RunPlan((Blocker,), users=1, spawn_rate=100, run_time=0.8,
                                      block_threshold=0.15, stats_interval=0.1))
    assert result.health.blocked_count >= 1
    [summary] = result.health.blocked
    assert summary.function == "blocking_call"
    assert summary.max_seconds >= 0.15


def test_tracker_groups_events_by_location_and_bounds_them() -> None:
    tracker = HealthTracker()
    assert tracker.blocked(BlockedLoop(0.3, "a.py:1", "f"))
    assert not tracker.blocked(BlockedLoop(0.5, "a.py:1", "f"))
    for i in range(HealthTracker.MAX_LOCATIONS + 10):
        tracker.blocked(BlockedLoop(0.3, f"b.py:{i}", "g"))
    report = tracker.report()
    assert len(report.blocked) == HealthTracker.MAX_LOCATIONS + 1  # + the "<other>" row
    first = next(b for b in report.blocked if b.location == "a.py:1")
    assert (first.count, first.max_seconds) == (2, 0.5)
    assert first.total_seconds == pytest.approx(0.8)


def test_cpu_warning_is_counted_above_the_threshold() -> None:
    tracker = HealthTracker()
    assert not tracker.cpu(50.0, 90.0)
    assert tracker.cpu(95.0, 90.0)
    report = tracker.report()
    assert (report.cpu_warnings, report.max_cpu_percent) == (1, 95.0)
    assert CpuMonitor().sample() >= 0.0


def test_user_frames_exclude_phalanx_and_the_standard_library() -> None:
    assert is_user_frame(__file__)
    assert not is_user_frame(asyncio.__file__)
    assert not is_user_frame(random.__file__)
    import phalanx.engine.runner as runner_module

    assert not is_user_frame(runner_module.__file__)
    assert not is_user_frame("<string>")


def test_memory_guard_pauses_above_the_limit_and_resumes_below_ninety_percent() -> None:
    guard = MemoryGuard(1000)
    assert not guard.update(900)
    assert guard.update(1001)
    assert guard.update(950)  # between 90% and the limit: still paused (no flapping)
    assert not guard.update(899)
    assert not MemoryGuard(None).update(10**12)
    assert not guard.update(None)


def test_resident_memory_is_read() -> None:
    rss = resident_bytes()
    assert rss is None or rss > 1 << 20


async def test_a_tiny_memory_limit_pauses_spawning_and_nothing_crashes() -> None:
    seen = []
    recorder = Recorder(0.0)
    runner = LocalRunner(UserContext(recorder=recorder, random=random.Random(1)), recorder,
                         Aggregator(start=0.0), on_update=lambda _s, status: seen.append(status))
    result = await runner.run(RunPlan((Idle,), users=50, spawn_rate=20, run_time=0.5,
                                      stats_interval=0.05, max_memory=16 << 20))
    assert any(status.spawn_paused == "memory" for status in seen)
    assert max(status.users for status in seen) < 50
    assert result.status.users == 0


class Idle(User):
    wait_time = constant(3600)

    @task
    async def nothing(self) -> None:
        pass


async def test_a_full_connection_budget_pauses_spawning() -> None:
    from phalanx.http.budget import ConnectionBudget

    budget = ConnectionBudget(1)
    budget.reserve()
    seen = []
    recorder = Recorder(0.0)
    runner = LocalRunner(UserContext(recorder=recorder, random=random.Random(1)), recorder,
                         Aggregator(start=0.0), on_update=lambda _s, status: seen.append(status))
    await runner.run(RunPlan((Idle,), users=5, spawn_rate=1000, run_time=0.2,
                             stats_interval=0.05, connections=budget))
    assert all(status.users == 0 for status in seen)
    assert any(status.spawn_paused == "connections" for status in seen)


def short_blocker() -> None:
    time.sleep(0.15)


def long_blocker() -> None:
    time.sleep(0.8)


async def test_a_stall_is_blamed_on_where_the_loop_spent_most_of_it() -> None:
    # the two run in one stall: the loop never gets a turn in between
    event = await first_stall(LoopWatchdog(threshold=0.1, interval=0.02),
                              short_blocker, long_blocker)
    assert event.function == "long_blocker"
