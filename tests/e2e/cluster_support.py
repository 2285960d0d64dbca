"""Real ``phalanx`` master and worker processes for the cluster end-to-end tests.

:class:`PhalanxProcess` starts ``python -m phalanx ARGS`` with
:class:`subprocess.Popen`, its stdout and stderr going to files under the
test's ``tmp_path``, and lets a test wait for a line of its log by polling
the files (every :data:`POLL_S` seconds, up to a deadline) instead of
sleeping. :class:`Processes` owns every process a test starts and, on the
way out, kills the ones still running, by their own PID only.

Log text is compared after collapsing whitespace (:func:`flatten`): the
master logs through rich, which may wrap a long record over several lines.

Invariants: every wait has a deadline; only 127.0.0.1 is used; a process is
signalled only through its own :class:`subprocess.Popen` object.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from tests.support.target import TargetStats

POLL_S: Final = 0.05
WAIT_S: Final = 20.0
"""Default deadline for a log line or an exit: generous for a loaded 2-core CI machine."""

SCRIPT: Final = """\
from phalanx import HttpUser, task, constant


class Shopper(HttpUser):
    wait_time = constant(0.05)

    @task(3)
    async def items(self):
        await self.client.get("/items")

    @task(1)
    async def home(self):
        await self.client.get("/")
"""
"""The load script: two endpoints the test target answers with 200."""

PATHS: Final = ("/", "/items")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environment() -> dict[str, str]:
    """This environment without PHALANX_* and with a wide terminal (rich wraps less)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHALANX_")}
    environ["COLUMNS"] = "1000"
    return environ


def flatten(text: str) -> str:
    """``text`` with every run of whitespace made one space (undoes rich's wrapping)."""
    return " ".join(text.split())


def poll_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Return once ``condition()`` is true; AssertionError naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL_S)


class PhalanxProcess:
    """One ``python -m phalanx ...`` child; its output in ``<dir>/<name>.out|.err``."""

    def __init__(self, name: str, args: list[str], cwd: Path) -> None:
        self.name = name
        self.args = args
        self.stdout_path = cwd / f"{name}.out"
        self.stderr_path = cwd / f"{name}.err"
        self._stdout = self.stdout_path.open("wb")
        self._stderr = self.stderr_path.open("wb")
        try:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "phalanx", *args],
                cwd=cwd, env=clean_environment(), stdin=subprocess.DEVNULL,
                stdout=self._stdout, stderr=self._stderr,
            )
        except BaseException:
            self._close_files()
            raise

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def output(self) -> str:
        """stdout and stderr so far, whitespace collapsed."""
        raw = self.stdout_path.read_bytes() + b"\n" + self.stderr_path.read_bytes()
        return flatten(raw.decode("utf-8", "replace"))

    def raw_output(self) -> str:
        """stdout and stderr so far, as written (for assertion messages)."""
        raw = self.stdout_path.read_bytes() + b"\n" + self.stderr_path.read_bytes()
        return raw.decode("utf-8", "replace")

    def has(self, pattern: str) -> bool:
        """Whether the (flattened) output matches the regular expression ``pattern``."""
        return re.search(pattern, self.output()) is not None

    def wait_for(self, pattern: str, timeout: float = WAIT_S) -> str:
        """Wait until the output matches ``pattern``; returns the match.

        Fails at once when the process has exited without printing it.
        """
        deadline = time.monotonic() + timeout
        while True:
            exited = self.popen.poll() is not None  # read after this: nothing more can come
            found = re.search(pattern, self.output())
            if found is not None:
                return found.group(0)
            if exited:
                raise AssertionError(f"{self.name} exited ({self.popen.returncode}) without "
                                     f"printing {pattern!r}:\n{self.raw_output()}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name} did not print {pattern!r} within "
                                     f"{timeout:g} s:\n{self.raw_output()}")
            time.sleep(POLL_S)

    def wait_exit(self, timeout: float = WAIT_S) -> int:
        """The exit code; AssertionError (with the output) if it runs past ``timeout``."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still runs after {timeout:g} s:\n"
                                 f"{self.raw_output()}") from None

    def send_signal(self, signum: signal.Signals) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)

    def close(self) -> None:
        """Kill it if it still runs (SIGKILL to its own PID), reap it, close the files."""
        try:
            if self.popen.poll() is None:
                self.popen.kill()
            self.popen.wait(timeout=10)
        finally:
            self._close_files()

    def _close_files(self) -> None:
        self._stdout.close()
        self._stderr.close()


class Processes:
    """Starts ``phalanx`` processes for one test and cleans every one of them up."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self._started: list[PhalanxProcess] = []

    def start(self, name: str, *args: str) -> PhalanxProcess:
        process = PhalanxProcess(name, list(args), self.cwd)
        self._started.append(process)
        return process

    def close(self) -> None:
        errors: list[BaseException] = []
        for process in reversed(self._started):
            try:
                process.close()
            except BaseException as exc:
                errors.append(exc)
        self._started.clear()
        if errors:
            raise errors[0]

    def __iter__(self) -> Iterator[PhalanxProcess]:
        return iter(self._started)


def requests_to_script_paths(stats: TargetStats) -> dict[str, int]:
    """The target's request counts for the script's paths (others would be a bug)."""
    return {path: stats.requests(path) for path in PATHS}
