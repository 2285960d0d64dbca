"""Resident memory per idle simulated user: phalanx against Locust, side by side.

Usage (bench/run.sh does this)::

    python bench/memory.py --phalanx-python .venv/bin/python \\
        --locust-python bench/.venv-locust/bin/python [--users 10000]

The driver runs one fresh child process per (tool, user class) and prints a
table. Each child (``--measure phalanx|locust --kind user|http``):

1. starts a run through the tool's own engine (phalanx: ``LocalRunner`` on
   uvloop; Locust: ``Environment`` + local runner on gevent) with
   ``WARMUP_USERS`` idle users, so one-time costs (imports, task tables, TLS
   contexts, runner state) are paid before the baseline;
2. waits until every user has run its one trivial task and is sleeping in
   ``wait_time = constant(3600)``, collects garbage, reads ``VmRSS`` from
   ``/proc/self/status``;
3. ramps ``--users`` more idle users the same way, reads ``VmRSS`` again;
4. prints ``(after - before) / users`` as one JSON line, then stops the run.

Kinds: ``bare`` is the floor, no user object at all (phalanx: a uvloop task
in ``asyncio.sleep``; Locust: a gevent greenlet in ``gevent.sleep``), spawned
directly; ``user`` is the tool's plain ``User``; ``http`` is its
``HttpUser`` whose task touches ``self.client`` (phalanx creates the session
lazily, Locust in the constructor), so both hold an HTTP session object. No
request is ever sent: the host (127.0.0.1, discard port) is never contacted.

Bounds: every wait has a deadline (``SPAWN_TIMEOUT_S``); every child has a
wall-clock timeout. RSS moves in pages and allocator arenas, so the figure is
an estimate good to a few per cent at 10,000 users.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

WARMUP_USERS = 100
IDLE_WAIT_S = 3600.0
SPAWN_TIMEOUT_S = 120.0
CHILD_TIMEOUT_S = 300.0
UNUSED_HOST = "http://127.0.0.1:9"
TARGET_BYTES = 4096
KINDS = ("bare", "user", "http")
KIND_LABELS = {
    "bare": "bare task (floor)",
    "user": "User (no client)",
    "http": "HttpUser (client made)",
}


def rss_bytes() -> int:
    """This process's resident set size, from ``/proc/self/status`` (``VmRSS``)."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS line in /proc/self/status (Linux only)")


class Arrivals:
    """Counts users that finished their first task; ``reached(n)`` once n did."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def arrive(self) -> None:
        self.count += 1

    def reached(self, target: int) -> bool:
        return self.count >= target


def result(
    tool: str, version: str, kind: str, users: int, before: int, after: int
) -> dict[str, Any]:
    return {
        "tool": tool,
        "version": version,
        "kind": kind,
        "users": users,
        "rss_before": before,
        "rss_after": after,
        "bytes_per_user": (after - before) / users,
    }


# --- phalanx --------------------------------------------------------------------------


def measure_phalanx(users: int, kind: str) -> dict[str, Any]:
    import asyncio

    import uvloop

    import phalanx
    from phalanx.engine.runner import LocalRunner, RunPlan
    from phalanx.scripting.user import UserContext
    from phalanx.stats import Aggregator, Recorder

    arrivals = Arrivals()

    class IdleUser(phalanx.User):
        wait_time = phalanx.constant(IDLE_WAIT_S)

        @phalanx.task
        async def once(self) -> None:
            arrivals.arrive()

    class IdleHttpUser(phalanx.HttpUser):
        host = UNUSED_HOST
        wait_time = phalanx.constant(IDLE_WAIT_S)

        @phalanx.task
        async def once(self) -> None:
            _ = self.client  # creates the session; nothing is sent
            arrivals.arrive()

    user_class: type[phalanx.User] = IdleUser if kind == "user" else IdleHttpUser

    async def until(target: int) -> None:
        # Bounded wait on a condition the users advance; each pass yields to them.
        deadline = time.monotonic() + SPAWN_TIMEOUT_S
        while not arrivals.reached(target):
            if time.monotonic() > deadline:
                raise TimeoutError(f"phalanx: {arrivals.count} of {target} users started")
            await asyncio.sleep(0.01)

    async def bare() -> tuple[int, int]:
        async def idle() -> None:
            arrivals.arrive()
            await asyncio.sleep(IDLE_WAIT_S)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(idle()) for _ in range(WARMUP_USERS)]
            try:
                await until(WARMUP_USERS)
                gc.collect()
                before = rss_bytes()
                tasks += [group.create_task(idle()) for _ in range(users)]
                await until(WARMUP_USERS + users)
                gc.collect()
                after = rss_bytes()
            finally:
                for spawned in tasks:
                    spawned.cancel()
        return before, after

    async def main() -> tuple[int, int]:
        recorder = Recorder(0.0)
        runner = LocalRunner(UserContext(recorder=recorder), recorder, Aggregator(start=0.0))
        rate = float(max(users, WARMUP_USERS))
        plan = RunPlan(user_classes=(user_class,), users=WARMUP_USERS, spawn_rate=rate)
        async with asyncio.TaskGroup() as group:
            run = group.create_task(runner.run(plan))
            try:
                await until(WARMUP_USERS)
                gc.collect()
                before = rss_bytes()
                runner.change_target(WARMUP_USERS + users, rate)
                await until(WARMUP_USERS + users)
                gc.collect()
                after = rss_bytes()
            finally:
                runner.request_stop()
            await asyncio.wait_for(run, SPAWN_TIMEOUT_S)
        return before, after

    before, after = uvloop.run(bare() if kind == "bare" else main())
    from phalanx.core.build import build_kind

    version = f"{phalanx.__version__} ({build_kind()})"
    return result("phalanx", version, kind, users, before, after)


# --- Locust (runs in the bench venv) ----------------------------------------------------


def measure_locust(users: int, kind: str) -> dict[str, Any]:
    import logging

    import gevent  # type: ignore[import-untyped]  # the bench venv only
    import locust  # type: ignore[import-not-found]
    from locust.env import Environment  # type: ignore[import-not-found]

    logging.getLogger("locust").setLevel(logging.ERROR)  # the "spawn rate > 100" warning
    arrivals = Arrivals()

    class IdleUser(locust.User):  # type: ignore[misc]
        wait_time = locust.constant(IDLE_WAIT_S)

        @locust.task  # type: ignore[untyped-decorator]
        def once(self) -> None:
            arrivals.arrive()

    class IdleHttpUser(locust.HttpUser):  # type: ignore[misc]
        host = UNUSED_HOST
        wait_time = locust.constant(IDLE_WAIT_S)

        @locust.task  # type: ignore[untyped-decorator]
        def once(self) -> None:
            _ = self.client  # made in the constructor already; nothing is sent
            arrivals.arrive()

    user_class = IdleUser if kind == "user" else IdleHttpUser

    def until(target: int) -> None:
        deadline = time.monotonic() + SPAWN_TIMEOUT_S
        while not arrivals.reached(target):
            if time.monotonic() > deadline:
                raise TimeoutError(f"Locust: {arrivals.count} of {target} users started")
            gevent.sleep(0.01)

    if kind == "bare":
        def idle() -> None:
            arrivals.arrive()
            gevent.sleep(IDLE_WAIT_S)

        greenlets = [gevent.spawn(idle) for _ in range(WARMUP_USERS)]
        try:
            until(WARMUP_USERS)
            gc.collect()
            before = rss_bytes()
            greenlets += [gevent.spawn(idle) for _ in range(users)]
            until(WARMUP_USERS + users)
            gc.collect()
            after = rss_bytes()
        finally:
            gevent.killall(greenlets, timeout=SPAWN_TIMEOUT_S)
        return result("Locust", str(locust.__version__), kind, users, before, after)

    env = Environment(user_classes=[user_class], host=UNUSED_HOST)
    runner = env.create_local_runner()
    rate = max(users, WARMUP_USERS)
    try:
        runner.start(WARMUP_USERS, spawn_rate=rate)
        until(WARMUP_USERS)
        gc.collect()
        before = rss_bytes()
        runner.start(WARMUP_USERS + users, spawn_rate=rate)
        until(WARMUP_USERS + users)
        gc.collect()
        after = rss_bytes()
    finally:
        runner.quit()
    return result("Locust", str(locust.__version__), kind, users, before, after)


# --- driver -------------------------------------------------------------------------------


def run_child(python: str, tool: str, kind: str, users: int) -> dict[str, Any] | str:
    """One measurement in a fresh process: its result, or the reason it failed."""
    import subprocess

    argv = [python, str(Path(__file__).resolve()), "--measure", tool, "--kind", kind,
            "--users", str(users)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"timed out after {CHILD_TIMEOUT_S:g} s"
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return f"exit {done.returncode}: {done.stderr.strip()[-800:]}"
    parsed: dict[str, Any] = json.loads(lines[-1])
    return parsed


def cell(outcome: dict[str, Any] | str) -> str:
    if isinstance(outcome, str):
        return "FAILED"
    return f"{outcome['bytes_per_user']:,.0f} B"


def compare(args: argparse.Namespace) -> int:
    kinds = KINDS if args.kind is None else (args.kind,)
    rows: list[tuple[str, dict[str, Any] | str, dict[str, Any] | str]] = []
    for kind in kinds:
        print(f"[memory] {KIND_LABELS[kind]}: phalanx ...", file=sys.stderr, flush=True)
        ours = run_child(args.phalanx_python, "phalanx", kind, args.users)
        print(f"[memory] {KIND_LABELS[kind]}: Locust ...", file=sys.stderr, flush=True)
        theirs = run_child(args.locust_python, "locust", kind, args.users)
        rows.append((kind, ours, theirs))
    versions = {
        outcome["tool"]: outcome["version"]
        for _, *outcomes in rows for outcome in outcomes if isinstance(outcome, dict)
    }
    print(f"memory per idle simulated user: {args.users:,} users in one process, "
          f"RSS after minus before, / users "
          f"(phalanx {versions.get('phalanx', '?')}, Locust {versions.get('Locust', '?')})")
    head = f"{'user class':<26}{'phalanx':>12}{'Locust':>12}{'Locust/phalanx':>16}"
    print(head)
    print("-" * len(head))
    failed = False
    for kind, ours, theirs in rows:
        ratio = "-"
        if isinstance(ours, dict) and isinstance(theirs, dict) and ours["bytes_per_user"] > 0:
            ratio = f"{theirs['bytes_per_user'] / ours['bytes_per_user']:.1f}x"
        print(f"{KIND_LABELS[kind]:<26}{cell(ours):>12}{cell(theirs):>12}{ratio:>16}")
        failed = failed or isinstance(ours, str) or isinstance(theirs, str)
    print(f"target: phalanx <= {TARGET_BYTES:,} B per idle user")
    for kind, ours, _ in rows:
        if isinstance(ours, dict) and kind != "bare":
            met = "met" if ours["bytes_per_user"] <= TARGET_BYTES else "NOT met"
            print(f"  {KIND_LABELS[kind]}: {ours['bytes_per_user']:,.0f} B ({met})")
    for kind, *outcomes in rows:
        for outcome in outcomes:
            if isinstance(outcome, str):
                print(f"  failure ({KIND_LABELS[kind]}): {outcome}")
    return 1 if failed else 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=10_000,
                        help="idle users to add (default 10000)")
    parser.add_argument("--kind", choices=KINDS, default=None, help="one user class only")
    parser.add_argument("--measure", choices=("phalanx", "locust"), default=None,
                        help="child mode: measure one tool in this process")
    parser.add_argument("--phalanx-python", default=sys.executable)
    parser.add_argument("--locust-python", default="bench/.venv-locust/bin/python")
    args = parser.parse_args(argv)
    if not 1 <= args.users <= 100_000:
        parser.error("--users must be 1..100000")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.measure is None:
        return compare(args)
    measure: Callable[[int, str], dict[str, Any]] = (
        measure_phalanx if args.measure == "phalanx" else measure_locust
    )
    print(json.dumps(measure(args.users, args.kind or "http")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
