"""The master's driver: admits workers, spreads the load over them, merges their stats.

Phases of :meth:`MasterDriver.run`
----------------------------------
1. **Waiting** until ``expect_workers`` workers joined (or
   ``expect_workers_timeout`` passed: :class:`ClusterError`, nothing ran).
2. **Running**: the cluster-wide users per class
   (:func:`~phalanx.engine.dispatch.target_counts`) are split over the alive
   workers (:func:`~phalanx.cluster.distribution.rebalance`, even per class,
   fewest restarts) and each worker gets a ``Start`` with its share and its
   part of the global spawn rate (:func:`~phalanx.cluster.distribution.ramp_plan`).
   A worker that joins, leaves (``Bye``) or goes missing (silent for
   ``heartbeat_timeout``) triggers a new split: its users go to the others.
   ``run_time``, a load shape, :meth:`request_stop` or :meth:`abort` end it.
3. **Stopping**: ``Stop`` to every worker, then waiting (at most
   ``stop_timeout + final_grace``, and up to :data:`MAX_BACKLOG_WAIT` more
   while messages sent in time are still queued) for each to report
   ``stopped``: its last
   stats delta came before that heartbeat on the same ordered link, so the
   summary holds every request the workers made.

Admission (``Hello``): the worker must speak this protocol and phalanx
version and have loaded a script with the same sha256; otherwise it gets
``Refuse`` with the reason, and the master logs the worker's key fingerprint
and the reason. Its identity is the authenticated key the transport gives
(never the name it sends).

What a worker can do to the master: nothing that crashes it. Invalid frames
are dropped by the transport; a message rate above ``message_rate`` is
throttled (:mod:`phalanx.cluster.message_rate`) and a worker that keeps it up
is told to ``Rejoin`` and forgotten; a stats delta that fails validation is
dropped and counted (logged once per worker). Workers never receive the
master's options or secrets: ``Start`` holds run id, host, counts, rate and
stop timeout, nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from phalanx.cluster.distribution import ramp_plan, rebalance
from phalanx.cluster.link_watch import next_heartbeat_due
from phalanx.cluster.message_rate import MessageRateLimiter
from phalanx.cluster.worker_table import CPU_WARNING_PERCENT, WorkerInfo, WorkerTable
from phalanx.core.clock import Clock, SystemClock
from phalanx.core.errors import PhalanxError
from phalanx.core.workers import WorkerSummary
from phalanx.engine.dispatch import ClassSpec, target_counts
from phalanx.engine.health import HealthTracker
from phalanx.engine.runner import RunResult, RunState, RunStatus, StopReason
from phalanx.protocol import (
    PROTOCOL_VERSION,
    Bye,
    Heartbeat,
    Hello,
    MasterHeartbeat,
    MasterMessage,
    Refuse,
    Rejoin,
    Start,
    Stats,
    Stop,
    Welcome,
    WorkerMessage,
)
from phalanx.scripting.shape import LoadShape, ShapeFailure, cap_target, next_target
from phalanx.stats import Aggregator, StatsSnapshot, decode_delta
from phalanx.transport import MasterSocket, WorkerKey, describe
from phalanx.transport.master import YIELD_INTERVAL_S

log = logging.getLogger("phalanx.master")

FINAL_GRACE: Final = 10.0
"""Seconds beyond the stop timeout that the master waits for workers' final stats."""


DUPLICATE_HELLO_WINDOW: Final = 5.0
"""A Hello from a live worker within this many seconds of its last one is a resend."""

MAX_BACKLOG_WAIT: Final = 60.0
"""Extra seconds the master keeps reading a backlog of messages at the end of a run."""


class ClusterError(PhalanxError):
    """The cluster could not run (workers did not join in time)."""


@dataclass(frozen=True, slots=True)
class ClusterPlan:
    """What the master runs and its limits (seconds where a time)."""

    classes: tuple[ClassSpec, ...]
    host: str
    users: int
    spawn_rate: float
    run_time: float | None = None
    stop_timeout: float = 0.0
    shape: LoadShape | None = None
    shape_interval: float = 1.0
    expect_workers: int = 1
    expect_workers_timeout: float = 60.0
    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 10.0
    stats_interval: float = 1.0
    max_workers: int = 1_000
    max_users: int = 100_000
    max_spawn_rate: float = 10_000.0
    max_users_per_worker: int = 100_000
    message_rate: float = 50.0
    final_grace: float = FINAL_GRACE


@dataclass(slots=True)
class _Member:
    """What the master keeps about a worker admitted in this run."""

    name: str  # allow-list name, else what the worker said (display only)
    label: str  # name plus key fingerprint, for logs
    hello_at: float = 0.0
    stopped: bool = False
    bad_stats: int = 0


@dataclass(slots=True)
class _Dispatch:
    assigned: dict[str, dict[str, int]] = field(default_factory=dict)
    planned: dict[str, Start] = field(default_factory=dict)
    """The Start each worker should have (its share at its ramp rate)."""
    sent: dict[str, Start] = field(default_factory=dict)
    """The Start each worker was last sent."""

    def forget(self, key: str) -> None:
        self.assigned.pop(key, None)
        self.planned.pop(key, None)
        self.sent.pop(key, None)


UpdateCallback = Callable[[StatsSnapshot, RunStatus], None]
EventCallback = Callable[[str, dict[str, object]], None]
"""``on_event(action, details)``: worker_join / worker_refused, for the audit log."""


class MasterDriver:
    """See the module docstring. Use once: ``result = await driver.run()``."""

    def __init__(self, socket: MasterSocket, plan: ClusterPlan, *, script_sha256: str,
                 phalanx_version: str, clock: Clock | None = None,
                 on_update: UpdateCallback | None = None, run_id: str | None = None,
                 on_event: EventCallback | None = None) -> None:
        if not plan.classes:
            raise ValueError("no user classes to run")
        self._socket = socket
        self._plan = plan
        self._sha256 = script_sha256
        self._version = phalanx_version
        self._clock = clock or SystemClock()
        self._on_update = on_update
        self._on_event = on_event
        self.run_id = run_id or secrets.token_hex(8)
        self._table = WorkerTable(plan.heartbeat_timeout, plan.max_workers)
        self._limiter = MessageRateLimiter(plan.message_rate, max(10, int(plan.message_rate * 2)),
                                           disconnect_after=10.0)
        self._members: dict[str, _Member] = {}
        self._max_cpu: dict[str, float] = {}
        self._dispatch = _Dispatch()
        self._aggregator = Aggregator(start=self._clock.monotonic())
        self._health = HealthTracker()
        self._state = RunState.READY
        self._target_users = plan.users
        self._rate = plan.spawn_rate
        self._stop_reason: StopReason | None = None
        self._stop_sent_graceful: bool | None = None
        self._wake = asyncio.Event()
        self._started = 0.0
        self._last_heartbeat: float | None = None
        self._beat_seq = 0
        self._warned: set[str] = set()
        self._latest: StatsSnapshot | None = None
        self._holding: asyncio.Event | None = None

    def following(self, plan: ClusterPlan, *, run_id: str | None = None) -> MasterDriver:
        """A driver for the next test on the same link, keeping this one's workers.

        The workers stay admitted (no new Hello): their table, identities, rate
        buckets and heartbeat sequence carry over; shares, statistics and the
        stop state start afresh. This driver must be done (its run or its hold
        returned).
        """
        successor = MasterDriver(self._socket, plan, script_sha256=self._sha256,
                                 phalanx_version=self._version, clock=self._clock,
                                 on_update=self._on_update, run_id=run_id,
                                 on_event=self._on_event)
        successor._table = self._table
        successor._limiter = self._limiter
        successor._members = self._members
        for member in successor._members.values():
            member.stopped = False
        successor._max_cpu = self._max_cpu
        successor._last_heartbeat = self._last_heartbeat
        successor._beat_seq = self._beat_seq
        return successor

    async def hold(self, until: asyncio.Event) -> None:
        """Between tests: admit workers, answer and send heartbeats, notice missing ones,
        run no load, until ``until`` is set (or a stop is requested)."""
        self._holding = until
        try:
            while not until.is_set() and self._stop_reason is None:
                self._wake.clear()
                now = self._clock.monotonic()
                self._housekeeping(now, dispatch=False)
                await self._receive_until(self._next_heartbeat(now))
        finally:
            self._holding = None

    def release(self) -> None:
        """End a :meth:`hold` (the next test starts)."""
        if self._holding is not None:
            self._holding.set()
        self._wake.set()

    def reset_stats(self) -> None:
        """Forget the merged statistics so far; the test goes on."""
        now = self._clock.monotonic()
        self._aggregator.reset(now)
        self._latest = self._aggregator.snapshot(now)

    # --- control interface (signals now, the web UI later) -------------------------------

    def request_stop(self) -> None:
        """Stop gracefully; once stopping, a further request stops at once (:meth:`abort`)."""
        if self._state is RunState.STOPPING:
            self.abort()
            return
        if self._stop_reason is None:
            self._stop_reason = StopReason.REQUESTED
        self._wake.set()

    def abort(self) -> None:
        """Stop every worker's users at once."""
        self._stop_reason = StopReason.ABORTED
        if self._state is RunState.STOPPING and self._stop_sent_graceful:
            self._send_stop(graceful=False)
        self._wake.set()

    def change_target(self, users: int, spawn_rate: float | None = None) -> None:
        """Ramp the whole cluster to ``users`` (at ``spawn_rate``, or the current rate)."""
        if users < 0:
            raise ValueError("users must be >= 0")
        if spawn_rate is not None:
            if not (math.isfinite(spawn_rate) and spawn_rate > 0):
                raise ValueError("spawn_rate must be > 0")
            self._rate = spawn_rate
        self._target_users = users
        if self._state in (RunState.SPAWNING, RunState.RUNNING):
            self._redistribute(self._clock.monotonic())
        self._wake.set()

    @property
    def state(self) -> RunState:
        return self._state

    @property
    def stop_requested(self) -> bool:
        return self._stop_reason is not None

    def worker_summaries(self) -> tuple[WorkerSummary, ...]:
        """Every worker admitted in this run, as last seen, sorted by key."""
        return tuple(
            WorkerSummary(
                name=self._members[info.key].name,
                fingerprint=describe(WorkerKey(info.key)), state=info.state.value,
                users=info.users, cpu_percent=info.cpu_percent,
                max_cpu_percent=self._max_cpu.get(info.key, info.cpu_percent),
                rss_bytes=info.rss_bytes, cpu_warning=info.cpu_warning)
            for info in self._table.snapshot() if info.key in self._members
        )

    def status(self) -> RunStatus:
        now = self._clock.monotonic()
        alive = self._table.alive_keys()
        infos = [self._table.get(key) for key in alive]
        users = sum(info.users for info in infos if info is not None)
        class_totals: dict[str, int] = {}
        for key in alive:
            for name, count in self._dispatch.assigned.get(key, {}).items():
                class_totals[name] = class_totals.get(name, 0) + count
        return RunStatus(
            state=self._state,
            users=users,
            target_users=sum(class_totals.values()),
            spawn_rate=self._rate,
            class_counts=tuple(sorted(class_totals.items())),
            elapsed=max(0.0, now - self._started) if self._started else 0.0,
            run_time=self._plan.run_time,
            cpu_percent=max((info.cpu_percent for info in infos if info is not None),
                            default=0.0),
            workers=len(alive),
        )

    # --- the run -------------------------------------------------------------------------

    async def run(self) -> RunResult:
        """Wait for workers, run, stop, and return the merged result."""
        if self._state is not RunState.READY:
            raise RuntimeError("a MasterDriver runs once")
        plan = self._plan
        started_wall = self._clock.wall()
        await self._wait_for_workers()
        self._started = self._clock.monotonic()
        self._aggregator.reset(self._started)
        if self._stop_reason is None:
            self._state = RunState.SPAWNING
            log.info("%d workers joined; starting run %s", len(self._table.alive_keys()),
                     self.run_id)
            if plan.shape is not None:
                plan.shape.reset_time(self._started, clock=self._clock)
            self._redistribute(self._started)
            await self._control()
        self._state = RunState.STOPPING
        self._publish()
        await self._stop_workers()
        self._state = RunState.STOPPED
        snapshot = self._snapshot()
        return RunResult(
            snapshot=snapshot,
            status=self.status(),
            reason=self._stop_reason or StopReason.REQUESTED,
            started_at=started_wall,
            ended_at=self._clock.wall(),
            health=self._health.report(),
            workers=self.worker_summaries(),
        )

    async def _wait_for_workers(self) -> None:
        plan = self._plan
        deadline = self._clock.monotonic() + plan.expect_workers_timeout
        log.info("waiting for %d worker(s) on %s", plan.expect_workers, self._socket.endpoint)
        while True:
            self._wake.clear()
            if self._stop_reason is not None:
                return
            now = self._clock.monotonic()
            if len(self._table.alive_keys()) >= plan.expect_workers:
                return
            if now >= deadline:
                raise ClusterError(
                    f"only {len(self._table.alive_keys())} of {plan.expect_workers} workers "
                    f"joined within {plan.expect_workers_timeout:g} s; check the workers' "
                    "logs (a refused key or script is logged on both sides)"
                )
            self._housekeeping(now)
            await self._receive_until(min(deadline, self._next_heartbeat(now)))

    def _next_heartbeat(self, now: float) -> float:
        return now + next_heartbeat_due(self._last_heartbeat, self._plan.heartbeat_interval, now)

    async def _control(self) -> None:
        plan = self._plan
        end = self._started + plan.run_time if plan.run_time is not None else None
        next_publish = self._started + plan.stats_interval
        next_shape = self._started
        while True:
            self._wake.clear()
            now = self._clock.monotonic()
            if self._stop_reason is not None:
                return
            if end is not None and now >= end:
                self._stop_reason = StopReason.RUN_TIME
                return
            if plan.shape is not None and now >= next_shape:
                if not self._tick_shape(plan.shape, now):
                    return
                next_shape = now + plan.shape_interval
            self._housekeeping(now)
            if self._state is RunState.SPAWNING and self._ramp_done():
                self._state = RunState.RUNNING
            if now >= next_publish:
                self._publish()
                next_publish = max(next_publish + plan.stats_interval, now)
            deadline = min(next_publish, self._next_heartbeat(now))
            if end is not None:
                deadline = min(deadline, end)
            if plan.shape is not None:
                deadline = min(deadline, next_shape)
            await self._receive_until(deadline)

    async def _stop_workers(self) -> None:
        plan = self._plan
        graceful = self._stop_reason is not StopReason.ABORTED
        self._send_stop(graceful)
        stop_sent = self._clock.monotonic()
        deadline = stop_sent + plan.stop_timeout + plan.final_grace
        hard_deadline = deadline + MAX_BACKLOG_WAIT
        while True:
            self._wake.clear()
            now = self._clock.monotonic()
            waiting = [key for key in self._table.alive_keys()
                       if key in self._members and not self._members[key].stopped]
            if not waiting:
                return
            behind = self._socket.drained_at < deadline  # messages sent in time may still be queued
            if now >= deadline and (not behind or now >= hard_deadline):
                log.warning("%d worker(s) did not confirm their stop within %.0f s: their "
                            "last stats may be missing (%s)", len(waiting),
                            now - stop_sent, ", ".join(self._label(key) for key in waiting[:10]))
                return
            if self._stop_reason is StopReason.ABORTED and self._stop_sent_graceful:
                self._send_stop(graceful=False)
            self._housekeeping(now, dispatch=False)
            until = hard_deadline if now >= deadline else deadline
            await self._receive_until(min(until, self._next_heartbeat(now)))

    def _send_stop(self, graceful: bool) -> None:
        self._stop_sent_graceful = graceful
        self._socket.send_all(map(WorkerKey, self._table.alive_keys()), Stop(graceful=graceful))

    # --- receiving -----------------------------------------------------------------------

    async def _receive_until(self, deadline: float) -> None:
        """Handle messages until ``deadline`` (monotonic) or a wake-up (stop, target change).

        Callers clear the wake-up event before they look at the state, so a
        request made in between is never missed.
        """
        while True:
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0 or self._wake.is_set():
                return
            items = await self._socket.recv_batch(timeout=min(remaining, 0.25))
            turn_started = self._clock.monotonic()
            for key, message in items:
                now = self._clock.monotonic()
                if now - turn_started >= YIELD_INTERVAL_S:
                    # A batch of large deltas must not hold the event loop (web UI, signals).
                    await asyncio.sleep(0)
                    now = turn_started = self._clock.monotonic()
                self._handle(key, message, now)

    def _handle(self, key: WorkerKey, message: WorkerMessage, now: float) -> None:
        decision = self._limiter.allow(key, now)
        if not decision.allowed:
            if decision.first_drop:
                log.warning("worker %s sends more than %g messages/s: dropping the excess",
                            self._label(key), self._plan.message_rate)
            if decision.disconnect:
                self._expel(key, now, "it kept sending faster than the message rate limit")
            return
        if isinstance(message, Hello):
            self._hello(key, message, now)
        elif isinstance(message, Heartbeat):
            self._heartbeat(key, message, now)
        elif isinstance(message, Stats):
            self._stats(key, message, now)
        elif isinstance(message, Bye):
            self._bye(key, message, now)

    def _hello(self, key: WorkerKey, hello: Hello, now: float) -> None:
        shown = self._display_name(key, hello.worker_name)
        label = f"{shown} [{describe(key)}]"
        problem = self._admission_problem(hello)
        if problem is not None:
            self._refuse(key, label, problem)
            return
        if self._state is RunState.STOPPING or self._state is RunState.STOPPED:
            self._send(key, Welcome(run_id=self.run_id))
            return
        member = self._members.get(key)
        info = self._table.get(key)
        if member is not None and info is not None and info.state.value in ("ready", "running") \
                and now - member.hello_at < DUPLICATE_HELLO_WINDOW:
            # The same Hello resent while our Welcome was on its way: not a restart.
            self._send(key, Welcome(run_id=self.run_id))
            return
        joined = self._table.join(key, hello.worker_name, hello.cpu_count, now)
        if not joined.accepted:
            self._refuse(key, label, f"the master already has its maximum of "
                                     f"{self._plan.max_workers} workers")
            return
        self._members[key] = _Member(name=shown, label=label, hello_at=now)
        self._dispatch.forget(key)
        self._send(key, Welcome(run_id=self.run_id))
        log.info("worker %s %s (%d CPU); %d worker(s) now", label,
                 "rejoined" if joined.rejoined else "joined", hello.cpu_count,
                 len(self._table.alive_keys()))
        self._event("worker_join", {"fingerprint": describe(key), "name": shown,
                                    "cpu_count": hello.cpu_count, "rejoin": joined.rejoined})
        self._wake.set()  # a waiting master starts as soon as enough workers are in
        if self._state in (RunState.SPAWNING, RunState.RUNNING):
            self._redistribute(now)

    def _refuse(self, key: WorkerKey, label: str, reason: str) -> None:
        """Refuse a Hello; logged once per worker and reason (a retrying worker is not news)."""
        once = f"refused:{key}:{reason}"
        if once not in self._warned and len(self._warned) < 10_000:
            self._warned.add(once)
            log.warning("refused worker %s: %s", label, reason)
            self._event("worker_refused", {"fingerprint": describe(key), "name": label,
                                           "reason": reason})
        self._send(key, Refuse(reason=reason))

    def _event(self, action: str, details: dict[str, object]) -> None:
        if self._on_event is not None:
            self._on_event(action, details)

    def _admission_problem(self, hello: Hello) -> str | None:
        if hello.protocol_version != PROTOCOL_VERSION:
            return (f"protocol version {hello.protocol_version} differs from the master's "
                    f"{PROTOCOL_VERSION}")
        if hello.phalanx_version != self._version:
            return (f"phalanx version {hello.phalanx_version} differs from the master's "
                    f"{self._version}: run the same release everywhere")
        if hello.script_sha256 != self._sha256:
            return (f"script sha256 {hello.script_sha256[:16]}... differs from the master's "
                    f"{self._sha256[:16]}...: every worker must load the same script file")
        return None

    def _heartbeat(self, key: WorkerKey, beat: Heartbeat, now: float) -> None:
        result = self._table.heartbeat(key, beat.users, beat.cpu_percent, beat.rss_bytes, now)
        if not result.accepted:
            if result.reason == "heartbeat_missing" and key in self._members:
                # It was marked missing and its users went to the others: it must start over.
                self._send(key, Rejoin(reason="this worker was marked missing and its users "
                                              "went to other workers"))
            return
        if beat.cpu_percent > self._max_cpu.get(key, 0.0):
            self._max_cpu[key] = beat.cpu_percent
        member = self._members.get(key)
        if member is not None and beat.state == "stopped" and self._stop_sent_graceful is not None:
            member.stopped = True
        if self._health.cpu(beat.cpu_percent, CPU_WARNING_PERCENT) and result.cpu_warning_raised:
            log.warning("worker %s uses %.0f%% of a CPU core: its figures may be skewed; "
                        "add workers or give each fewer users", self._label(key),
                        beat.cpu_percent)

    def _stats(self, key: WorkerKey, stats: Stats, now: float) -> None:
        member = self._members.get(key)
        if member is None:
            return  # never admitted in this run: its numbers are not ours
        try:
            delta = decode_delta(stats.delta, relative_error=self._aggregator.relative_error)
            self._aggregator.apply(delta, received_at=now)
        except ValueError as exc:
            member.bad_stats += 1
            if member.bad_stats == 1:
                log.warning("dropped an invalid stats delta from worker %s: %s (further ones "
                            "are counted, not logged)", member.label, str(exc)[:300])

    def _bye(self, key: WorkerKey, bye: Bye, now: float) -> None:
        left = self._table.leave(key, now)
        if not left.accepted:
            return
        member = self._members.get(key)
        if member is not None:
            member.stopped = True
        log.info("worker %s left: %s", self._label(key), bye.reason or "no reason given")
        self._forget_share(key)
        self._socket.forget(key)
        if self._state in (RunState.SPAWNING, RunState.RUNNING):
            self._redistribute(now)

    def _expel(self, key: WorkerKey, now: float, why: str) -> None:
        log.warning("worker %s is told to rejoin: %s", self._label(key), why)
        self._send(key, Rejoin(reason=why))
        self._table.leave(key, now)
        self._limiter.forget(key)
        self._forget_share(key)
        self._socket.forget(key)
        if self._state in (RunState.SPAWNING, RunState.RUNNING):
            self._redistribute(now)

    # --- dispatch ------------------------------------------------------------------------

    def _housekeeping(self, now: float, *, dispatch: bool = True) -> None:
        """Heartbeats out, silent workers marked missing, unsent shares retried."""
        due = self._last_heartbeat is None or \
            now - self._last_heartbeat >= self._plan.heartbeat_interval
        if due:
            self._last_heartbeat = now
            self._beat_seq += 1
            self._socket.send_all(map(WorkerKey, self._table.alive_keys()),
                                  MasterHeartbeat(seq=self._beat_seq))
        # Silence is judged as of the moment the receive queue was last empty (every
        # message that had arrived was handled): a master that falls behind reports
        # stats late but never marks a worker missing because of its own backlog.
        # Bounded: under a constant inflow the queue may never be empty, and a dead
        # worker must still be noticed (within twice the heartbeat timeout).
        judged_at = max(min(now, self._socket.drained_at), now - self._plan.heartbeat_timeout)
        missing = self._table.expire(judged_at)
        for key in missing:
            users = sum(self._dispatch.assigned.get(key, {}).values())
            log.warning("worker %s is missing (no message for %.0f s): %s", self._label(key),
                        self._plan.heartbeat_timeout,
                        f"its {users} users go to the other workers" if dispatch and users
                        else "it gets no more load")
            self._forget_share(key)
        if dispatch and self._state in (RunState.SPAWNING, RunState.RUNNING):
            if missing:
                self._redistribute(now)
            elif due:
                self._resend_unsent()

    def _forget_share(self, key: str) -> None:
        self._dispatch.forget(key)

    def _redistribute(self, now: float) -> None:
        alive = list(self._table.alive_keys())
        if not alive:
            if "no_workers" not in self._warned:
                self._warned.add("no_workers")
                log.error("no worker left: no load runs until a worker joins")
            return
        self._warned.discard("no_workers")
        total = self._capped_total(len(alive))
        counts = target_counts(list(self._plan.classes), total)
        current = {key: self._dispatch.assigned.get(key, {}) for key in alive}
        target = rebalance(current, counts, alive)
        rates = ramp_plan(current, target, self._rate, len(alive))
        self._dispatch.assigned = target
        self._dispatch.planned = {
            key: Start(run_id=self.run_id, host=self._plan.host, users_per_class=target[key],
                       spawn_rate=min(rates[key], 1_000_000.0),
                       stop_timeout=self._plan.stop_timeout)
            for key in alive}
        self._resend_unsent()
        if self._state is RunState.RUNNING:
            self._state = RunState.SPAWNING

    def _resend_unsent(self) -> None:
        """Send each worker its planned Start unless that is what it was last sent."""
        sent = self._dispatch.sent
        for key, start in self._dispatch.planned.items():
            if sent.get(key) != start and self._send(WorkerKey(key), start):
                sent[key] = start

    def _capped_total(self, workers: int) -> int:
        capacity = workers * self._plan.max_users_per_worker
        if self._target_users > capacity:
            if "per_worker" not in self._warned:
                self._warned.add("per_worker")
                log.warning("%d users need more than %d workers at --max-users-per-worker %d: "
                            "running %d", self._target_users, workers,
                            self._plan.max_users_per_worker, capacity)
            return capacity
        return self._target_users

    def _ramp_done(self) -> bool:
        for key, counts in self._dispatch.assigned.items():
            info = self._table.get(key)
            if info is None or info.users != sum(counts.values()):
                return False
        return True

    def _tick_shape(self, shape: LoadShape, now: float) -> bool:
        target = next_target(shape)
        if isinstance(target, ShapeFailure):
            log.error("load shape %s failed at %s, stopping the run: %s: %s", target.shape,
                      target.location, target.error_type, target.message)
            self._stop_reason = StopReason.SHAPE_ERROR
            return False
        if target is None:
            self._stop_reason = StopReason.SHAPE
            return False
        users, rate = cap_target(target, self._plan.max_users, self._plan.max_spawn_rate,
                                 self._warned)
        if users != self._target_users or rate != self._rate:
            self._target_users, self._rate = users, rate
            self._redistribute(now)
        return True

    # --- helpers -------------------------------------------------------------------------

    def _send(self, key: WorkerKey, message: MasterMessage) -> bool:
        sent = self._socket.send(key, message)
        if not sent and f"send:{key}" not in self._warned and len(self._warned) < 10_000:
            self._warned.add(f"send:{key}")
            log.warning("could not queue a %s message for worker %s (its queue is full or it "
                        "disconnected)", type(message).__name__, self._label(key))
        return sent

    def _display_name(self, key: WorkerKey, said: str) -> str:
        listed = self._socket.name_of(key)
        shown = listed or said
        if listed and said != listed:
            shown = f"{listed} (says {said})"
        return shown

    def _label(self, key: str) -> str:
        member = self._members.get(key)
        return member.label if member is not None else describe(WorkerKey(key))

    def _snapshot(self) -> StatsSnapshot:
        self._latest = self._aggregator.snapshot(self._clock.monotonic())
        return self._latest

    def _publish(self) -> None:
        snapshot = self._snapshot()
        if self._on_update is not None:
            self._on_update(snapshot, self.status())

    @property
    def latest(self) -> StatsSnapshot | None:
        return self._latest

    def worker_info(self, key: str) -> WorkerInfo | None:
        return self._table.get(key)

    def assignments(self) -> Mapping[str, Mapping[str, int]]:
        """The current share of each alive worker (a copy)."""
        return {key: dict(counts) for key, counts in self._dispatch.assigned.items()}
