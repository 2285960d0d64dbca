"""Master scale: the CPU one ``phalanx master`` spends on 50 .. 1000 workers.

Not a test (pytest never runs it). For each step of ``--workers`` (default
50,200,500,1000) this script

1. makes a fresh keys directory (``KeyDir.init()``) and one CURVE keypair per
   simulated worker, all on the allow-list (``authorized_workers``);
2. starts one real master as a subprocess, pinned to the first usable CPU::

       <python> -m phalanx master -f bench/master_scale_script.py
           --host http://127.0.0.1:9 --bind 127.0.0.1:PORT --keys KEYDIR
           -u 10*N -r 10000 -t RUNTIME --expect-workers N
           --expect-workers-timeout 120s --live off

   and waits until its port is listening (read from ``/proc/net/tcp``: no
   probe connection is made);
3. starts the simulated workers, pinned to the second CPU: light coroutines,
   many per process (one shared ZeroMQ context, no socket monitor), each
   speaking the real protocol over a real CURVE link
   (:class:`phalanx.transport.WorkerSocket`) to ``127.0.0.1`` only;
4. once every worker got its ``Start``, waits ``--warmup`` seconds, then reads
   the master's CPU time (``utime + stime`` of ``/proc/<pid>/stat``, all its
   threads) at both ends of a ``--duration`` window: CPU % of one core;
   With ``--contend N``, N busy loops (each ending by itself, stopped by PID
   at the step's end) share the master's core: a master short of CPU, which
   must report stats late but never mark a worker missing.
5. waits for the master's ``Stop`` (end of ``-t``) and its exit, then counts
   the lines of its stderr that contain ``is missing`` (a worker it marked
   missing: must be 0) and its warning/error lines.

What one simulated worker does
------------------------------
``Hello`` (the script's sha256, this phalanx's version), wait for
``Welcome`` (a ``Refuse`` is reported); then a ``Heartbeat`` every second,
``ready`` with 0 users until a ``Start`` arrives, ``running`` with the sum of
``Start.users_per_class`` after; while running a ``Stats`` every 3 s whose
delta is a realistic :class:`phalanx.stats.StatsDelta` (100 endpoints, a few
dozen latencies each, a few errors) with ``start`` = the previous delta's
``end`` and ``end`` = now. On ``Stop``: a last ``Stats`` and
``Heartbeat(state="stopped", users=0)``; heartbeats go on (``ready``) until
the step ends, then ``Bye``. ``MasterHeartbeat`` messages are counted and
their spacing kept. Heartbeat phases are spread evenly over the second (and
stats phases over their 3 s) across all workers, as independent machines
would be.

Cheap on purpose (the simulator shares a 2-core machine with the master):
the deltas are recorded and encoded once, a few variants; each ``Stats`` only
rewrites the two float64 timestamps at the head of the encoded bytes (checked
against :func:`phalanx.stats.decode_delta` at start-up).

What is printed, per step
-------------------------
master CPU % of one core over the window; the Locust 2.47 master reference
for the same number of workers and the ratio (reference figures from the
issue, measured on this kind of machine, **not rerun here**); join time (first
connection attempt to the last ``Welcome``); start fan-out (last ``Welcome``
to last ``Start``); workers marked missing (``is missing`` lines); the
largest gap between two ``MasterHeartbeat`` seen by any worker inside the
window (the master's event-loop lateness, also what would delay stats
handling); the simulator's own CPU % and its heartbeat send lateness (if the
simulator lags, the figures are not the master's). Target: 1000 workers
under 30 % of one core with no missed heartbeats.

Safety and bounds: loopback only (the master binds ``127.0.0.1``; its
``--host`` is a closed local port that is never contacted); every wait has a
deadline; only the processes this script started are stopped, by their PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import zmq
import zmq.asyncio

from phalanx.cli.main import version as phalanx_version
from phalanx.core.results import ErrorKind, RequestFailure
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
)
from phalanx.protocol.messages import WorkerState
from phalanx.stats import Recorder, decode_delta, encode_delta
from phalanx.transport import (
    AllowEntry,
    CurveClient,
    KeyDir,
    KeyPair,
    WorkerSocket,
    generate_keypair,
    read_public_key,
)
from phalanx.transport.allowlist import write_allow_list

LOCUST_REFERENCE: Final = {50: 8.0, 200: 27.0, 500: 50.0, 1000: 93.0}
"""Locust 2.47 master, % of one core (figures from the issue; not rerun here)."""
TARGET_WORKERS: Final = 1000
TARGET_CPU_PERCENT: Final = 30.0
SPAWN_RATE: Final = 10_000
"""The master's largest spawn rate."""
HEARTBEAT_PERIOD: Final = 1.0
STATS_PERIOD: Final = 3.0
LATE_GAP: Final = 1.5
"""A gap between two MasterHeartbeats over this many periods counts as late."""
SATURATED: Final = 95.0
"""Master CPU % from which the master is shown as saturated (the figure is then a floor)."""
ENDPOINTS: Final = 100
DELTA_VARIANTS: Final = 8
SEND_TIMEOUT: Final = 0.5
BYE_TIMEOUT: Final = 0.3
JOIN_TIMEOUT_S: Final = 150.0
"""Longest wait for every worker's Start (the master's own --expect-workers-timeout is 120 s)."""
LISTEN_TIMEOUT_S: Final = 30.0
EXIT_TIMEOUT_S: Final = 60.0
"""How long the master may take to exit after its Stop (summary, shutdown)."""
RUNTIME_MARGIN_S: Final = 15
LOG_EXAMPLES: Final = 5
SCRIPT: Final = Path(__file__).resolve().parent / "master_scale_script.py"
RESULTS: Final = Path(__file__).resolve().parent / "results"
_MISSING: Final = "is missing"
_PROBLEM_LINE: Final = re.compile(r"\b(warning|error|critical|traceback|exception)\b", re.I)
_FLOAT64: Final = 0xCB
_DELTA_HEAD: Final = struct.Struct(">Bd")
_ARRAY16: Final = b"\xdc\x00\x10"  # msgpack array of 16: the columnar delta's fields


# ---------------------------------------------------------------- CPU and pinning


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin_all_threads(pid: int, cpus: set[int]) -> bool:
    """Set the affinity of every thread of ``pid``; False if one could not be set."""
    done = True
    try:
        tids = [int(name) for name in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return False
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            done = False
    return done


def is_listening(port: int) -> bool:
    """True when a TCP socket listens on 127.0.0.1:``port`` (or any address)."""
    wanted = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    for line in lines:
        parts = line.split()
        if len(parts) > 3 and parts[1] in wanted and parts[3] == "0A":
            return True
    return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------- keys and deltas


def make_keys(root: Path, count: int) -> tuple[bytes, list[KeyPair]]:
    """A keys directory with ``count`` worker keypairs on its allow-list (only those)."""
    keydir = KeyDir(root)
    keydir.init()
    pairs = [generate_keypair() for _ in range(count)]
    write_allow_list(keydir.allow_list,
                     [AllowEntry(pair.public, f"sim-{i}") for i, pair in enumerate(pairs)])
    return read_public_key(keydir.master_public), pairs


@dataclass(frozen=True, slots=True)
class DeltaTemplate:
    """An encoded StatsDelta without its two timestamps; ``requests`` it counts."""

    body: bytes
    requests: int

    def stamp(self, start: float, end: float) -> bytes:
        """The encoded delta for ``[start, end]`` (msgpack: array of 16, two float64 first)."""
        return _ARRAY16 + _DELTA_HEAD.pack(_FLOAT64, start) + _DELTA_HEAD.pack(_FLOAT64, end) \
            + self.body


def build_templates(variants: int, seed: int) -> tuple[DeltaTemplate, ...]:
    """``variants`` realistic deltas: 100 endpoints, a few dozen latencies each, a few errors."""
    rng = random.Random(seed)
    templates: list[DeltaTemplate] = []
    for _ in range(variants):
        recorder = Recorder(0.0)
        for k in range(ENDPOINTS):
            method = "POST" if k % 5 == 0 else "GET"
            name = f"/api/v1/resource{k:03d}/[id]"
            median = 0.005 + 0.1 * rng.random()
            for _ in range(rng.randint(24, 60)):
                elapsed = rng.lognormvariate(math.log(median), 0.5)
                failure = None
                if rng.random() < 0.003:
                    failure = RequestFailure(ErrorKind.HTTP_STATUS, "503 Service Unavailable")
                elif rng.random() < 0.001:
                    failure = RequestFailure(ErrorKind.READ_TIMEOUT, "no response in 10 s")
                recorder.record(method, name, elapsed, rng.randint(200, 8000), failure)
        delta = recorder.take_delta(1.0)
        data = encode_delta(delta)
        if data[:3] != _ARRAY16 or data[3] != _FLOAT64 or data[12] != _FLOAT64:
            raise RuntimeError("unexpected StatsDelta encoding: cannot patch its timestamps")
        template = DeltaTemplate(data[21:], sum(e.num_requests for e in delta.entries))
        check = decode_delta(template.stamp(12.5, 15.5)).to_stats_delta()
        if (check.start, check.end, check.entries) != (12.5, 15.5, delta.entries):
            raise RuntimeError("patched StatsDelta does not decode to the original")
        templates.append(template)
    return tuple(templates)


def next_slot(now: float, phase: float, period: float) -> float:
    """The first time ``phase + k * period`` strictly after ``now``."""
    return phase + (math.floor((now - phase) / period) + 1) * period


# ---------------------------------------------------------------- simulated workers


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What one simulator process needs (picklable)."""

    endpoint: str
    master_public: bytes
    keys: tuple[tuple[int, bytes, bytes], ...]
    """(global index, public, secret) of each worker of this process."""
    total_workers: int
    script_sha256: str
    version: str
    cpu: int | None
    join_timeout: float
    hard_limit: float
    """This process ends by itself after so many seconds, whatever happens."""
    seed: int


@dataclass(slots=True)
class WorkerLog:
    """What one simulated worker saw (monotonic times, seconds)."""

    opened_at: float = math.nan
    welcomed_at: float = math.nan
    refused: str = ""
    started_at: float = math.nan
    stopped_at: float = math.nan
    users: int = 0
    master_heartbeats: deque[float] = field(default_factory=lambda: deque(maxlen=900))
    heartbeat_lag: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=900))
    heartbeats_sent: int = 0
    stats_sent: int = 0
    requests_sent: int = 0
    send_failures: int = 0
    """Sends that could not be queued within SEND_TIMEOUT before the master's Stop."""
    unexpected: int = 0
    rejoins: int = 0
    """``Rejoin`` messages received: the master had dropped this worker."""


class SimWorker:
    """One simulated worker: its link, its schedule, its log."""

    def __init__(self, config: SimConfig, index: int, keypair: KeyPair,
                 context: zmq.asyncio.Context, templates: tuple[DeltaTemplate, ...],
                 shutdown: asyncio.Event) -> None:
        self._config = config
        self._index = index
        self._keypair = keypair
        self._context = context
        self._templates = templates
        self._shutdown = shutdown
        share = index / config.total_workers
        self._hb_phase = share * HEARTBEAT_PERIOD
        self._stats_phase = share * STATS_PERIOD
        self._hb_seq = 0
        self._stats_seq = 0
        self._state: WorkerState = "ready"
        self._delta_start = 0.0
        self._next_stats = math.inf
        self.log = WorkerLog()

    async def run(self) -> None:
        link = WorkerSocket(self._config.endpoint,
                            CurveClient(self._keypair, self._config.master_public),
                            context=self._context, monitor=False)
        link.open()
        try:
            if await self._join(link):
                await self._serve(link)
                # Not counted: the master has usually exited by now.
                await link.send(Bye(reason="simulation over"), timeout=BYE_TIMEOUT)
        finally:
            link.close()

    async def _join(self, link: WorkerSocket) -> bool:
        loop = asyncio.get_running_loop()
        log = self.log
        log.opened_at = loop.time()
        deadline = log.opened_at + self._config.join_timeout
        if not await link.send(self._hello(), timeout=self._config.join_timeout):
            log.refused = "Hello not sent (no connection)"
            return False
        while not self._shutdown.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.refused = "no Welcome in time"
                return False
            message = await link.recv(timeout=min(remaining, 1.0))
            if isinstance(message, Welcome):
                log.welcomed_at = loop.time()
                return True
            if isinstance(message, Refuse):
                log.refused = f"Refuse: {message.reason}"
                return False
            if message is not None:
                log.unexpected += 1
        return False

    def _hello(self) -> Hello:
        return Hello(protocol_version=PROTOCOL_VERSION, worker_name=f"sim-{self._index}",
                     script_sha256=self._config.script_sha256,
                     phalanx_version=self._config.version, cpu_count=1)

    async def _serve(self, link: WorkerSocket) -> None:
        loop = asyncio.get_running_loop()
        next_hb = next_slot(loop.time(), self._hb_phase, HEARTBEAT_PERIOD)
        while not self._shutdown.is_set():
            wait = min(next_hb, self._next_stats) - loop.time()
            if wait > 0:
                message = await link.recv(timeout=wait)
                if message is not None:
                    await self._handle(link, message, loop.time())
                    continue
            now = loop.time()
            if now >= next_hb:
                self.log.heartbeat_lag.append((now, now - next_hb))
                await self._heartbeat(link)
                next_hb = next_slot(now, self._hb_phase, HEARTBEAT_PERIOD)
            if now >= self._next_stats:
                await self._stats(link, now)
                self._next_stats = next_slot(now, self._stats_phase, STATS_PERIOD)

    async def _handle(self, link: WorkerSocket, message: MasterMessage, now: float) -> None:
        log = self.log
        if isinstance(message, MasterHeartbeat):
            log.master_heartbeats.append(now)
        elif isinstance(message, Start):
            log.users = sum(message.users_per_class.values())
            if self._state != "running":
                self._state = "running"
                if math.isnan(log.started_at):
                    log.started_at = now
                self._delta_start = now
                self._next_stats = next_slot(now, self._stats_phase, STATS_PERIOD)
            await self._heartbeat(link)
        elif isinstance(message, Stop):
            if self._state == "running":
                await self._stats(link, now)
            self._state = "stopped"
            log.users = 0
            self._next_stats = math.inf
            if math.isnan(log.stopped_at):
                log.stopped_at = now
            await self._heartbeat(link)
            self._state = "ready"
        elif isinstance(message, Rejoin):
            # The master forgot this worker (marked missing, or over its message rate).
            log.rejoins += 1
            self._state = "ready"
            log.users = 0
            self._next_stats = math.inf
            if not await link.send(self._hello(), timeout=SEND_TIMEOUT):
                log.send_failures += 1
        elif isinstance(message, Welcome) and log.rejoins:
            pass  # the answer to a rejoin's Hello
        else:
            log.unexpected += 1

    async def _heartbeat(self, link: WorkerSocket) -> None:
        self._hb_seq += 1
        users = self.log.users if self._state == "running" else 0
        message = Heartbeat(seq=self._hb_seq, users=users, state=self._state,
                            cpu_percent=12.5, rss_bytes=120_000_000)
        if await link.send(message, timeout=SEND_TIMEOUT):
            self.log.heartbeats_sent += 1
        elif math.isnan(self.log.stopped_at):  # after the Stop, the master may be gone
            self.log.send_failures += 1

    async def _stats(self, link: WorkerSocket, now: float) -> None:
        self._stats_seq += 1
        template = self._templates[(self._index + self._stats_seq) % len(self._templates)]
        start, self._delta_start = self._delta_start, now
        message = Stats(seq=self._stats_seq, delta=template.stamp(start, now))
        if await link.send(message, timeout=SEND_TIMEOUT):
            self.log.stats_sent += 1
            self.log.requests_sent += template.requests
        else:
            self.log.send_failures += 1


@dataclass(frozen=True, slots=True)
class Progress:
    joined: int = 0
    refused: int = 0
    started: int = 0
    stopped: int = 0


@dataclass(frozen=True, slots=True)
class SimResult:
    """One simulator process's summary; times are monotonic seconds (NaN: none)."""

    workers: int
    joined: int
    refused: tuple[str, ...]
    first_open: float
    last_welcome: float
    first_start: float
    last_start: float
    stopped: int
    master_heartbeats: int
    max_mhb_gap: float
    """Largest gap between two MasterHeartbeats ending inside the window."""
    late_mhb_gaps: int
    """Gaps over LATE_GAP heartbeat periods ending inside the window."""
    max_hb_lag: float
    """Largest lateness of a scheduled heartbeat send inside the window (simulator lag)."""
    heartbeats_sent: int
    stats_sent: int
    requests_sent: int
    send_failures: int
    unexpected: int
    rejoins: int


def summarise(logs: Sequence[WorkerLog], window: tuple[float, float]) -> SimResult:
    low, high = window
    max_gap, late, max_lag = 0.0, 0, 0.0
    for log in logs:
        previous = math.nan
        for arrived in log.master_heartbeats:
            if low <= arrived <= high and not math.isnan(previous):
                gap = arrived - previous
                max_gap = max(max_gap, gap)
                late += gap > LATE_GAP * HEARTBEAT_PERIOD
            previous = arrived
        for at, lag in log.heartbeat_lag:
            if low <= at <= high:
                max_lag = max(max_lag, lag)

    def spread(values: list[float], pick: Callable[[list[float]], float]) -> float:
        real = [v for v in values if not math.isnan(v)]
        return pick(real) if real else math.nan

    return SimResult(
        workers=len(logs),
        joined=sum(not math.isnan(log.welcomed_at) for log in logs),
        refused=tuple(log.refused for log in logs if log.refused),
        first_open=spread([log.opened_at for log in logs], min),
        last_welcome=spread([log.welcomed_at for log in logs], max),
        first_start=spread([log.started_at for log in logs], min),
        last_start=spread([log.started_at for log in logs], max),
        stopped=sum(not math.isnan(log.stopped_at) for log in logs),
        master_heartbeats=sum(len(log.master_heartbeats) for log in logs),
        max_mhb_gap=max_gap,
        late_mhb_gaps=late,
        max_hb_lag=max_lag,
        heartbeats_sent=sum(log.heartbeats_sent for log in logs),
        stats_sent=sum(log.stats_sent for log in logs),
        requests_sent=sum(log.requests_sent for log in logs),
        send_failures=sum(log.send_failures for log in logs),
        unexpected=sum(log.unexpected for log in logs),
        rejoins=sum(log.rejoins for log in logs),
    )


def simulator_main(config: SimConfig, conn: multiprocessing.connection.Connection) -> None:
    """Entry point of one simulator process: run its workers until told to stop."""
    if config.cpu is not None:
        os.sched_setaffinity(0, {config.cpu})
    raise_fd_limit()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of phalanx
        asyncio.run(_simulate(config, conn))
    else:
        uvloop.run(_simulate(config, conn))


async def _simulate(config: SimConfig, conn: multiprocessing.connection.Connection) -> None:
    loop = asyncio.get_running_loop()
    shutdown = asyncio.Event()
    window: list[tuple[float, float]] = [(0.0, 0.0)]

    def on_control() -> None:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            message = ("stop", 0.0, 0.0)
        if isinstance(message, tuple) and message and message[0] == "stop":
            window[0] = (float(message[1]), float(message[2]))
            shutdown.set()

    templates = build_templates(DELTA_VARIANTS, config.seed)
    context = zmq.asyncio.Context()
    context.set(zmq.MAX_SOCKETS, len(config.keys) + 64)
    workers = [SimWorker(config, index, KeyPair(public, secret), context, templates, shutdown)
               for index, public, secret in config.keys]
    loop.add_reader(conn.fileno(), on_control)
    limit = loop.call_later(config.hard_limit, shutdown.set)
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_report_progress(workers, conn, shutdown))
            for worker in workers:
                group.create_task(worker.run())
    finally:
        limit.cancel()
        loop.remove_reader(conn.fileno())
        context.destroy(linger=0)
    conn.send(("result", summarise([w.log for w in workers], window[0])))


async def _report_progress(workers: list[SimWorker],
                           conn: multiprocessing.connection.Connection,
                           shutdown: asyncio.Event) -> None:
    last = Progress()
    while not shutdown.is_set():
        logs = [w.log for w in workers]
        now = Progress(
            joined=sum(not math.isnan(log.welcomed_at) for log in logs),
            refused=sum(bool(log.refused) for log in logs),
            started=sum(not math.isnan(log.started_at) for log in logs),
            stopped=sum(not math.isnan(log.stopped_at) for log in logs),
        )
        if now != last:
            conn.send(("progress", now))
            last = now
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(shutdown.wait(), timeout=0.25)


class Simulators:
    """The simulator processes of one step, seen from the orchestrator."""

    def __init__(self, configs: Sequence[SimConfig]) -> None:
        context = multiprocessing.get_context("spawn")
        self._conns: list[multiprocessing.connection.Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        self._progress: list[Progress] = [Progress() for _ in configs]
        self._results: list[SimResult | None] = [None for _ in configs]
        for config in configs:
            parent, child = context.Pipe(duplex=True)
            process = context.Process(target=simulator_main, args=(config, child),
                                      name="phalanx-sim", daemon=True)
            process.start()
            child.close()
            self._conns.append(parent)
            self._processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p.pid is not None]

    def alive(self) -> bool:
        return all(p.is_alive() for p in self._processes)

    def progress(self) -> Progress:
        return Progress(*(sum(getattr(p, name) for p in self._progress)
                          for name in ("joined", "refused", "started", "stopped")))

    def pump(self, seconds: float) -> None:
        """Read what the simulators report for up to ``seconds``."""
        ready = multiprocessing.connection.wait(self._conns, timeout=max(0.0, seconds))
        for conn in ready:
            if not isinstance(conn, multiprocessing.connection.Connection):
                continue
            index = self._conns.index(conn)
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                continue
            if kind == "progress":
                self._progress[index] = payload
            elif kind == "result":
                self._results[index] = payload

    def wait_until(self, done: Callable[[Progress], bool], timeout: float,
                   abort: Callable[[], bool]) -> bool:
        """Pump until ``done(progress)``; False after ``timeout`` or when ``abort()``."""
        deadline = time.monotonic() + timeout
        while not done(self.progress()):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or abort() or not self.alive():
                return False
            self.pump(min(remaining, 0.25))
        return True

    def finish(self, window: tuple[float, float], timeout: float = 20.0) -> list[SimResult]:
        """Tell every simulator to stop; collect their results; end stragglers by PID."""
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send(("stop", *window))
        deadline = time.monotonic() + timeout
        while any(r is None for r in self._results) and time.monotonic() < deadline:
            if not any(p.is_alive() for p in self._processes) and not any(
                    c.poll() for c in self._conns):
                break
            self.pump(min(0.5, max(0.0, deadline - time.monotonic())))
        self.kill()
        return [r for r in self._results if r is not None]

    def kill(self) -> None:
        for process in self._processes:
            process.join(timeout=2.0)
            if process.is_alive():
                process.terminate()
                process.join(timeout=2.0)
            if process.is_alive():
                process.kill()
                process.join(timeout=2.0)
        for conn in self._conns:
            conn.close()


def plan_simulators(endpoint: str, master_public: bytes, pairs: Sequence[KeyPair],
                    processes: int, cpu: int | None, hard_limit: float) -> list[SimConfig]:
    """Split ``pairs`` over ``processes`` simulator configs (interleaved phases)."""
    digest = hashlib.sha256(SCRIPT.read_bytes()).hexdigest()
    keys = [(i, pair.public, pair.secret or b"") for i, pair in enumerate(pairs)]
    return [
        SimConfig(endpoint=endpoint, master_public=master_public,
                  keys=tuple(keys[p::processes]), total_workers=len(pairs),
                  script_sha256=digest, version=phalanx_version(), cpu=cpu,
                  join_timeout=JOIN_TIMEOUT_S, hard_limit=hard_limit, seed=1000 + p)
        for p in range(processes)
    ]


# ---------------------------------------------------------------- one step


@dataclass(frozen=True, slots=True)
class StepResult:
    workers: int
    ok: bool
    note: str
    master_cpu: float = math.nan
    master_cpu_run: float = math.nan
    sim_cpu: float = math.nan
    join_s: float = math.nan
    fanout_s: float = math.nan
    missing_lines: int = 0
    problem_lines: int = 0
    problem_examples: tuple[str, ...] = ()
    max_mhb_gap: float = math.nan
    late_mhb_gaps: int = 0
    max_hb_lag: float = math.nan
    stats_sent: int = 0
    requests_sent: int = 0
    requests_counted: int | None = None
    """``total.requests`` of the master's --json summary (None: not readable)."""
    send_failures: int = 0
    rejoins: int = 0
    unexpected: int = 0
    refused: tuple[str, ...] = ()
    master_exit: int | None = None


@dataclass(frozen=True, slots=True)
class Setup:
    python: str
    duration: float
    warmup: float
    sim_procs: int
    master_cpu: int | None
    sim_cpu: int | None
    keep: bool
    contend: int = 0
    """Busy processes sharing the master's core (a master that gets less CPU than it needs)."""


def master_command(setup: Setup, port: int, keys: Path, workers: int, runtime: int,
                   summary: Path) -> list[str]:
    return [setup.python, "-m", "phalanx", "master", "-f", str(SCRIPT),
            "--host", "http://127.0.0.1:9", "--bind", f"127.0.0.1:{port}",
            "--keys", str(keys), "-u", str(10 * workers), "-r", str(SPAWN_RATE),
            "-t", f"{runtime}s", "--expect-workers", str(workers),
            "--expect-workers-timeout", "120s", "--live", "off", "--json", str(summary)]


def scan_log(path: Path) -> tuple[int, int, tuple[str, ...]]:
    """(lines with "is missing", warning/error lines, a few distinct examples)."""
    missing = problems = 0
    examples: list[str] = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return 0, 0, ()
    for line in text.splitlines():
        if _MISSING in line:
            missing += 1
        if _PROBLEM_LINE.search(line):
            problems += 1
            short = line.strip()[:200]
            if len(examples) < LOG_EXAMPLES and short not in examples:
                examples.append(short)
    return missing, problems, tuple(examples)


def read_total_requests(path: Path) -> int | None:
    """``total.requests`` from the master's JSON summary, None if absent or unreadable."""
    try:
        data = json.loads(path.read_text())
        value = data["total"]["requests"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) else None


def tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """End the master we started (by its PID): SIGINT, then SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


BURNER = ("import time\nend = time.monotonic() + {seconds}\n"
          "while time.monotonic() < end:\n    pass\n")


def start_burners(setup: Setup, seconds: float) -> list[subprocess.Popen[bytes]]:
    """``setup.contend`` busy loops pinned to the master's core, each ending by itself after
    ``seconds`` (and stopped by PID at the step's end)."""
    burners = []
    for _ in range(setup.contend):
        burner = subprocess.Popen([sys.executable, "-c", BURNER.format(seconds=seconds)],
                                  stdin=subprocess.DEVNULL)
        if setup.master_cpu is not None:
            os.sched_setaffinity(burner.pid, {setup.master_cpu})
        burners.append(burner)
    return burners


def run_step(setup: Setup, workers: int) -> StepResult:
    runtime = math.ceil(setup.warmup + setup.duration) + RUNTIME_MARGIN_S
    work = Path(tempfile.mkdtemp(prefix=f"phalanx-master-scale-{workers}-"))
    keys = work / "keys"
    master_public, pairs = make_keys(keys, workers)
    port = free_port()
    stderr_path, stdout_path = work / "master.stderr", work / "master.stdout"
    summary = work / "summary.json"
    command = master_command(setup, port, keys, workers, runtime, summary)
    hard_limit = JOIN_TIMEOUT_S + runtime + EXIT_TIMEOUT_S + 60.0
    print(f"\n== {workers} workers: master on 127.0.0.1:{port}, -t {runtime}s, "
          f"logs in {work}", flush=True)
    simulators: Simulators | None = None
    burners: list[subprocess.Popen[bytes]] = []
    window = (0.0, 0.0)
    with stderr_path.open("wb") as err, stdout_path.open("wb") as out:
        master = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    master_started = time.monotonic()
    master_cpu0 = 0.0
    try:
        if setup.master_cpu is not None:
            os.sched_setaffinity(master.pid, {setup.master_cpu})
        deadline = time.monotonic() + LISTEN_TIMEOUT_S
        while not is_listening(port):
            if master.poll() is not None or time.monotonic() > deadline:
                why = (f"master exited ({master.returncode})" if master.returncode is not None
                       else f"master not listening after {LISTEN_TIMEOUT_S:.0f} s")
                return StepResult(workers, False, f"{why}; stderr tail:\n{tail(stderr_path)}",
                                  master_exit=master.poll())
            time.sleep(0.05)
        if setup.master_cpu is not None and not pin_all_threads(master.pid, {setup.master_cpu}):
            print("   note: some master threads could not be pinned", flush=True)
        burners = start_burners(setup, hard_limit)
        simulators = Simulators(plan_simulators(f"tcp://127.0.0.1:{port}", master_public, pairs,
                                                setup.sim_procs, setup.sim_cpu, hard_limit))
        master_gone: Callable[[], bool] = lambda: master.poll() is not None  # noqa: E731
        if not simulators.wait_until(lambda p: p.started + p.refused >= workers,
                                     JOIN_TIMEOUT_S, master_gone):
            progress = simulators.progress()
            return _failed(setup, workers, simulators, stderr_path, master,
                           f"not all workers started: {progress}")
        if simulators.progress().refused:
            return _failed(setup, workers, simulators, stderr_path, master,
                           f"{simulators.progress().refused} workers refused")
        joined_at = time.monotonic()
        print(f"   all {workers} workers started after {joined_at - master_started:.1f} s; "
              f"warm-up {setup.warmup:g} s, then a {setup.duration:g} s window", flush=True)
        simulators.wait_until(lambda p: False, setup.warmup, master_gone)
        if master.poll() is not None or not simulators.alive():
            return _failed(setup, workers, simulators, stderr_path, master,
                           f"the master ({master.returncode}) or a simulator exited early")
        sim_pids = simulators.pids
        # The master is never reaped before the window's end (poll() is not called on it
        # while it runs), so /proc/<pid>/stat stays readable even if it exits meanwhile.
        t0 = time.monotonic()
        master_cpu0, sims0 = cpu_seconds(master.pid), [cpu_seconds(p) for p in sim_pids]
        simulators.wait_until(lambda p: p.stopped > 0, setup.duration, lambda: False)
        t1 = time.monotonic()
        master_cpu1, sims1 = cpu_seconds(master.pid), [cpu_seconds(p) for p in sim_pids]
        window = (t0, t1)
        if master.poll() is not None:
            return _failed(setup, workers, simulators, stderr_path, master,
                           f"the master exited during the window ({master.returncode})")
        cut = simulators.progress().stopped > 0 or master.poll() is not None
        print(f"   window {t1 - t0:.1f} s; waiting for the master's Stop", flush=True)
        stopped = simulators.wait_until(lambda p: p.stopped >= workers,
                                        runtime + RUNTIME_MARGIN_S, master_gone)
        try:
            master.wait(timeout=EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            stop_process(master)
        results = simulators.finish(window)
        simulators = None
        missing, problems, examples = scan_log(stderr_path)
        wall = t1 - t0
        notes = []
        if cut:
            notes.append("window cut short by the master's Stop")
        if not stopped:
            notes.append("not every worker got Stop")
        if master.returncode not in (0, 1):  # 1: the simulated stats hold failures
            notes.append(f"master exit status {master.returncode}")
        last_welcome = max(r.last_welcome for r in results)
        return StepResult(
            workers=workers, ok=not cut, note="; ".join(notes),
            master_cpu=100.0 * (master_cpu1 - master_cpu0) / wall,
            master_cpu_run=100.0 * master_cpu1 / (t1 - master_started),
            sim_cpu=100.0 * (sum(sims1) - sum(sims0)) / wall,
            join_s=last_welcome - min(r.first_open for r in results),
            fanout_s=max(r.last_start for r in results) - last_welcome,
            missing_lines=missing, problem_lines=problems, problem_examples=examples,
            max_mhb_gap=max(r.max_mhb_gap for r in results),
            late_mhb_gaps=sum(r.late_mhb_gaps for r in results),
            max_hb_lag=max(r.max_hb_lag for r in results),
            stats_sent=sum(r.stats_sent for r in results),
            requests_sent=sum(r.requests_sent for r in results),
            requests_counted=read_total_requests(summary),
            send_failures=sum(r.send_failures for r in results),
            rejoins=sum(r.rejoins for r in results),
            unexpected=sum(r.unexpected for r in results),
            refused=tuple(x for r in results for x in r.refused)[:LOG_EXAMPLES],
            master_exit=master.returncode,
        )
    finally:
        for burner in burners:
            stop_process(burner)
        if simulators is not None:
            simulators.finish(window, timeout=5.0)
        stop_process(master)
        if not setup.keep:
            shutil.rmtree(work, ignore_errors=True)


def _failed(setup: Setup, workers: int, simulators: Simulators, stderr_path: Path,
            master: subprocess.Popen[bytes], why: str) -> StepResult:
    stop_process(master)
    results = simulators.finish((0.0, 0.0), timeout=10.0)
    refused = tuple(x for r in results for x in r.refused)
    missing, problems, examples = scan_log(stderr_path)
    return StepResult(workers, False, f"{why}; master stderr tail:\n{tail(stderr_path)}",
                      missing_lines=missing, problem_lines=problems,
                      problem_examples=examples, refused=refused[:LOG_EXAMPLES],
                      master_exit=master.returncode)


# ---------------------------------------------------------------- report


def fmt(value: float, spec: str = ".1f", suffix: str = "") -> str:
    return "-" if math.isnan(value) else f"{value:{spec}}{suffix}"


def render(results: Sequence[StepResult], setup: Setup, header: str) -> str:
    lines = [header, ""]
    lines.append(f"{'workers':>7}  {'master CPU':>10}  {'Locust ref':>10}  {'Locust/phx':>10}  "
                 f"{'missing':>7}  {'join':>7}  {'fan-out':>7}  {'mhb gap':>7}  "
                 f"{'sim CPU':>7}  {'sim lag':>7}")
    for r in results:
        reference = LOCUST_REFERENCE.get(r.workers)
        ratio = (reference / r.master_cpu if reference is not None and r.master_cpu > 0
                 else math.nan)
        mark = "*" if r.master_cpu >= SATURATED else ""
        lines.append(
            f"{r.workers:>7}  {fmt(r.master_cpu, '.1f', '%' + mark):>10}  "
            f"{(f'{reference:.0f}%' if reference is not None else '-'):>10}  "
            f"{fmt(ratio, '.1f', 'x'):>10}  {r.missing_lines:>7}  "
            f"{fmt(r.join_s, '.2f', 's'):>7}  {fmt(r.fanout_s, '.2f', 's'):>7}  "
            f"{fmt(r.max_mhb_gap, '.2f', 's'):>7}  {fmt(r.sim_cpu, '.0f', '%'):>7}  "
            f"{fmt(r.max_hb_lag, '.2f', 's'):>7}")
    lines.append("")
    lines.append("master CPU: % of one core over the steady window; Locust ref: Locust 2.47 "
                 "master, reference figures")
    lines.append("from the issue measured on this kind of machine, NOT rerun here; "
                 "Locust/phx: how many times more CPU")
    lines.append("Locust's master used; missing: master log lines with 'is missing'; join: "
                 "first connect to last Welcome;")
    lines.append("fan-out: last Welcome to last Start; mhb gap: largest gap between two "
                 "MasterHeartbeats seen by a worker")
    lines.append("in the window (1.00s = on time); sim CPU / sim lag: the simulator's own CPU "
                 "and heartbeat-send lateness.")
    for r in results:
        extra = [f"master CPU from launch to window end {fmt(r.master_cpu_run, '.1f', '%')}",
                 f"{r.stats_sent} Stats sent ({r.requests_sent} requests in them; "
                 f"master summary counted {r.requests_counted})",
                 f"{r.send_failures} send failures, {r.rejoins} Rejoin, "
                 f"{r.unexpected} unexpected messages",
                 f"{r.late_mhb_gaps} MasterHeartbeat gaps > {LATE_GAP:g} s",
                 f"{r.problem_lines} warning/error lines in the master log",
                 f"master exit {r.master_exit}"]
        lines.append(f"- {r.workers} workers: " + ", ".join(extra))
        if r.note:
            lines.append(f"    note: {r.note}")
        for example in r.problem_examples:
            lines.append(f"    log: {example}")
        for refused in r.refused:
            lines.append(f"    refused: {refused}")
    if any(r.master_cpu >= SATURATED for r in results):
        lines.append(f"* saturated (>= {SATURATED:g}% of its core): the master could not keep up, "
                     "so the figure is a floor, and heartbeats and stats waited in its queue.")
    big = [r for r in results if r.workers == TARGET_WORKERS and not math.isnan(r.master_cpu)]
    if big:
        r = big[0]
        met = r.master_cpu < TARGET_CPU_PERCENT and r.missing_lines == 0
        lines.append(f"Target ({TARGET_WORKERS} workers < {TARGET_CPU_PERCENT:.0f}% of one core, "
                     f"no missed heartbeats): {'met' if met else 'NOT met'} "
                     f"({r.master_cpu:.1f}%, {r.missing_lines} missing)")
    busy = [r for r in results if r.sim_cpu > 80.0]
    if busy:
        lines.append("WARNING: the simulator used over 80% of its core: its lag may be in the "
                     "figures (try --sim-procs or a bigger machine)")
    return "\n".join(lines)


def parse_workers(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of counts: {text}") from None
    if not counts or any(not 1 <= c <= 5000 for c in counts):
        raise argparse.ArgumentTypeError("worker counts must be between 1 and 5000")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workers", type=parse_workers, default=[50, 200, 500, 1000],
                        help="comma-separated worker counts (default 50,200,500,1000)")
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds of the steady window per step (default 30)")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds between the last Start and the window (default 5)")
    parser.add_argument("--sim-procs", type=int, default=0,
                        help="simulator processes (default: one per 1000 workers)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter that runs 'python -m phalanx master'")
    parser.add_argument("--keep", action="store_true", help="keep each step's keys and logs")
    parser.add_argument("--contend", type=int, default=0, metavar="N",
                        help="N busy processes share the master's core: a master short of "
                             "CPU (stats late, no worker may be marked missing)")
    parser.add_argument("--no-save", action="store_true",
                        help=f"do not write the table to {RESULTS}/master-scale-<date>.txt")
    args = parser.parse_args(argv)
    if not 1.0 <= args.duration <= 3600.0 or not 0.0 <= args.warmup <= 600.0:
        parser.error("--duration must be in [1, 3600] and --warmup in [0, 600]")
    if not 0 <= args.contend <= 16:
        parser.error("--contend must be in [0, 16]")
    check = subprocess.run([args.python, "-m", "phalanx", "master", "--help"],
                           capture_output=True, timeout=60, check=False)
    if check.returncode != 0:
        print("'phalanx master' is not available:\n" + check.stderr.decode(errors="replace"),
              file=sys.stderr)
        return 2
    cpus = sorted(os.sched_getaffinity(0))
    master_cpu = sim_cpu = None
    if len(cpus) >= 2:
        master_cpu, sim_cpu = cpus[0], cpus[1]
        os.sched_setaffinity(0, {sim_cpu})  # this orchestrator stays off the master's core
        pinning = f"master pinned to CPU {master_cpu}, simulators to CPU {sim_cpu}"
        if args.contend:
            pinning += f"; {args.contend} busy processes share the master's CPU"
    else:
        pinning = f"NOT pinned: only {len(cpus)} usable CPU (master and simulators share it)"
    raise_fd_limit()
    results: list[StepResult] = []
    for workers in args.workers:
        procs = args.sim_procs or max(1, math.ceil(workers / 1000))
        setup = Setup(python=args.python, duration=args.duration, warmup=args.warmup,
                      sim_procs=procs, master_cpu=master_cpu, sim_cpu=sim_cpu, keep=args.keep,
                      contend=args.contend)
        result = run_step(setup, workers)
        print(f"   -> master {fmt(result.master_cpu, '.1f', '%')} of one core, "
              f"{result.missing_lines} missing" + (f"; {result.note}" if result.note else ""),
              flush=True)
        results.append(result)
    header = (f"master scale, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
              f"{platform.node()}: {os.cpu_count()} CPUs ({_cpu_model()}), "
              f"Linux {platform.release()}, Python {platform.python_version()}, "
              f"phalanx {phalanx_version()}, pyzmq {zmq.__version__} (libzmq "
              f"{zmq.zmq_version()})\n{pinning}; window {args.duration:g} s after "
              f"{args.warmup:g} s warm-up; users 10 x workers")
    table = render(results, setup, header)
    print("\n" + table)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"master-scale-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.txt"
        out.write_text(table + "\n")
        print(f"\nwritten to {out}")
    return 0 if all(r.ok for r in results) else 1


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
