"""Side-by-side throughput: wrk, Locust FastHttpUser, Locust HttpUser and phalanx.

phalanx runs once per build it is given: ``--phalanx`` (the Python sources)
and, optionally, ``--phalanx-compiled`` (the compiled build, see
``src/phalanx/core/build.py``); each one's ``--version`` must name the build
it is said to be, or the run stops.

Called by bench/run.sh once nginx is up on a loopback port. Runs each load
generator one after another against the same server, each pinned to the same
load core (``taskset``), with the same number of connections/users and no
wait time, reads requests/s from each tool's own output, and prints (and
writes) one table with ratios against wrk and against Locust FastHttpUser.

How each figure is read (each tool's own numbers, never re-measured here):

- wrk: the ``Requests/sec`` line (all connections open at once, no ramp-up);
- Locust: ``--json-file``; requests summed over entries, divided by
  ``max(last_request_timestamp) - min(start_time)`` (Locust's own "total
  req/s" formula);
- phalanx: ``--json``; ``total.requests / run.duration_s``.

wrk opens all its connections at once and Locust starts its users in one
batch; phalanx is given a spawn rate of 100 x users, so its 50 users start
within about 10 ms too: all three measure steady-state throughput.
Absolute numbers drift from machine to machine; the ratios of one run are
the result.

Each generator's CPU per request is also shown (its process's user and
system CPU time, start-up included, from ``getrusage(RUSAGE_CHILDREN)``,
divided by its requests): the kernel's share (sockets) is about the same for
every tool, so the user share says where a generator spends its own time.

With ``--rounds N`` the four generators run N times in the same order
(interleaved, so slow drifts of a shared machine hit all of them); the table
shows each one's median and range, and each round's own ratios are listed.

Every child runs under a wall-clock timeout; only the ``--host`` given (a
127.0.0.1 URL, checked) is targeted. Exit status: 0 when every generator
produced a figure, 1 otherwise (the targets are reported, not enforced).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import NoReturn
from urllib.parse import urlsplit

TARGET_VS_FAST = 4.0
"""phalanx should make at least this many times FastHttpUser's requests/s."""
TARGET_VS_WRK = 0.5
"""phalanx should make at least this share of wrk's requests/s."""
GRACE_S = 90
"""Extra seconds a child may take beyond the run time (start-up, ramp, shutdown)."""
LOG_TAIL_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Outcome:
    """One generator's result: ``rps`` is None when no figure could be read."""

    name: str
    rps: float | None
    requests: int = 0
    failures: int = 0
    note: str = ""
    cpu_user_s: float = 0.0
    """CPU seconds the generator's process spent in user mode (start-up included)."""
    cpu_sys_s: float = 0.0
    """... and in the kernel (sockets: about the same per request for every tool)."""


@dataclass(frozen=True, slots=True)
class Setup:
    host: str
    seconds: int
    users: int
    load_cpu: str | None
    work_dir: Path
    bench_dir: Path
    wrk: str
    locust: str
    phalanx: tuple[tuple[str, str], ...]
    """(label, executable) per phalanx build, e.g. ("phalanx (compiled)", ".../phalanx")."""


def pinned(setup: Setup, argv: Sequence[str]) -> list[str]:
    """``argv`` run on the load core (or unpinned when no core was given)."""
    prefix = ["taskset", "-c", setup.load_cpu] if setup.load_cpu is not None else []
    return [*prefix, *argv]


def children_cpu() -> tuple[float, float]:
    """(user, system) CPU seconds of every child this process has waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime, usage.ru_stime


def with_cpu(outcome: Outcome, before: tuple[float, float]) -> Outcome:
    """``outcome`` with the CPU its generator used since ``before`` (one child waited for)."""
    user, system = children_cpu()
    return replace(outcome, cpu_user_s=user - before[0], cpu_sys_s=system - before[1])


def run_logged(argv: Sequence[str], log: Path, timeout: float) -> int | None:
    """Run ``argv`` with stdout+stderr to ``log``; the exit code, or None on timeout."""
    print(f"  $ {' '.join(argv)}", flush=True)
    with log.open("wb") as out:
        try:
            done = subprocess.run(
                list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired:
            return None
    return done.returncode


def log_tail(log: Path) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no output)"
    return text[-LOG_TAIL_CHARS:].strip() or "(no output)"


def parse_wrk(text: str) -> tuple[float, int, int]:
    """``(requests/s, requests, errors)`` from wrk's report; ValueError when absent."""
    rate = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.MULTILINE)
    if rate is None:
        raise ValueError("no 'Requests/sec' line in wrk's output")
    count = re.search(r"^\s*(\d+) requests in", text, re.MULTILINE)
    errors = 0
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if socket_errors is not None:
        errors += sum(int(value) for value in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non_2xx is not None:
        errors += int(non_2xx.group(1))
    return float(rate.group(1)), int(count.group(1)) if count else 0, errors


def parse_locust(entries: object) -> tuple[float, int, int]:
    """``(requests/s, requests, failures)`` from Locust's ``--json-file`` list of entries."""
    if not isinstance(entries, list) or not entries:
        raise ValueError("Locust's JSON holds no stats entry")
    requests = sum(int(entry["num_requests"]) for entry in entries)
    failures = sum(int(entry["num_failures"]) for entry in entries)
    started = min(float(entry["start_time"]) for entry in entries)
    ended = max(float(entry["last_request_timestamp"] or 0.0) for entry in entries)
    if requests == 0 or ended <= started:
        raise ValueError("Locust recorded no request")
    return requests / (ended - started), requests, failures


def parse_phalanx(summary: object) -> tuple[float, int, int, list[str]]:
    """``(requests/s, requests, failures, problems)`` from phalanx's ``--json`` summary."""
    if not isinstance(summary, dict):
        raise ValueError("phalanx's JSON summary is not an object")
    total = summary["total"]
    duration = float(summary["run"]["duration_s"])
    requests = int(total["requests"])
    failures = int(total["failures"])
    if requests == 0 or duration <= 0:
        raise ValueError("phalanx recorded no request")
    problems = [
        f"error x{item['count']}: {item['method']} {item['name']}: {item['kind']}: "
        f"{item['message']}"
        for item in summary.get("errors", [])[:5]
    ]
    problems += [
        f"exception x{item['count']} in {item['task']}: {item['type']}: {item['message']} "
        f"({item['location']})"
        for item in summary.get("exceptions", [])[:5]
    ]
    return requests / duration, requests, failures, problems


def run_wrk(setup: Setup, round_tag: str) -> Outcome:
    name = "wrk"
    log = setup.work_dir / f"wrk{round_tag}.log"
    code = run_logged(
        pinned(setup, [setup.wrk, "-t1", f"-c{setup.users}", f"-d{setup.seconds}s",
                       f"{setup.host}/"]),
        log, setup.seconds + GRACE_S,
    )
    if code is None:
        return Outcome(name, None, note="timed out")
    try:
        rps, requests, errors = parse_wrk(log.read_text(encoding="utf-8", errors="replace"))
    except ValueError as exc:
        return Outcome(name, None, note=f"{exc} (exit {code}): {log_tail(log)}")
    notes = [] if code == 0 else [f"exit {code}"]
    if errors:
        notes.append(f"{errors:,} socket errors or non-2xx replies")
    return Outcome(name, rps, requests, errors, "; ".join(notes))


def run_locust(
    setup: Setup, label: str, locustfile: str, tag: str, round_tag: str
) -> Outcome:
    log = setup.work_dir / f"locust_{tag}{round_tag}.log"
    stem = setup.work_dir / f"locust_{tag}{round_tag}"
    code = run_logged(
        pinned(setup, [
            setup.locust, "-f", str(setup.bench_dir / locustfile), "--headless",
            "-u", str(setup.users), "-r", str(setup.users), "--run-time", f"{setup.seconds}s",
            "--host", setup.host, "--only-summary", "--json-file", str(stem),
            "--exit-code-on-error", "0", "--stop-timeout", "0",
        ]),
        log, setup.seconds + GRACE_S,
    )
    if code is None:
        return Outcome(label, None, note="timed out")
    try:
        data = json.loads(Path(f"{stem}.json").read_text(encoding="utf-8"))
        rps, requests, failures = parse_locust(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Outcome(label, None, note=f"{exc} (exit {code}): {log_tail(log)}")
    notes = [] if code == 0 else [f"exit {code}"]
    if failures:
        notes.append(f"{failures / requests:.1%} of requests failed")
    if "CPU usage above" in _read(log):
        notes.append("Locust warned: CPU-bound")
    return Outcome(label, rps, requests, failures, "; ".join(notes))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def run_phalanx(
    setup: Setup, name: str, executable: str, tag: str, round_tag: str
) -> tuple[Outcome, list[str]]:
    log = setup.work_dir / f"phalanx_{tag}{round_tag}.log"
    summary = setup.work_dir / f"phalanx_{tag}{round_tag}.json"
    code = run_logged(
        pinned(setup, [
            executable, "run", "-f", str(setup.bench_dir / "phalanx_script.py"),
            "--host", setup.host, "-u", str(setup.users), "-r", str(setup.users * 100),
            "-t", f"{setup.seconds}s", "--json", str(summary), "--live", "off",
        ]),
        log, setup.seconds + GRACE_S,
    )
    if code is None:
        return Outcome(name, None, note="timed out"), [log_tail(log)]
    try:
        data = json.loads(summary.read_text(encoding="utf-8"))
        rps, requests, failures, problems = parse_phalanx(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Outcome(name, None, note=f"{exc} (exit {code})"), [log_tail(log)]
    notes = [] if code == 0 else [f"exit {code}"]
    if failures:
        notes.append(f"{failures / requests:.1%} of requests failed")
    traceback = first_traceback(_read(log))
    if traceback:
        problems.append(f"first traceback in {name}'s output:\n{traceback}")
    return Outcome(name, rps, requests, failures, "; ".join(notes)), problems


def first_traceback(text: str, max_lines: int = 25) -> str:
    """The first Python traceback in ``text`` (with the line before it), or ``""``."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            start = max(0, index - 2)
            end = index + 1
            while end < len(lines) and end - index < max_lines:
                end += 1
                if lines[end - 1] and not lines[end - 1].startswith(" "):
                    break
            return "\n".join(f"    {item}" for item in lines[start:end])
    return ""


def ratio(value: float | None, base: float | None) -> str:
    if value is None or base is None or base <= 0:
        return "-"
    return f"{value / base:.2f}x"


def table(outcomes: Sequence[Outcome]) -> str:
    by_name = {outcome.name: outcome for outcome in outcomes}
    wrk = by_name.get("wrk")
    fast = by_name.get("Locust FastHttpUser")
    wrk_rps = wrk.rps if wrk else None
    fast_rps = fast.rps if fast else None
    header = f"{'generator':<22}{'requests/s':>12}{'vs wrk':>9}{'vs Fast':>9}" \
             f"{'requests':>11}{'failed':>8}{'us CPU/req':>12}{'user+sys':>14}  note"
    lines = [header, "-" * len(header)]
    for outcome in outcomes:
        rps = f"{outcome.rps:,.0f}" if outcome.rps is not None else "FAILED"
        per = 1e6 / outcome.requests if outcome.requests else 0.0
        user, system = outcome.cpu_user_s * per, outcome.cpu_sys_s * per
        cpu = f"{user + system:.2f}" if outcome.requests else "-"
        split = f"{user:.2f}+{system:.2f}" if outcome.requests else "-"
        lines.append(
            f"{outcome.name:<22}{rps:>12}{ratio(outcome.rps, wrk_rps):>9}"
            f"{ratio(outcome.rps, fast_rps):>9}{outcome.requests:>11,}{outcome.failures:>8,}"
            f"{cpu:>12}{split:>14}  {outcome.note}"
        )
    return "\n".join(lines)


def verdict(outcomes: Sequence[Outcome], builds: Sequence[str]) -> str:
    by_name = {outcome.name: outcome.rps for outcome in outcomes}
    fast, wrk = by_name.get("Locust FastHttpUser"), by_name.get("wrk")
    lines = [
        f"targets: phalanx >= {TARGET_VS_FAST:g}x Locust FastHttpUser, "
        f">= {TARGET_VS_WRK:.0%} of wrk"
    ]
    width = max(len(name) for name in builds)
    for name in builds:
        ours = by_name.get(name)
        if ours is not None and fast:
            got = ours / fast
            met = "met" if got >= TARGET_VS_FAST else "NOT met"
            lines.append(f"  {name:<{width}} / FastHttpUser = {got:.2f}x  ({met})")
        if ours is not None and wrk:
            got = ours / wrk
            met = "met" if got >= TARGET_VS_WRK else "NOT met"
            lines.append(f"  {name:<{width}} / wrk          = {got:.0%}  ({met})")
    return "\n".join(lines)


def first_line(argv: Sequence[str]) -> str:
    """First non-empty output line of a ``--version``-style command, or ``?``."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, timeout=30, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    for line in (done.stdout + done.stderr).decode(errors="replace").splitlines():
        if line.strip():
            return line.strip()
    return "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def header(setup: Setup, server_cpu: str | None, nginx: str) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    pinning = (
        f"nginx on CPU {server_cpu}, each generator on CPU {setup.load_cpu} (taskset)"
        if setup.load_cpu is not None and server_cpu is not None
        else "NOT pinned: fewer than 2 usable CPUs, server and generator share them"
    )
    return "\n".join([
        f"phalanx throughput benchmark, {now}",
        f"machine: {platform.node()}, {cpu_model()}, {os.cpu_count()} CPUs "
        f"({len(os.sched_getaffinity(0))} usable), Linux {platform.release()}",
        f"pinning: {pinning}",
        f"target: {setup.host}/ (nginx, 1 worker, 'hello\\n', keep-alive)",
        f"load: {setup.users} connections/users, no wait time, {setup.seconds} s each, "
        "one process each, one after another",
        "versions: " + "; ".join([
            nginx,
            first_line([setup.wrk, "-v"]).split(" Copyright")[0],
            first_line([setup.locust, "--version"]).split(" from ")[0],
            *(first_line([executable, "--version"]) for _, executable in setup.phalanx),
            f"Python {platform.python_version()}",
        ]),
    ])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", required=True, help="http://127.0.0.1:PORT of the nginx")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1,
                        help="run all generators this many times; report medians")
    parser.add_argument("--load-cpu", default=None, help="CPU for the generators (taskset -c)")
    parser.add_argument("--server-cpu", default=None, help="CPU nginx runs on (for the report)")
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True, help="write the report here")
    parser.add_argument("--wrk", default="wrk")
    parser.add_argument("--locust", required=True, help="the bench venv's locust executable")
    parser.add_argument("--phalanx", required=True,
                        help="phalanx executable of the Python sources (the project venv's)")
    parser.add_argument("--phalanx-compiled", default=None,
                        help="phalanx executable of a compiled build (optional)")
    parser.add_argument("--nginx-version", default="nginx ?")
    args = parser.parse_args(argv)
    host = urlsplit(args.host)
    if host.scheme != "http" or host.hostname != "127.0.0.1" or host.path not in ("", "/"):
        parser.error("--host must be http://127.0.0.1:PORT (loopback only)")
    if not 1 <= args.seconds <= 3600 or not 1 <= args.users <= 10_000:
        parser.error("--seconds must be 1..3600 and --users 1..10000")
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be 1..20")
    return args


PEERS = ("wrk", "Locust FastHttpUser", "Locust HttpUser")
PYTHON_BUILD = "phalanx (Python)"
COMPILED_BUILD = "phalanx (compiled)"
_BUILD_OF = {PYTHON_BUILD: "pure Python", COMPILED_BUILD: "compiled"}
"""What each phalanx label's ``--version`` must say in parentheses."""


def phalanx_builds(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """(label, executable) of each phalanx build to run; exits when one is not that build."""
    builds = [(PYTHON_BUILD, args.phalanx)]
    if args.phalanx_compiled:
        builds.append((COMPILED_BUILD, args.phalanx_compiled))
    for label, executable in builds:
        shown = first_line([executable, "--version"])
        if not shown.endswith(f"({_BUILD_OF[label]})"):
            sys.exit(f"throughput: {executable} --version says {shown!r}, "
                     f"not a {_BUILD_OF[label]} build")
    return tuple(builds)


def run_round(setup: Setup, index: int, rounds: int) -> tuple[list[Outcome], list[str]]:
    """Each generator once, in the fixed order; phalanx's problems beside."""
    round_tag = f"_r{index}" if rounds > 1 else ""
    prefix = f"round {index}/{rounds}, " if rounds > 1 else ""
    count = len(PEERS) + len(setup.phalanx)
    outcomes: list[Outcome] = []
    print(f"\n[{prefix}1/{count}] wrk", flush=True)
    before = children_cpu()
    outcomes.append(with_cpu(run_wrk(setup, round_tag), before))
    print(f"[{prefix}2/{count}] Locust FastHttpUser", flush=True)
    before = children_cpu()
    outcomes.append(with_cpu(
        run_locust(setup, PEERS[1], "locustfile_fast.py", "fast", round_tag), before))
    print(f"[{prefix}3/{count}] Locust HttpUser", flush=True)
    before = children_cpu()
    outcomes.append(with_cpu(
        run_locust(setup, PEERS[2], "locustfile_http.py", "http", round_tag), before))
    problems: list[str] = []
    for position, (label, executable) in enumerate(setup.phalanx, len(PEERS) + 1):
        print(f"[{prefix}{position}/{count}] {label}", flush=True)
        before = children_cpu()
        tag = "compiled" if label == COMPILED_BUILD else "python"
        ours, found = run_phalanx(setup, label, executable, tag, round_tag)
        outcomes.append(with_cpu(ours, before))
        problems += [f"{label}: {line}" for line in found]
    return outcomes, problems


def combine(name: str, runs: Sequence[Outcome]) -> Outcome:
    """One generator over all rounds: the median requests/s, summed counts, the spread."""
    figures = [run.rps for run in runs if run.rps is not None]
    notes = [run.note for run in runs if run.note]
    if len(runs) > 1 and figures:
        notes.insert(0, f"median of {len(figures)}, {min(figures):,.0f}..{max(figures):,.0f}")
    return Outcome(
        name,
        statistics.median(figures) if figures else None,
        sum(run.requests for run in runs),
        sum(run.failures for run in runs),
        "; ".join(dict.fromkeys(notes)),
        sum(run.cpu_user_s for run in runs),
        sum(run.cpu_sys_s for run in runs),
    )


def round_line(index: int, outcomes: Sequence[Outcome], builds: Sequence[str]) -> str:
    rps = {outcome.name: outcome.rps for outcome in outcomes}
    figures = ", ".join(
        f"{name} {value:,.0f}" if value is not None else f"{name} FAILED"
        for name, value in rps.items()
    )
    ratios = "; ".join(
        f"{name}/wrk {ratio(rps.get(name), rps.get('wrk'))}, "
        f"/Fast {ratio(rps.get(name), rps.get(PEERS[1]))}"
        for name in builds
    )
    return f"  round {index}: {figures}; {ratios}"


def _interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGTERM as Ctrl-C: ``subprocess.run`` then kills the generator it waits for."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return measure(args)
    except KeyboardInterrupt:
        print("throughput: interrupted; the running generator was stopped", file=sys.stderr)
        return 130


def measure(args: argparse.Namespace) -> int:
    setup = Setup(
        host=args.host.rstrip("/"), seconds=args.seconds, users=args.users,
        load_cpu=args.load_cpu, work_dir=args.work_dir,
        bench_dir=Path(__file__).resolve().parent, wrk=args.wrk, locust=args.locust,
        phalanx=phalanx_builds(args),
    )
    builds = [label for label, _ in setup.phalanx]
    intro = header(setup, args.server_cpu, args.nginx_version)
    print(intro, flush=True)
    rounds: list[list[Outcome]] = []
    problems: list[str] = []
    for index in range(1, args.rounds + 1):
        outcomes, found = run_round(setup, index, args.rounds)
        rounds.append(outcomes)
        problems += [f"round {index}: {line}" if args.rounds > 1 else line for line in found]
    combined = [
        combine(name, [outcomes[position] for outcomes in rounds])
        for position, name in enumerate((*PEERS, *builds))
    ]
    notes = [
        "requests/s: each tool's own figure (wrk Requests/sec; Locust --json-file and "
        "phalanx --json: requests / duration).",
        "start-up: wrk opens all connections at once, Locust starts its "
        f"{setup.users} users in one batch, phalanx at {setup.users * 100}/s "
        "(all within about 10 ms).",
    ]
    per_round = (
        ["rounds (generators run one after another within a round):",
         *(round_line(index, outcomes, builds) for index, outcomes in enumerate(rounds, 1)),
         ""]
        if args.rounds > 1 else []
    )
    report = "\n".join([
        intro, "", table(combined), "", verdict(combined, builds), "", *per_round, *notes,
        *(["", "phalanx problems:", *(f"  {line}" for line in problems)] if problems else []),
    ]) + "\n"
    print("\n" + report[len(intro) + 1:], end="", flush=True)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(report, encoding="utf-8")
    print(f"written to {args.results}", flush=True)
    return 0 if all(outcome.rps is not None for outcome in combined) else 1


if __name__ == "__main__":
    sys.exit(main())
