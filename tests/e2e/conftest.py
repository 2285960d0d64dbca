"""Helpers for running the real ``phalanx`` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from tests.e2e.cluster_support import Processes
from tests.support.target import ThreadedTarget, start_in_thread


def run_phalanx(args: Sequence[str], *, cwd: Path, timeout: float = 60.0,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m phalanx ARGS`` with a clean PHALANX_* environment."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PHALANX_")}
    environ.update(env or {})
    environ["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "phalanx", *args],
        cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout, check=False,
    )


@pytest.fixture
def phalanx_cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    def call(*args: str, timeout: float = 60.0, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
        return run_phalanx(args, cwd=tmp_path, timeout=timeout, env=env)

    return call


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_target():  # type: ignore[no-untyped-def]
    """The bundled demo shop (examples/demo/target.py) on 127.0.0.1, an ephemeral port."""
    process = subprocess.Popen(
        [sys.executable, str(REPO / "examples" / "demo" / "target.py"), "--port", "0",
         "--max-seconds", "120"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        yield line.strip().rsplit(" ", 1)[-1]
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def target() -> Iterator[ThreadedTarget]:
    """A counting target server on 127.0.0.1 in a thread of the test process."""
    with start_in_thread() as server:
        yield server


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """Every process a test starts; stopped by PID when it ends."""
    processes = Processes(tmp_path)
    try:
        yield processes
    finally:
        processes.close()
