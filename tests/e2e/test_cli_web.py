"""``--web`` on the command line: safe refusals, and the first admin password shown once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import run_phalanx
from tests.support.target import start_in_thread

SCRIPT = """
from phalanx import HttpUser, task, constant

class Quick(HttpUser):
    wait_time = constant(0.1)

    @task
    async def root(self):
        await self.client.get("/")
"""


def test_a_non_loopback_web_bind_without_tls_is_refused_before_any_load(tmp_path: Path) -> None:
    (tmp_path / "s.py").write_text(SCRIPT)
    with start_in_thread() as target:
        result = run_phalanx(["run", "-f", "s.py", "--host", target.url, "-t", "5s", "--web",
                              "--autostart", "--web-bind", "0.0.0.0:18089", "--live", "off"],
                             cwd=tmp_path)
        assert target.server.stats.total_requests == 0
    assert result.returncode == 2
    assert "in clear" in result.stderr
    assert "Traceback" not in result.stderr


def test_half_a_tls_pair_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s.py").write_text(SCRIPT)
    result = run_phalanx(["run", "-f", "s.py", "--host", "http://127.0.0.1:9", "-t", "5s",
                          "--web", "--tls-cert", "cert.pem", "--live", "off"], cwd=tmp_path)
    assert result.returncode == 2
    assert "--tls-key" in result.stderr


def test_the_first_admin_password_is_printed_once_and_never_logged(tmp_path: Path) -> None:
    (tmp_path / "s.py").write_text(SCRIPT)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHALANX_")}
    with start_in_thread() as target:
        process = subprocess.run(
            [sys.executable, "-m", "phalanx", "run", "-f", "s.py", "--host", target.url,
             "-u", "1", "-t", "2s", "--web", "--autostart", "--web-bind", f"127.0.0.1:{port}",
             "--live", "off",
             "--log-level", "DEBUG"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert process.returncode == 0, process.stderr
    lines = process.stderr.splitlines()
    index = next(i for i, line in enumerate(lines) if "created the web UI user 'admin'" in line)
    password = lines[index + 1].strip()
    assert len(password) >= 20
    assert (process.stdout + process.stderr).count(password) == 1
    store = tmp_path / "phalanx-users.json"
    assert store.stat().st_mode & 0o777 == 0o600
    assert password not in store.read_text()
    # A second start finds the admin and prints no password.
    with start_in_thread() as target:
        again = subprocess.run(
            [sys.executable, "-m", "phalanx", "run", "-f", "s.py", "--host", target.url,
             "-u", "1", "-t", "1s", "--web", "--autostart", "--web-bind", "127.0.0.1:0",
             "--live", "off"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 0, again.stderr
    assert "created the web UI user" not in again.stderr


def test_a_web_run_keeps_a_verifiable_audit_log_of_its_start_and_stop(tmp_path: Path) -> None:
    # The script looks for the first admin's password while it is imported: gone already.
    (tmp_path / "s.py").write_text(
        "import os, pathlib\n"
        "pathlib.Path('seen.txt').write_text(repr(os.environ.get('PHALANX_ADMIN_PASSWORD')))\n"
        + SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHALANX_")}
    env["PHALANX_ADMIN_PASSWORD"] = "audit-test-admin-password"
    with start_in_thread() as target:
        process = subprocess.run(
            [sys.executable, "-m", "phalanx", "run", "-f", "s.py", "--host", target.url,
             "-u", "1", "-t", "1s", "--web", "--autostart", "--web-bind", "127.0.0.1:0",
             "--live", "off"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert process.returncode == 0, process.stderr
    assert "created the web UI user" not in process.stderr  # the password came from the env
    assert (tmp_path / "seen.txt").read_text() == "None"
    log = tmp_path / "phalanx-audit.jsonl"
    assert log.stat().st_mode & 0o777 == 0o600
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["action"] for e in entries] == ["run_start", "run_stop"]
    assert entries[0]["details"]["host"] == target.url
    assert len(entries[0]["details"]["script_sha256"]) == 64
    verify = run_phalanx(["audit", "verify", str(log)], cwd=tmp_path)
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.startswith("OK: 2 entries")


def test_the_first_admin_password_can_come_from_a_private_file(tmp_path: Path) -> None:
    from phalanx.web.accounts import UserStore, authenticate_password
    from phalanx.web.passwords import Passwords

    (tmp_path / "s.py").write_text(SCRIPT)
    secret = tmp_path / "admin.pw"
    secret.write_text("from-a-file-password\n")
    secret.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHALANX_")}
    with start_in_thread() as target:
        process = subprocess.run(
            [sys.executable, "-m", "phalanx", "run", "-f", "s.py", "--host", target.url,
             "-u", "1", "-t", "1s", "--web", "--autostart", "--web-bind", "127.0.0.1:0",
             "--live", "off", "--admin-password-file", str(secret)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert process.returncode == 0, process.stderr
    assert "created the web UI user" not in process.stderr
    store = UserStore.open(tmp_path / "phalanx-users.json")
    assert authenticate_password(store, "admin", "from-a-file-password", passwords=Passwords())


def test_a_ui_driven_run_over_local_processes_ends_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    import signal
    import time

    (tmp_path / "s.py").write_text(SCRIPT)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHALANX_")}
    env["PHALANX_ADMIN_PASSWORD"] = "processes-admin-password"
    process = subprocess.Popen(
        [sys.executable, "-m", "phalanx", "run", "-f", "s.py", "--host", "http://127.0.0.1:9",
         "--processes", "1", "--web", "--web-bind", f"127.0.0.1:{port}", "--live", "off"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:  # until the web UI listens
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert process.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "no test was run" in output
    assert "before the run started" not in output
