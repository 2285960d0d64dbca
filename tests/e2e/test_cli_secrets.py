"""A secret used everywhere a script can put it never reaches any output."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]
SECRET = "s3cr3t-T0ken-4711"

LEAKY = '''
from phalanx import HttpUser, constant, secrets, task

TOKEN = secrets.get("api_token")


class Leaky(HttpUser):
    wait_time = constant(0.05)

    @task
    async def leak(self):
        # a path segment, a query string and a header
        await self.client.get(f"/items/{TOKEN}?token={TOKEN}",
                              headers={"Authorization": f"Bearer {TOKEN}"})
        # a failure message
        async with self.client.get("/items", catch_response=True) as r:
            r.failure(f"token {TOKEN} was refused")
        # a custom client's name and an exception
        async with self.measure("CUSTOM", f"op-{TOKEN}"):
            pass
        raise ValueError(f"exception carrying {TOKEN}")
'''


@pytest.mark.timeout(90)
def test_a_secret_never_reaches_logs_stats_json_or_csv(
    phalanx_cli: Cli, demo_target: str, tmp_path: Path
) -> None:
    script = tmp_path / "leaky.py"
    script.write_text(LEAKY)
    result = phalanx_cli(
        "run", "-f", str(script), "--host", demo_target, "-u", "2", "-r", "10", "-t", "1s",
        "--json", "out.json", "--csv", "out", "--live", "off", "-L", "DEBUG",
        env={"PHALANX_SECRET_API_TOKEN": SECRET},
    )
    assert result.returncode == 1, result.stdout + result.stderr  # failures and exceptions
    outputs = {
        "stdout": result.stdout,
        "stderr": result.stderr,
        **{path.name: path.read_text() for path in tmp_path.glob("out*")},
    }
    assert {"out.json", "out_stats.csv", "out_failures.csv", "out_exceptions.csv"} <= set(outputs)
    for where, text in outputs.items():
        assert SECRET not in text, f"the secret leaked into {where}"
    # the masked traces are there: the test looked at real content
    assert "***" in outputs["out.json"]
    assert "exception carrying ***" in outputs["out_exceptions.csv"]
    assert "token *** was refused" in outputs["out_failures.csv"]


def test_a_missing_secret_is_a_clear_start_error(phalanx_cli: Cli, tmp_path: Path) -> None:
    script = tmp_path / "needs.py"
    script.write_text(LEAKY)
    result = phalanx_cli("run", "-f", str(script), "--host", "http://127.0.0.1:9", "-t", "1s")
    assert result.returncode == 2
    assert "PHALANX_SECRET_API_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(90)
def test_a_secret_never_reaches_the_web_api_or_the_audit_log(demo_target: str,
                                                             tmp_path: Path) -> None:
    import http.client
    import os
    import socket
    import sys
    import time

    import argon2

    from phalanx.web.accounts import UserStore, add_user, create_token
    from phalanx.web.passwords import Passwords
    from phalanx.web.rbac import Role

    store = UserStore.open(tmp_path / "users.json", create=True)
    cheap = Passwords(argon2.Parameters(type=argon2.Type.ID, version=19, salt_len=16,
                                        hash_len=32, time_cost=1, memory_cost=8, parallelism=1))
    add_user(store, "admin", Role.ADMIN, "web-admin-password", passwords=cheap, now=time.time())
    _, token = create_token(store, Role.VIEWER, 3600.0, "secret-test", time.time())
    (tmp_path / "leaky.py").write_text(LEAKY)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHALANX_")}
    env["PHALANX_SECRET_API_TOKEN"] = SECRET
    process = subprocess.Popen(
        [sys.executable, "-m", "phalanx", "run", "-f", "leaky.py", "--host", demo_target,
         "-u", "2", "-r", "10", "-t", "6s", "--live", "off", "--web", "--autostart", "--web-bind",
         f"127.0.0.1:{port}", "--user-store", "users.json"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def get(path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    answers: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(answers) < 4:
            try:
                for path in ("/api/v1/status", "/api/v1/stats", "/download/stats.csv",
                             "/download/stats.json"):
                    status, body = get(path)
                    if status == 200 and (path == "/api/v1/status" or "***" in body):
                        answers[path] = body
            except OSError:
                pass
            time.sleep(0.2)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert set(answers) == {"/api/v1/status", "/api/v1/stats", "/download/stats.csv",
                            "/download/stats.json"}, answers.keys()
    audit = (tmp_path / "phalanx-audit.jsonl").read_text()
    for where, text in {**answers, "audit log": audit, "output": output}.items():
        assert SECRET not in text, f"the secret leaked into {where}"
    assert "token *** was refused" in answers["/api/v1/stats"]
