"""``phalanx run`` end to end: a real process, a real target on 127.0.0.1, real outputs."""

from __future__ import annotations

import csv
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]
REPO = Path(__file__).resolve().parents[2]
SHOPPER = str(REPO / "examples" / "demo" / "shopper.py")

pytestmark = pytest.mark.timeout(90)


def test_demo_script_runs_passes_and_writes_json_and_csv(
    phalanx_cli: Cli, demo_target: str, tmp_path: Path
) -> None:
    result = phalanx_cli(
        "run", "-f", SHOPPER, "--host", demo_target, "-u", "5", "-r", "50", "-t", "2s",
        "--json", "out.json", "--csv", "out", "--live", "off",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED" in result.stdout
    data = json.loads((tmp_path / "out.json").read_text())
    names = {(e["method"], e["name"]) for e in data["entries"]}
    # /items/42 has weight 1 of 4 with waits of 0.5-2 s: in 2 s it may not come up
    assert {("POST", "/login"), ("GET", "/items")} <= names
    assert names <= {("POST", "/login"), ("GET", "/items"), ("GET", "/items/42")}
    assert data["total"]["failures"] == 0
    assert data["total"]["requests"] >= 5
    assert data["run"]["stop_reason"] == "run_time"
    assert data["run"]["script_sha256"]
    assert len(data["run"]["script_sha256"]) == 64
    logins = next(e for e in data["entries"] if e["name"] == "/login")
    assert logins["requests"] == 5  # on_start ran once per user
    with (tmp_path / "out_stats.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[-1]["Name"] == "Aggregated"
    assert int(rows[-1]["Request Count"]) == data["total"]["requests"]


def test_failed_requests_make_the_run_fail_with_exit_code_1(
    phalanx_cli: Cli, demo_target: str, tmp_path: Path
) -> None:
    script = tmp_path / "missing.py"
    script.write_text(
        "from phalanx import HttpUser, task, constant\n"
        "class Lost(HttpUser):\n"
        "    wait_time = constant(0.05)\n"
        "    @task\n"
        "    async def nope(self):\n"
        "        await self.client.get('/nope?token=s3cr3t')\n"
    )
    result = phalanx_cli("run", "-f", str(script), "--host", demo_target, "-u", "2", "-r", "10",
                         "-t", "1s", "--json", "out.json", "--live", "off")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED" in result.stdout
    data = json.loads((tmp_path / "out.json").read_text())
    [error] = data["errors"]
    assert (error["name"], error["kind"]) == ("/nope", "http_status")
    assert "404" in error["message"]
    assert "s3cr3t" not in (tmp_path / "out.json").read_text()
    assert "s3cr3t" not in result.stdout + result.stderr


def test_max_fail_ratio_lets_a_mostly_good_run_pass(
    phalanx_cli: Cli, demo_target: str, tmp_path: Path
) -> None:
    script = tmp_path / "mixed.py"
    script.write_text(
        "from phalanx import HttpUser, task, constant\n"
        "class Mixed(HttpUser):\n"
        "    wait_time = constant(0.01)\n"
        "    @task(9)\n"
        "    async def good(self):\n"
        "        await self.client.get('/items')\n"
        "    @task(1)\n"
        "    async def bad(self):\n"
        "        await self.client.get('/nope')\n"
    )
    result = phalanx_cli("run", "-f", str(script), "--host", demo_target, "-u", "2", "-r", "10",
                         "-t", "1s", "--max-fail-ratio", "0.5", "--live", "off", "--seed", "1")
    assert result.returncode == 0, result.stdout + result.stderr


class Progress:
    """Reads a child's stdout on a thread so the test can wait for a line with a deadline."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        assert stream is not None
        self._stream = stream
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)

    def close(self) -> None:
        """After the process ended: let the reader reach EOF, then close the pipe."""
        self._thread.join(timeout=10)
        self._stream.close()

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if predicate(line):
                return line
        raise AssertionError("the expected output never came")


def start_run(demo_target: str, tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHALANX_")}
    return subprocess.Popen(
        [sys.executable, "-m", "phalanx", "run", "-f", SHOPPER, "--host", demo_target,
         "-u", "3", "-r", "30", "-t", "60s", "--json", "out.json", "--live", "off",
         "--stats-interval", "0.2", "--summary-interval", "0.2", *extra],
        cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def requests_so_far(line: str) -> bool:
    """A progress line of a run whose users are all up and sending."""
    return "users 3/3" in line and " 0.0 req/s" not in line


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_gracefully_and_still_writes_the_summary(
    demo_target: str, tmp_path: Path, signum: signal.Signals
) -> None:
    process = start_run(demo_target, tmp_path)
    output, logs = Progress(process.stdout), Progress(process.stderr)
    try:
        output.wait_for(requests_so_far, timeout=30)
        began = time.monotonic()
        process.send_signal(signum)
        logs.wait_for(lambda line: "stopping gracefully" in line, timeout=30)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        output.close()
        logs.close()
    assert time.monotonic() - began < 15
    assert process.returncode == 0
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["run"]["stop_reason"] == "requested"
    assert data["total"]["requests"] > 0


def test_a_second_signal_stops_at_once(demo_target: str, tmp_path: Path) -> None:
    slow = tmp_path / "slow.py"
    slow.write_text(
        "import asyncio\n"
        "from phalanx import HttpUser, task, constant\n"
        "class Slow(HttpUser):\n"
        "    wait_time = constant(0)\n"
        "    @task\n"
        "    async def slow(self):\n"
        "        await self.client.get('/items')\n"
        "        await asyncio.sleep(3600)\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHALANX_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "phalanx", "run", "-f", str(slow), "--host", demo_target,
         "-u", "3", "-r", "30", "--stop-timeout", "1h", "--json", "out.json", "--live", "off",
         "--stats-interval", "0.2", "--summary-interval", "0.2"],
        cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    output, logs = Progress(process.stdout), Progress(process.stderr)
    try:
        output.wait_for(requests_so_far, timeout=30)
        process.send_signal(signal.SIGINT)
        logs.wait_for(lambda line: "stopping gracefully" in line, timeout=30)
        process.send_signal(signal.SIGINT)
        logs.wait_for(lambda line: "stopping now" in line, timeout=30)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        output.close()
        logs.close()
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["run"]["stop_reason"] == "aborted"


def test_a_request_outside_the_allowed_targets_fails_and_the_run_goes_on(
    phalanx_cli: Cli, demo_target: str, tmp_path: Path
) -> None:
    script = tmp_path / "escape.py"
    script.write_text(
        "from phalanx import HttpUser, task, constant\n"
        "class Escape(HttpUser):\n"
        "    wait_time = constant(0.05)\n"
        "    @task\n"
        "    async def inside(self):\n"
        "        await self.client.get('/items')\n"
        "    @task\n"
        "    async def outside(self):\n"
        "        await self.client.get('http://127.0.0.2:9/admin', name='outside')\n"
    )
    result = phalanx_cli("run", "-f", str(script), "--host", demo_target, "-u", "2", "-r", "10",
                         "-t", "1s", "--json", "out.json", "--live", "off", "--seed", "3")
    assert result.returncode == 1, result.stdout + result.stderr
    data = json.loads((tmp_path / "out.json").read_text())
    kinds = {(e["name"], e["kind"]) for e in data["errors"]}
    assert kinds == {("outside", "target_not_allowed")}
    inside = next(e for e in data["entries"] if e["name"] == "/items")
    assert inside["requests"] > 0
    assert inside["failures"] == 0
