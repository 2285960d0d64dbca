"""The single-process runner: spawns simulated users on one asyncio loop and drives a run.

Ownership: every user runs in a task of one ``asyncio.TaskGroup`` owned by
:meth:`LocalRunner.run`; the control loop (ramping, run time, load shape,
stats flushes) runs in ``run`` itself. Nothing outlives ``run``.

Decisions come from :mod:`phalanx.engine.dispatch` (pure); this module only
acts on them. Stopping a user is cooperative: ``request_stop`` lets the user
finish its current task, a user that is waiting is cancelled at once, and one
still busy after ``stop_timeout`` is cancelled; ``on_stop`` runs in every
case (bounded, see :mod:`phalanx.scripting.user`). A user asked to stop
leaves the live set at once (it sits in a stopping set until its task ends),
so a ramp never picks the same user twice. A first stop request is graceful;
a second one, or :meth:`abort`, cancels every user at once without
``on_stop``. When every user has ended itself (``StopUser``) the run ends.

Stats: users record into one :class:`~phalanx.stats.Recorder`; every
``stats_interval`` the runner takes its delta, merges it into the
:class:`~phalanx.stats.Aggregator` and hands the new snapshot, with a
:class:`RunStatus`, to the ``on_update`` callback (the terminal view, later
the web UI and the master link).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from phalanx.core.clock import Clock, SystemClock
from phalanx.core.health import BlockedLoop, HealthReport
from phalanx.core.workers import WorkerSummary
from phalanx.engine.dispatch import (
    ClassSpec,
    next_step,
    ramp_allowance,
    seconds_until_step,
    target_counts,
)
from phalanx.engine.health import (
    CpuMonitor,
    HealthTracker,
    LoopWatchdog,
    MemoryGuard,
    resident_bytes,
)
from phalanx.http.budget import ConnectionBudget
from phalanx.scripting.context import UserContext
from phalanx.scripting.reporting import report_exception
from phalanx.scripting.shape import LoadShape, ShapeFailure, cap_target, next_target
from phalanx.scripting.user import User
from phalanx.stats import Aggregator, Recorder, StatsDelta, StatsSnapshot

log = logging.getLogger("phalanx.runner")


class RunState(enum.Enum):
    READY = "ready"
    SPAWNING = "spawning"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class StopReason(enum.Enum):
    RUN_TIME = "run_time"
    REQUESTED = "requested"
    SHAPE = "shape"
    SHAPE_ERROR = "shape_error"
    ABORTED = "aborted"
    NO_USERS = "no_users"


@dataclass(frozen=True, slots=True)
class RunStatus:
    """An immutable picture of the runner, for views."""

    state: RunState
    users: int
    target_users: int
    spawn_rate: float
    class_counts: tuple[tuple[str, int], ...]
    elapsed: float
    run_time: float | None
    stopping: int = 0
    spawn_paused: str | None = None  # why spawning is paused (a limit), or None
    cpu_percent: float = 0.0
    blocked_loops: int = 0
    workers: int | None = None  # alive workers, on a master (None: a single process)


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What to run. Built by the CLI from :class:`~phalanx.config.Settings`."""

    user_classes: tuple[type[User], ...]
    users: int
    spawn_rate: float
    run_time: float | None = None
    stop_timeout: float = 0.0
    stats_interval: float = 1.0
    shape: LoadShape | None = None
    shape_interval: float = 1.0
    max_users: int = 100_000
    max_spawn_rate: float = 10_000.0
    max_memory: int | None = None  # bytes of resident memory; spawning pauses above it
    connections: ConnectionBudget | None = None  # the run's open-connection cap (shared)
    class_counts: Mapping[str, int] | None = None  # exact users per class (a worker's share)
    watch_loop: bool = True
    block_threshold: float = 0.25
    cpu_threshold: float = 90.0


@dataclass(frozen=True, slots=True)
class RunResult:
    snapshot: StatsSnapshot
    status: RunStatus
    reason: StopReason
    started_at: float  # wall clock, epoch seconds
    ended_at: float
    health: HealthReport
    workers: tuple[WorkerSummary, ...] = ()  # a distributed run's workers, as last seen


UpdateCallback = Callable[[StatsSnapshot, RunStatus], None]
DeltaCallback = Callable[[StatsDelta], None]


class _LiveUser:
    __slots__ = ("name", "task", "timer", "user")

    def __init__(self, name: str, user: User, task: asyncio.Task[None]) -> None:
        self.name = name
        self.user = user
        self.task = task
        self.timer: asyncio.TimerHandle | None = None


class LocalRunner:
    """Runs one test on the current event loop. Use once: ``await runner.run(plan)``."""

    def __init__(
        self,
        context: UserContext,
        recorder: Recorder,
        aggregator: Aggregator,
        *,
        clock: Clock | None = None,
        on_update: UpdateCallback | None = None,
        on_delta: DeltaCallback | None = None,
    ) -> None:
        self._context = context
        self._recorder = recorder
        self._aggregator = aggregator
        self._clock = clock or SystemClock()
        self._on_update = on_update
        self._on_delta = on_delta
        self._classes: dict[str, type[User]] = {}
        self._specs: list[ClassSpec] = []
        # Keyed by id(user): O(1) to forget a user whose task ended (10,000 users stop at once).
        self._live: dict[str, dict[int, _LiveUser]] = {}
        # Users asked to stop but not finished yet: out of _live so a ramp never picks them twice.
        self._stopping: dict[int, _LiveUser] = {}
        self._warned: set[str] = set()
        self._dispatched: dict[str, int] = {}
        self._target: dict[str, int] = {}
        self._target_total = 0
        self._rate = 1.0
        self._ramp_started = 0.0
        self._ramp_steps = 0
        self._stop_timeout = 0.0
        self._state = RunState.READY
        self._started = 0.0
        self._run_time: float | None = None
        self._wake = asyncio.Event()
        self._stop_reason: StopReason | None = None
        self._aborted = False
        self._tg: asyncio.TaskGroup | None = None
        self._latest: StatsSnapshot | None = None
        self._health = HealthTracker()
        self._cpu = CpuMonitor()
        self._cpu_threshold = 90.0
        self._min_cpu_window = 0.5
        self._cpu_hot = False
        self._memory = MemoryGuard(None)
        self._connections: ConnectionBudget | None = None
        self._pause_reason: str | None = None

    # --- control interface (called from signal handlers, the CLI, later the web) -----

    def request_stop(self) -> None:
        """Stop gracefully: users finish their task (up to ``stop_timeout``).

        Once the run is already stopping, a further request means "now" (:meth:`abort`).
        """
        if self._state is RunState.STOPPING:
            self.abort()
            return
        if self._stop_reason is None:
            self._stop_reason = StopReason.REQUESTED
        self._wake.set()

    def abort(self) -> None:
        """Stop now: cancel every user without waiting (``on_stop`` does not run)."""
        self._aborted = True
        if self._stop_reason is None or self._stop_reason is StopReason.REQUESTED:
            self._stop_reason = StopReason.ABORTED
        everyone = [*self._stopping.values(),
                    *(live for users in self._live.values() for live in users.values())]
        for live in everyone:
            live.user.abort()
            live.task.cancel()
        self._wake.set()

    def change_target(self, users: int, spawn_rate: float | None = None) -> None:
        """Ramp to ``users`` users (at ``spawn_rate``, or the current rate) while running."""
        if users < 0:
            raise ValueError("users must be >= 0")
        self._set_rate(spawn_rate)
        self._target = target_counts(self._specs, users)
        self._target_total = sum(self._target.values())
        if self._target_total < users and "fixed_count" not in self._warned:
            self._warned.add("fixed_count")
            log.warning(
                "only %d of %d users can run: the classes' fixed_count values add up to %d "
                "and no class without fixed_count has a weight", self._target_total, users,
                self._target_total,
            )
        self._restart_ramp()

    def change_class_targets(self, counts: Mapping[str, int],
                             spawn_rate: float | None = None) -> None:
        """Ramp to exactly ``counts`` users per class (a master's share for this worker).

        Classes not named go to zero; a name that is not one of the run's
        classes is a ``ValueError`` (nothing changes).
        """
        unknown = sorted(set(counts) - set(self._classes)) if self._classes else []
        if unknown:
            raise ValueError(f"unknown user class(es): {', '.join(unknown)}")
        if any(count < 0 for count in counts.values()):
            raise ValueError("user counts must be >= 0")
        self._set_rate(spawn_rate)
        self._target = {spec.name: int(counts.get(spec.name, 0)) for spec in self._specs} \
            if self._specs else dict(counts)
        self._target_total = sum(self._target.values())
        self._restart_ramp()

    def _set_rate(self, spawn_rate: float | None) -> None:
        if spawn_rate is not None:
            if not spawn_rate > 0:
                raise ValueError("spawn_rate must be > 0")
            self._rate = spawn_rate

    def _restart_ramp(self) -> None:
        self._ramp_started = self._clock.monotonic()
        self._ramp_steps = 0
        if self._state is RunState.RUNNING:
            self._state = RunState.SPAWNING
        self._wake.set()

    def reset_stats(self) -> None:
        """Forget the statistics so far (totals, window, errors); the run goes on."""
        now = self._clock.monotonic()
        self._recorder.take_delta(now)
        self._aggregator.reset(now)
        self._latest = self._aggregator.snapshot(now)

    @property
    def state(self) -> RunState:
        return self._state

    @property
    def stop_requested(self) -> bool:
        return self._stop_reason is not None

    def status(self) -> RunStatus:
        now = self._clock.monotonic()
        return RunStatus(
            state=self._state,
            users=sum(len(users) for users in self._live.values()),
            target_users=self._target_total,
            spawn_rate=self._rate,
            class_counts=tuple((name, len(users)) for name, users in self._live.items()),
            elapsed=max(0.0, now - self._started) if self._started else 0.0,
            run_time=self._run_time,
            stopping=len(self._stopping),
            spawn_paused=self._pause_reason,
            cpu_percent=self._health.cpu_percent,
            blocked_loops=self._health.blocked_count,
        )

    # --- the run ---------------------------------------------------------------------

    async def run(self, plan: RunPlan) -> RunResult:
        if self._state is not RunState.READY:
            raise RuntimeError("a LocalRunner runs once")
        if not plan.user_classes:
            raise ValueError("no user classes to run")
        self._classes = {cls.__name__: cls for cls in plan.user_classes}
        self._specs = [
            ClassSpec(cls.__name__, int(cls.weight), int(cls.fixed_count))
            for cls in plan.user_classes
        ]
        self._live = {name: {} for name in self._classes}
        self._dispatched = dict.fromkeys(self._classes, 0)
        self._stop_timeout = plan.stop_timeout
        self._run_time = plan.run_time
        started_wall = self._clock.wall()
        self._started = self._clock.monotonic()
        self._aggregator.reset(self._started)
        self._recorder.take_delta(self._started)
        self._state = RunState.SPAWNING
        self._cpu_threshold = plan.cpu_threshold
        self._min_cpu_window = plan.stats_interval / 2
        self._memory = MemoryGuard(plan.max_memory)
        self._connections = plan.connections
        self._check_limits()
        self._cpu = CpuMonitor()
        watchdog = None
        if plan.watch_loop:
            interval = min(0.05, plan.block_threshold / 2)
            watchdog = LoopWatchdog(threshold=plan.block_threshold, interval=interval)
        if plan.shape is not None:
            plan.shape.reset_time(self._started, clock=self._clock)
            self._rate = plan.spawn_rate
        elif plan.class_counts is not None:
            self.change_class_targets(plan.class_counts, plan.spawn_rate)
        else:
            self.change_target(plan.users, plan.spawn_rate)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                heartbeat = None
                if watchdog is not None:
                    watchdog.start()
                    heartbeat = tg.create_task(watchdog.heartbeat(self._on_blocked))
                await self._control(plan)
                self._state = RunState.STOPPING
                self._publish()
                self._stop_all()
                if heartbeat is not None:
                    heartbeat.cancel()
        finally:
            if watchdog is not None:
                watchdog.stop()
            self._tg = None
            self._state = RunState.STOPPED
        snapshot = self._flush()
        return RunResult(
            snapshot=snapshot,
            status=self.status(),
            reason=self._stop_reason or StopReason.REQUESTED,
            started_at=started_wall,
            ended_at=self._clock.wall(),
            health=self._health.report(),
        )

    async def _control(self, plan: RunPlan) -> None:
        next_flush = self._started + plan.stats_interval
        next_shape = self._started
        end = self._started + plan.run_time if plan.run_time is not None else None
        while True:
            now = self._clock.monotonic()
            if self._stop_reason is not None:
                return
            if end is not None and now >= end:
                self._stop_reason = StopReason.RUN_TIME
                return
            if plan.shape is not None and now >= next_shape:
                tick = self._tick_shape(plan.shape)
                if tick is None:
                    return
                users, rate = cap_target(tick, plan.max_users, plan.max_spawn_rate,
                                         self._warned)
                if users != self._target_total or rate != self._rate:
                    self.change_target(users, rate)
                next_shape = now + plan.shape_interval
            self._ramp(now)
            if self._all_users_gone(plan):
                log.warning("every user has stopped itself (StopUser); ending the run")
                self._stop_reason = StopReason.NO_USERS
                return
            if now >= next_flush:
                self._publish()
                next_flush = max(next_flush + plan.stats_interval, now)
            deadline = next_flush
            if end is not None:
                deadline = min(deadline, end)
            if plan.shape is not None:
                deadline = min(deadline, next_shape)
            due = self._next_ramp_due(now)
            if due is not None:
                deadline = min(deadline, due)
            self._wake.clear()
            timeout = max(0.0, deadline - self._clock.monotonic())
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # of the run that races with the wake-up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def _all_users_gone(self, plan: RunPlan) -> bool:
        """True when users were dispatched but all ended on their own (nothing to wait for)."""
        if plan.shape is not None or self._target_total == 0 or self._stopping:
            return False
        if next_step(self._dispatched, self._target) is not None:
            return False
        return not any(self._live.values())

    def _tick_shape(self, shape: LoadShape) -> tuple[int, float] | None:
        """The shape's next target; ``None`` (and a stop reason) when it ends or breaks."""
        target = next_target(shape)
        if isinstance(target, ShapeFailure):
            self._recorder.record_exception(f"{target.shape}.tick", target.error_type,
                                            target.message, target.location)
            log.error("load shape %s failed at %s, stopping the run: %s: %s", target.shape,
                      target.location, target.error_type, target.message)
            self._stop_reason = StopReason.SHAPE_ERROR
            return None
        if target is None:
            self._stop_reason = StopReason.SHAPE
        return target

    def _next_ramp_due(self, now: float) -> float | None:
        step = next_step(self._dispatched, self._target)
        if step is None or (step[1] > 0 and self._pause_reason is not None):
            return None  # a paused ramp is looked at again at the next stats flush
        wait = seconds_until_step(self._rate, now - self._ramp_started, self._ramp_steps)
        return now + wait

    def _ramp(self, now: float) -> None:
        allowed = ramp_allowance(self._rate, now - self._ramp_started) - self._ramp_steps
        while allowed > 0:
            step = next_step(self._dispatched, self._target)
            if step is None:
                break
            name, delta = step
            if delta > 0 and self._pause_reason is not None:
                break
            if delta > 0:
                self._start_user(name)
            else:
                self._stop_one(name)
            self._dispatched[name] += delta
            self._ramp_steps += 1
            allowed -= 1
        if next_step(self._dispatched, self._target) is None and self._state is RunState.SPAWNING:
            self._state = RunState.RUNNING
            log.info(
                "ramp complete: %d users (%s)",
                self._target_total,
                ", ".join(f"{name}: {count}" for name, count in self._target.items()),
            )

    def _start_user(self, name: str) -> None:
        if self._tg is None:
            raise RuntimeError("users start only while the run is in progress")
        user = self._classes[name](self._context)
        live = _LiveUser(name, user, self._tg.create_task(self._user_main(name, user)))
        self._live[name][id(user)] = live

    async def _user_main(self, name: str, user: User) -> None:
        try:
            await user.run()
        except (Exception, SystemExit) as exc:  # escaped the user's own handling
            # Recorded like a task's exception, logged once per (class, type) in the run.
            report_exception(self._context, name, exc)
        finally:
            self._forget(name, user)

    def _forget(self, name: str, user: User) -> None:
        live = self._stopping.pop(id(user), None)
        if live is not None:
            if live.timer is not None:
                live.timer.cancel()
            return
        users = self._live.get(name)
        if users is not None:
            users.pop(id(user), None)

    def _stop_one(self, name: str) -> None:
        users = self._live[name]
        if users:
            self._stop_user(users.popitem()[1])

    def _stop_user(self, live: _LiveUser) -> None:
        """Move a live user to the stopping set and ask it to stop (see the module docstring)."""
        self._stopping[id(live.user)] = live
        live.user.request_stop()
        if self._aborted or (
            (self._stop_timeout <= 0 or live.user.is_waiting) and not live.user.is_cleaning_up
        ):
            live.task.cancel()
        else:
            live.timer = asyncio.get_running_loop().call_later(
                self._stop_timeout, self._stop_timed_out, live
            )

    @staticmethod
    def _stop_timed_out(live: _LiveUser) -> None:
        """The stop timeout cuts a busy task, never a user already in on_stop/cleanup
        (on_stop has its own bound there)."""
        if not live.user.is_cleaning_up:
            live.task.cancel()

    def _stop_all(self) -> None:
        for users in self._live.values():
            while users:
                self._stop_user(users.popitem()[1])

    def _flush(self) -> StatsSnapshot:
        now = self._clock.monotonic()
        delta = self._recorder.take_delta(now)
        if self._on_delta is not None:
            self._on_delta(delta)
        self._aggregator.apply(delta)
        self._latest = self._aggregator.snapshot(now)
        return self._latest

    def _on_blocked(self, event: BlockedLoop) -> None:
        if self._health.blocked(event):
            log.warning(
                "the event loop was blocked for %.0f ms by synchronous code at %s (in %s): "
                "latencies measured meanwhile are inflated; use awaitable calls "
                "(await asyncio.sleep, self.client) instead of blocking ones",
                event.seconds * 1000, event.location, event.function,
            )

    def _sample_cpu(self, min_window: float) -> None:
        percent = self._cpu.sample(min_window)
        if percent is None:
            return
        hot = self._health.cpu(percent, self._cpu_threshold)
        if hot and not self._cpu_hot:
            log.warning(
                "this load generator uses %.0f%% of a CPU core: its figures may be skewed; "
                "run fewer users per process or more processes", percent,
            )
        self._cpu_hot = hot

    @property
    def health(self) -> HealthReport:
        return self._health.report()

    def _check_limits(self) -> None:
        """Pause spawning while a resource limit is reached; resume (without a burst) after."""
        rss = resident_bytes()
        reason = None
        if self._memory.update(rss):
            reason = "memory"
        elif self._connections is not None and (
            self._connections.full
            or (self._pause_reason == "connections"
                and self._connections.open >= self._connections.resume_below)
        ):
            reason = "connections"
        previous, self._pause_reason = self._pause_reason, reason
        if reason == previous:
            return
        if reason == "memory" and rss is not None and self._memory.limit:
            log.warning(
                "resident memory %d MiB is above --max-memory %d MiB: spawning paused "
                "(running users go on)", rss >> 20, self._memory.limit >> 20,
            )
        elif reason == "connections" and self._connections is not None:
            log.warning(
                "%d open connections reach --max-connections: spawning paused "
                "(new connections beyond it fail with kind connection_limit)",
                self._connections.limit,
            )
        elif reason is None:
            log.warning("back under the %s limit: spawning resumes", previous)
            # the ramp restarts from here at its rate, with no burst to catch up
            self._ramp_started = self._clock.monotonic()
            self._ramp_steps = 0
            self._wake.set()

    def _publish(self) -> None:
        self._check_limits()
        self._sample_cpu(self._min_cpu_window)
        snapshot = self._flush()
        if self._on_update is not None:
            self._on_update(snapshot, self.status())

    @property
    def latest(self) -> StatsSnapshot | None:
        return self._latest
