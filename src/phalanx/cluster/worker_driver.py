"""The worker's driver: joins a master, runs the share of the load it is given, reports.

Life of a worker
----------------
1. **Joining**: ``Hello`` (protocol version, script sha256, phalanx version)
   every ``hello_interval`` until the master answers. ``Welcome`` joins;
   ``Refuse`` (another script or version, too many workers) ends the worker
   with :class:`WorkerExit` ``refused``; a master that refused this worker's
   *key* (ZAP) ends it too, with the transport's own explanation.
2. **Joined**: ``Start`` runs (or re-targets) a :class:`LocalRunner` with the
   exact users per class and spawn rate the master computed; ``Stop`` stops
   it (gracefully or at once). Heartbeats go out every
   ``heartbeat_interval`` (users, state, CPU, memory) and stats deltas every
   ``report_interval``, in order on one queue, so the master knows that the
   final delta of a run arrived when it sees the ``stopped`` heartbeat that
   follows it.
3. **Master lost**: a worker that has heard nothing from its master (any
   valid message; the master sends heartbeats) for ``master_timeout``
   seconds aborts all its users at once and says so, then goes back to
   joining. **No load runs without a master heard within ``master_timeout``
   plus one check interval** (:class:`~phalanx.cluster.link_watch.LinkWatch`).
   ``Rejoin`` from the master does the same at once.

Every wait is bounded; tasks are owned by one TaskGroup in :meth:`WorkerDriver.serve`.
The driver never raises for what the master sends; a ``Start`` it cannot run
(a class it does not know, more users than ``max_users``, a host outside the
worker's allowed targets) ends the worker with ``Bye`` and the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from phalanx.cluster.link_watch import LinkWatch
from phalanx.core.clock import Clock, SystemClock
from phalanx.core.errors import PhalanxError
from phalanx.engine.health import CpuMonitor, resident_bytes
from phalanx.engine.runner import DeltaCallback, LocalRunner, RunPlan, RunState
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
from phalanx.stats import StatsDelta, encode_delta
from phalanx.transport import WorkerSocket
from phalanx.transport.linkstate import REFUSED_BY_MASTER

log = logging.getLogger("phalanx.worker")

MAX_QUEUED: Final = 1_000
"""Outgoing messages held while the master is slow; beyond it a message is dropped and
logged (the master's totals then come up short, and it says which workers did not
confirm their stop)."""


class WorkerExit(enum.Enum):
    """Why :meth:`WorkerDriver.serve` returned."""

    SHUTDOWN = "shutdown"  # asked to (signal); exit 0
    REFUSED = "refused"  # the master refused this worker (key, script, version, capacity)
    CANNOT_RUN = "cannot_run"  # a Start this worker cannot run (limits, scope)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What a worker says about itself and its timings (seconds)."""

    name: str
    script_sha256: str
    phalanx_version: str
    cpu_count: int = 1
    master_timeout: float = 10.0
    heartbeat_interval: float = 1.0
    report_interval: float = 2.0
    hello_interval: float = 2.0
    send_timeout: float = 5.0
    max_users: int = 100_000
    waiting_notice_interval: float = 30.0


RunFactory = Callable[[Start, DeltaCallback], tuple[LocalRunner, RunPlan]]
"""Builds the runner and plan for a ``Start`` (raises PhalanxError if it cannot be run)."""


@dataclass(slots=True)
class _Run:
    run_id: str
    runner: LocalRunner
    aborted: bool = False
    ending: bool = False  # asked to stop (gracefully or not): it takes no new share
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def active(self) -> bool:
        return not self.done.is_set()


class WorkerDriver:
    """See the module docstring. Use once: ``exit = await driver.serve()``."""

    def __init__(self, link: WorkerSocket, config: WorkerConfig, make_run: RunFactory, *,
                 clock: Clock | None = None) -> None:
        self._link = link
        self._config = config
        self._make_run = make_run
        self._clock = clock or SystemClock()
        self._watch = LinkWatch(config.master_timeout)
        self._outbox: asyncio.Queue[WorkerMessage] = asyncio.Queue(MAX_QUEUED)
        self._welcomed = False
        self._run: _Run | None = None
        self._exit: WorkerExit | None = None
        self._exit_reason = ""
        self._finished = asyncio.Event()
        self._shutdown_requests = 0
        self._heartbeat_seq = 0
        self._stats_seq = 0
        self._cpu = CpuMonitor()
        self._last_cpu = 0.0
        self._pending_start: Start | None = None
        self._tg: asyncio.TaskGroup | None = None

    @property
    def exit_reason(self) -> str:
        """Why the worker ended, in words (empty after a plain shutdown)."""
        return self._exit_reason

    @property
    def joined(self) -> bool:
        return self._welcomed

    @property
    def run_active(self) -> bool:
        """Whether a run (any user task) still exists on this worker."""
        return self._run is not None and self._run.active

    @property
    def running_users(self) -> int:
        run = self._run
        return run.runner.status().users if run is not None else 0

    def request_shutdown(self) -> None:
        """First call: stop the load gracefully, say Bye, end. Second: stop the load at once."""
        self._shutdown_requests += 1
        run = self._run
        self._pending_start = None
        if run is not None:
            run.ending = True
            if self._shutdown_requests == 1:
                run.runner.request_stop()
            else:
                run.aborted = True
                run.runner.abort()
        self._finish(WorkerExit.SHUTDOWN, "")

    async def serve(self) -> WorkerExit:
        """Join, run what the master says, until shut down or refused."""
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            receiver = tg.create_task(self._receive_loop(), name="phalanx-worker-recv")
            sender = tg.create_task(self._send_loop(), name="phalanx-worker-send")
            await self._finished.wait()
            receiver.cancel()
            await self._end_run()
            if self._welcomed or self._exit is WorkerExit.CANNOT_RUN:
                self._queue(Bye(reason=self._exit_reason or "worker shutting down"))
                await self._drain()
            # else: no master to tell; pending Hellos would only wait for a connection
            sender.cancel()
        self._tg = None
        return self._exit or WorkerExit.SHUTDOWN

    # --- receiving -----------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        next_hello = self._clock.monotonic()
        next_notice = next_hello + self._config.waiting_notice_interval
        while True:
            now = self._clock.monotonic()
            if not self._welcomed:
                if self._link.link_state().last_failure == REFUSED_BY_MASTER:
                    self._finish(WorkerExit.REFUSED, REFUSED_BY_MASTER)
                    return
                if now >= next_hello:
                    self._queue(self._hello())
                    next_hello = now + self._config.hello_interval
                if now >= next_notice:
                    log.warning("still waiting for the master at %s to answer",
                                self._link.endpoint)
                    next_notice = now + self._config.waiting_notice_interval
            elif self._watch.should_stop_load(now):
                self._master_lost(now)
                next_hello = now
            timeout = self._watch.check_interval
            if not self._welcomed:
                timeout = min(timeout, max(0.01, next_hello - now))
            message = await self._link.recv(timeout=timeout)
            if message is not None:
                self._watch.heard(self._clock.monotonic())
                self._handle(message)

    def _handle(self, message: MasterMessage) -> None:
        if isinstance(message, MasterHeartbeat):
            return
        if isinstance(message, Welcome):
            if not self._welcomed:
                log.info("joined the master at %s (run %s)", self._link.endpoint,
                         message.run_id)
            self._welcomed = True
            return
        if isinstance(message, Refuse):
            log.error("the master refused this worker: %s", message.reason)
            self._abort_run()
            self._finish(WorkerExit.REFUSED, message.reason)
            return
        if not self._welcomed:
            return  # Start/Stop/Rejoin before Welcome: a stale message of an earlier session
        if isinstance(message, Rejoin):
            log.warning("the master asks this worker to rejoin (%s): stopping all load",
                        message.reason)
            self._abort_run()
            self._welcomed = False
        elif isinstance(message, Start):
            self._start(message)
        elif isinstance(message, Stop):
            self._stop(message.graceful)

    def _master_lost(self, now: float) -> None:
        silent = now - (self._watch.last_heard or now)
        users = self.running_users
        if self._run is not None and self._run.active:
            log.error("no message from the master at %s for %.1f s: stopping all load now "
                      "(%d users)", self._link.endpoint, silent, users)
        else:
            log.warning("no message from the master at %s for %.1f s: rejoining",
                        self._link.endpoint, silent)
        self._abort_run()
        self._welcomed = False

    # --- runs ----------------------------------------------------------------------------

    def _start(self, start: Start) -> None:
        if self._exit is not None:
            return  # shutting down: no new load, whatever arrives
        total = sum(start.users_per_class.values())
        if total > self._config.max_users:
            self._cannot_run(f"the master asked for {total} users, above this worker's "
                             f"--max-users {self._config.max_users}")
            return
        run = self._run
        if run is not None and run.active and run.ending:
            # Users are still being stopped: the new share starts once they are gone.
            self._pending_start = start
            return
        if run is not None and run.active and run.run_id == start.run_id:
            try:
                run.runner.change_class_targets(start.users_per_class, start.spawn_rate)
            except ValueError as exc:
                self._cannot_run(str(exc))
                return
            log.info("new share: %s at %g users/s", _describe(start.users_per_class),
                     start.spawn_rate)
            return
        if run is not None and run.active:
            self._abort_run()  # a Start of another run: the old one is over
        try:
            runner, plan = self._make_run(start, self._on_delta)
        except (PhalanxError, ValueError) as exc:
            self._cannot_run(str(exc))
            return
        if self._tg is None:  # pragma: no cover - messages are handled only inside serve()
            return
        log.info("starting run %s: %s at %g users/s against %s", start.run_id,
                 _describe(start.users_per_class), start.spawn_rate, start.host)
        new_run = _Run(start.run_id, runner)
        self._tg.create_task(self._run_main(new_run, plan), name=f"phalanx-run-{start.run_id}")
        self._run = new_run

    async def _run_main(self, run: _Run, plan: RunPlan) -> None:
        try:
            result = await run.runner.run(plan)
            log.info("run %s ended (%s): %d requests", run.run_id, result.reason.value,
                     result.snapshot.total.num_requests)
        finally:
            run.done.set()
            self._queue(self._heartbeat("stopped", 0))
            pending, self._pending_start = self._pending_start, None
            if pending is not None and self._welcomed and self._exit is None:
                self._start(pending)

    def _stop(self, graceful: bool) -> None:
        run = self._run
        if run is None or not run.active:
            self._queue(self._heartbeat("stopped", 0))
            return
        run.ending = True
        self._pending_start = None
        if graceful:
            log.info("the master stops the load (users finish their task first)")
            run.runner.request_stop()
        else:
            log.info("the master stops the load now")
            run.aborted = True
            run.runner.abort()

    def _abort_run(self) -> None:
        self._pending_start = None
        run = self._run
        if run is not None and run.active:
            run.aborted = run.ending = True
            run.runner.abort()

    def _cannot_run(self, why: str) -> None:
        log.error("cannot run the master's share: %s", why)
        self._abort_run()
        self._finish(WorkerExit.CANNOT_RUN, f"cannot run: {why}")

    async def _end_run(self) -> None:
        run = self._run
        if run is None:
            return
        if run.active and not run.ending:
            run.ending = True
            run.runner.request_stop()
        # Bounded: a graceful stop lasts the stop timeout plus on_stop's own bound.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._config.send_timeout + 60.0):
                await run.done.wait()
        if not run.done.is_set():
            run.runner.abort()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._config.send_timeout):
                    await run.done.wait()

    # --- sending -------------------------------------------------------------------------

    def _on_delta(self, delta: StatsDelta) -> None:
        if delta.entries or delta.errors or delta.exceptions:
            self._queue_stats(delta)

    def _queue_stats(self, delta: StatsDelta) -> None:
        self._stats_seq += 1
        self._queue(Stats(seq=self._stats_seq, delta=encode_delta(delta)))

    def _queue(self, message: WorkerMessage) -> None:
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("the master is not reading: dropped an outgoing %s message",
                        type(message).__name__)

    async def _send_loop(self) -> None:
        interval = self._config.heartbeat_interval
        next_beat = self._clock.monotonic()
        while True:
            now = self._clock.monotonic()
            if now >= next_beat:
                if self._welcomed:
                    self._queue(self._current_heartbeat())
                next_beat = now + interval
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that races with the queue, and this loop ends by being cancelled.
            try:
                async with asyncio.timeout(max(0.0, next_beat - now)):
                    message = await self._outbox.get()
            except TimeoutError:
                continue
            if isinstance(message, Hello | Bye) or self._welcomed:
                sent = await self._link.send(message, timeout=self._config.send_timeout)
                if not sent and not isinstance(message, Hello):
                    log.warning("could not send a %s message to the master within %.0f s",
                                type(message).__name__, self._config.send_timeout)
            self._outbox.task_done()

    async def _drain(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._config.send_timeout):
                await self._outbox.join()

    def _hello(self) -> Hello:
        return Hello(protocol_version=PROTOCOL_VERSION, worker_name=self._config.name,
                     script_sha256=self._config.script_sha256,
                     phalanx_version=self._config.phalanx_version,
                     cpu_count=max(1, self._config.cpu_count))

    def _current_heartbeat(self) -> Heartbeat:
        run = self._run
        if run is None:
            return self._heartbeat("ready", 0)
        status = run.runner.status()
        state = {RunState.READY: "spawning", RunState.SPAWNING: "spawning",
                 RunState.RUNNING: "running", RunState.STOPPING: "stopping",
                 RunState.STOPPED: "stopped"}[status.state]
        return self._heartbeat(state, status.users)

    def _heartbeat(self, state: str, users: int) -> Heartbeat:
        percent = self._cpu.sample(0.5)
        if percent is not None and math.isfinite(percent):
            self._last_cpu = min(max(percent, 0.0), 100_000.0)
        self._heartbeat_seq += 1
        rss = resident_bytes() or 0
        return Heartbeat(seq=self._heartbeat_seq, users=users, state=state,  # type: ignore[arg-type]
                         cpu_percent=self._last_cpu, rss_bytes=min(rss, 2**56))

    def _finish(self, why: WorkerExit, reason: str) -> None:
        if self._exit is None:
            self._exit = why
            self._exit_reason = reason
        self._finished.set()


def _describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}: {count}" for name, count in sorted(counts.items())) or "no users"
