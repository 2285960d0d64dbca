"""Distributed mode end to end: real ``phalanx master``/``worker``/``run --processes`` processes.

Every test runs a real HTTP target (tests/support/target.py) on 127.0.0.1 in
a thread of the test process, so its request counters are the ground truth
the master's summary is checked against. Masters and workers are real
processes talking over CURVE on 127.0.0.1 (or the private ipc:// socket of
``run --processes``); tests wait for log lines by polling with deadlines,
and kill only the processes they started, by PID (``Processes.close``).

A worker outlives its master's run (it waits for the next one); where a test
is not about how a worker stops, the ``procs`` fixture kills it at teardown.
A clean SIGTERM stop (exit 0) is checked after a normal run and after the
master was killed.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.cluster_support import (
    PATHS,
    SCRIPT,
    PhalanxProcess,
    Processes,
    free_port,
    poll_until,
    requests_to_script_paths,
)
from tests.support.target import ThreadedTarget

from phalanx.transport import KeyDir, fingerprint, read_public_key

Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.timeout(60)

MASTER_TIMEOUT_S = 3.0
"""The workers' --master-timeout in the master-lost test."""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "shop.py"
    path.write_text(SCRIPT)
    return path


def make_keys(directory: Path, *extra_workers: str) -> KeyDir:
    """A keys directory with worker w1 and ``extra_workers`` (made in-process: fast)."""
    keys = KeyDir(directory)
    keys.init()
    for name in extra_workers:
        keys.add_worker(name)
    return keys


def start_master(procs: Processes, script: Path, target: ThreadedTarget, port: int,
                 keys: Path, *extra: str, name: str = "master") -> PhalanxProcess:
    return procs.start(
        name, "master", "-f", str(script), "--host", target.url,
        "--bind", f"127.0.0.1:{port}", "--keys", str(keys), "--live", "off",
        "--stats-interval", "0.5", "--summary-interval", "0", *extra,
    )


def start_worker(procs: Processes, script: Path, port: int, keys: Path, name: str,
                 *extra: str) -> PhalanxProcess:
    return procs.start(
        name, "worker", "-f", str(script), "--master", f"127.0.0.1:{port}",
        "--keys", str(keys), "--name", name, "--report-interval", "0.5", *extra,
    )


def assert_summary_matches_target(summary: dict[str, Any], target: ThreadedTarget) -> None:
    """Every request the target received is in the summary, per endpoint, with percentiles."""
    counted = requests_to_script_paths(target.stats)
    assert target.stats.total_requests == sum(counted.values()), target.stats.by_path()
    assert summary["total"]["requests"] == target.stats.total_requests > 0
    assert summary["total"]["failures"] == 0
    entries = {(e["method"], e["name"]): e for e in summary["entries"]}
    assert set(entries) == {("GET", path) for path in PATHS}
    for path in PATHS:
        entry = entries["GET", path]
        assert entry["requests"] == counted[path], (path, entry, counted)
        assert {"50", "95", "99"} <= set(entry["percentiles_ms"])
    percentiles = summary["total"]["percentiles_ms"]
    assert {"50", "95", "99", "100"} <= set(percentiles)
    assert 0 <= percentiles["50"] <= percentiles["99"] <= percentiles["100"]


def stop_workers_cleanly(*workers: PhalanxProcess) -> None:
    """SIGTERM workers that wait for (or run for) a master: each says bye and exits 0.

    All get the signal first, then each is waited for: a worker whose master is gone
    may spend its send timeout (5 s) on a Bye nobody takes, so waiting in turn would
    add those up.
    """
    for worker in workers:
        assert worker.returncode is None, worker.raw_output()
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        code = worker.wait_exit()
        assert code == 0, worker.raw_output()
        assert "Traceback" not in worker.raw_output()


def growing(target: ThreadedTarget, above: int) -> Callable[[], bool]:
    return lambda: target.stats.total_requests > above


# --- totals -------------------------------------------------------------------------------


def test_run_with_two_processes_reports_exactly_what_the_target_received(
    procs: Processes, target: ThreadedTarget, script: Path, tmp_path: Path
) -> None:
    run = procs.start(
        "run", "run", "-f", str(script), "--host", target.url, "-u", "10", "-r", "100",
        "-t", "2s", "-s", "2s", "--processes", "2", "--live", "off", "--json", "out.json",
    )
    code = run.wait_exit(timeout=45)
    assert code == 0, run.raw_output()
    assert run.has(r"worker local-1 \S+ joined"), run.raw_output()
    assert run.has(r"worker local-2 \S+ joined"), run.raw_output()
    assert "Traceback" not in run.raw_output()
    summary = json.loads((tmp_path / "out.json").read_text())
    assert summary["run"]["stop_reason"] == "run_time"
    assert_summary_matches_target(summary, target)


def test_master_and_two_curve_workers_report_exactly_what_the_target_received(
    procs: Processes, target: ThreadedTarget, script: Path, tmp_path: Path, phalanx_cli: Cli
) -> None:
    assert phalanx_cli("keys", "init", "--dir", "keys").returncode == 0
    assert phalanx_cli("keys", "add-worker", "--dir", "keys", "w2").returncode == 0
    keys = tmp_path / "keys"
    port = free_port()
    master = start_master(procs, script, target, port, keys, "-u", "10", "-r", "100",
                          "-t", "2s", "-s", "2s", "--expect-workers", "2",
                          "--expect-workers-timeout", "30s", "--json", "out.json")
    workers = [start_worker(procs, script, port, keys, name) for name in ("w1", "w2")]
    code = master.wait_exit(timeout=45)
    assert code == 0, master.raw_output()
    output = master.output()
    assert master.has(r"worker w1 \[[0-9a-f]{16}\] joined"), output
    assert master.has(r"worker w2 \[[0-9a-f]{16}\] joined"), output
    assert "2 workers joined; starting run" in output
    assert "Traceback" not in master.raw_output()
    summary = json.loads((tmp_path / "out.json").read_text())
    assert_summary_matches_target(summary, target)
    for worker in workers:
        assert worker.has("joined the master"), worker.raw_output()
    stop_workers_cleanly(*workers)


# --- failures of a worker or of the master ----------------------------------------------


def test_a_killed_worker_is_marked_missing_and_its_users_go_to_the_survivor(
    procs: Processes, target: ThreadedTarget, script: Path, tmp_path: Path
) -> None:
    keys = make_keys(tmp_path / "keys", "w2").root
    port = free_port()
    master = start_master(procs, script, target, port, keys, "-u", "10", "-r", "100",
                          "-t", "7s", "--expect-workers", "2", "--heartbeat-timeout", "3s",
                          "--expect-workers-timeout", "30s", "--json", "out.json")
    survivor = start_worker(procs, script, port, keys, "w1")
    victim = start_worker(procs, script, port, keys, "w2")
    for worker in (survivor, victim):
        worker.wait_for(r"starting run \S+: Shopper: 5 ")
    poll_until(growing(target, 0), 10, "the first requests")

    victim.popen.send_signal(signal.SIGKILL)
    assert victim.wait_exit() == -signal.SIGKILL
    master.wait_for(r"worker w2 \[[0-9a-f]{16}\] is missing \(no message for 3 s\): "
                    r"its 5 users go to the other workers", timeout=15)
    survivor.wait_for(r"new share: Shopper: 10 ", timeout=10)
    after_missing = target.stats.total_requests
    poll_until(growing(target, after_missing + 20), 10, "the survivor's load")
    assert master.returncode is None, "the run ended before the survivor's load was seen"

    code = master.wait_exit(timeout=30)
    assert code in (0, 1), master.raw_output()
    assert "Traceback" not in master.raw_output()
    summary = json.loads((tmp_path / "out.json").read_text())
    assert summary["run"]["stop_reason"] == "run_time"
    # The victim's last unreported stats died with it: never more than the target saw.
    assert 0 < summary["total"]["requests"] <= target.stats.total_requests


def test_workers_stop_all_load_when_their_master_is_killed(
    procs: Processes, target: ThreadedTarget, script: Path, tmp_path: Path
) -> None:
    keys = make_keys(tmp_path / "keys", "w2").root
    port = free_port()
    master = start_master(procs, script, target, port, keys, "-u", "10", "-r", "100",
                          "-t", "60s", "--expect-workers", "2",
                          "--expect-workers-timeout", "30s")
    timeout = f"{MASTER_TIMEOUT_S:g}s"
    workers = [start_worker(procs, script, port, keys, name, "--master-timeout", timeout)
               for name in ("w1", "w2")]
    for worker in workers:
        worker.wait_for(r"starting run \S+: Shopper: 5 ")
    poll_until(growing(target, 0), 10, "the first requests")

    master.popen.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    assert master.wait_exit() == -signal.SIGKILL
    for worker in workers:
        worker.wait_for(r"no message from the master at \S+ for [\d.]+ s: "
                        r"stopping all load now \(\d+ users\)", timeout=15)
    # The guarantee under test: no load later than master_timeout after the master went
    # silent (plus a margin for the check interval and requests already in flight).
    settled = killed_at + MASTER_TIMEOUT_S + 2.0
    poll_until(lambda: time.monotonic() >= settled, 10, "the master timeout and margin")
    before = target.stats.total_requests
    window_end = time.monotonic() + 1.5
    poll_until(lambda: time.monotonic() >= window_end, 5, "the observation window")
    assert target.stats.total_requests == before, "a worker kept sending without its master"

    stop_workers_cleanly(*workers)  # they still run, waiting for a master


# --- refused workers ----------------------------------------------------------------------


def test_a_revoked_worker_is_refused_and_the_master_logs_its_fingerprint(
    procs: Processes, target: ThreadedTarget, script: Path, tmp_path: Path, phalanx_cli: Cli
) -> None:
    assert phalanx_cli("keys", "init", "--dir", "keys").returncode == 0
    assert phalanx_cli("keys", "add-worker", "--dir", "keys", "w2").returncode == 0
    assert phalanx_cli("keys", "revoke", "--dir", "keys", "w2").returncode == 0
    keys = tmp_path / "keys"
    revoked_print = fingerprint(read_public_key(keys / "workers" / "w2.key.pub"))
    listing = phalanx_cli("keys", "list", "--dir", "keys")
    assert f"worker  {revoked_print}  w2  revoked" in listing.stdout, listing.stdout
    port = free_port()
    master = start_master(procs, script, target, port, keys, "-u", "4", "-r", "100",
                          "-t", "2s", "--expect-workers", "1",
                          "--expect-workers-timeout", "30s", "--json", "out.json")
    master.wait_for(r"waiting for 1 worker\(s\)")

    revoked = start_worker(procs, script, port, keys, "w2")
    revoked.wait_for(r"cannot connect to the master at \S+: the master refused this worker's key")
    master.wait_for(rf"refused worker key {revoked_print} from 127\.0\.0\.1")
    start_worker(procs, script, port, keys, "w1")  # meanwhile the refused one winds down

    assert revoked.wait_exit() == 2, revoked.raw_output()
    assert "phalanx: error: the master refused this worker's key" in revoked.output()
    assert "Traceback" not in revoked.raw_output()
    code = master.wait_exit(timeout=30)
    assert code == 0, master.raw_output()
    assert master.has(r"worker w1 \[[0-9a-f]{16}\] joined")
    assert not master.has(r"worker w2 \S+ joined")
    assert json.loads((tmp_path / "out.json").read_text())["total"]["requests"] > 0


def test_a_worker_pinned_to_another_master_key_never_joins(
    procs: Processes, target: ThreadedTarget, script: Path, tmp_path: Path
) -> None:
    master_keys = make_keys(tmp_path / "keys")
    other = make_keys(tmp_path / "other")
    worker_side = tmp_path / "worker-keys"
    (worker_side / "workers").mkdir(parents=True, mode=0o700)
    shutil.copy2(other.master_public, worker_side / "master.key.pub")
    shutil.copy2(master_keys.worker_key("w1"), worker_side / "workers" / "w1.key")
    port = free_port()
    master = start_master(procs, script, target, port, master_keys.root, "-u", "2",
                          "-r", "100", "-t", "2s", "--expect-workers", "1",
                          "--expect-workers-timeout", "4s")
    master.wait_for(r"waiting for 1 worker\(s\)")
    worker = start_worker(procs, script, port, worker_side, "w1")

    code = master.wait_exit(timeout=30)
    assert code == 2, master.raw_output()
    assert "only 0 of 1 workers joined" in master.output()
    assert "Traceback" not in master.raw_output()
    worker.wait_for(r"cannot connect to the master at \S+: handshake failed")
    assert not worker.has("joined the master")
    assert target.stats.total_requests == 0


def test_a_worker_with_another_script_is_refused_by_its_sha256(
    procs: Processes, target: ThreadedTarget, script: Path, tmp_path: Path
) -> None:
    keys = make_keys(tmp_path / "keys", "w2").root
    edited = tmp_path / "shop_edited.py"
    edited.write_text(SCRIPT + "# one more line: the same classes, another file\n")
    port = free_port()
    master = start_master(procs, script, target, port, keys, "-u", "4", "-r", "100",
                          "-t", "2s", "--expect-workers", "1",
                          "--expect-workers-timeout", "30s", "--json", "out.json")
    master.wait_for(r"waiting for 1 worker\(s\)")

    stranger = start_worker(procs, edited, port, keys, "w2")
    assert stranger.wait_exit() == 2, stranger.raw_output()
    assert "the master refused this worker" in stranger.output()
    assert "script sha256" in stranger.output()
    master.wait_for(r"refused worker w2 \[[0-9a-f]{16}\]: script sha256 [0-9a-f]{16}\.\.\. "
                    r"differs from the master's")

    start_worker(procs, script, port, keys, "w1")
    code = master.wait_exit(timeout=30)
    assert code == 0, master.raw_output()
    assert not master.has(r"worker w2 \S+ joined")


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "args", "message"),
    [
        ("master without keys", ["master", "--bind", "127.0.0.1:{port}"],
         "the master needs --keys DIR"),
        ("plaintext off loopback",
         ["master", "--insecure-plaintext", "--bind", "0.0.0.0:{port}"],
         "plaintext mode refused on 'tcp://0.0.0.0:{port}'"),
        ("bind is not an address", ["master", "--insecure-plaintext", "--bind", "nonsense"],
         "--bind: 'nonsense'"),
        ("keys dir does not exist",
         ["master", "--bind", "127.0.0.1:{port}", "--keys", "no-such-dir"],
         "--keys no-such-dir:"),
        ("worker without master", ["worker", "--keys", "keys"], "no master given"),
    ],
)
def test_bad_cluster_options_are_refused_with_one_clear_line_and_exit_code_2(
    phalanx_cli: Cli, script: Path, case: str, args: list[str], message: str
) -> None:
    port = str(free_port())
    argv = [arg.format(port=port) for arg in args] + ["-f", str(script)]
    if argv[0] == "master":
        argv += ["--host", "http://127.0.0.1:9", "--live", "off"]
    result = phalanx_cli(*argv, timeout=30)
    assert result.returncode == 2, (case, result.stdout, result.stderr)
    assert message.format(port=port) in result.stderr, (case, result.stderr)
    assert result.stderr.startswith("phalanx: error: "), (case, result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, (case, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
