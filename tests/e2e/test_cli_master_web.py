"""``phalanx master --web`` driven through the REST API with a CI token, real processes.

A master keeps its CURVE worker between tests; an operator token starts a
test, stops it and starts another; a host outside the master's scope is
refused before any worker sees it; SIGTERM ends the master with the last
test's verdict.
"""

from __future__ import annotations

import http.client
import json
import signal
import time
from pathlib import Path

import argon2
import pytest
from tests.e2e.cluster_support import SCRIPT, Processes, free_port, poll_until
from tests.support.target import ThreadedTarget

from phalanx.transport import KeyDir
from phalanx.web.accounts import UserStore, add_user, create_token
from phalanx.web.passwords import Passwords
from phalanx.web.rbac import Role

CHEAP = argon2.Parameters(type=argon2.Type.ID, version=19, salt_len=16, hash_len=32,
                          time_cost=1, memory_cost=8, parallelism=1)


def _api(port: int, token: str, method: str, path: str, body: object = None
         ) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        conn.request(method, path, body=None if body is None else json.dumps(body).encode(),
                     headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


@pytest.mark.timeout(120)
def test_a_web_master_runs_tests_started_by_a_ci_token_with_the_same_worker(
        tmp_path: Path, target: ThreadedTarget, procs: Processes) -> None:
    keys = KeyDir(tmp_path / "keys")
    keys.init()
    store = UserStore.open(tmp_path / "users.json", create=True)
    add_user(store, "admin", Role.ADMIN, "master-admin-password", passwords=Passwords(CHEAP),
             now=time.time())
    _, token = create_token(store, Role.OPERATOR, 3600.0, "ci", time.time())
    (tmp_path / "shop.py").write_text(SCRIPT)
    port, web = free_port(), free_port()
    master = procs.start(
        "master", "master", "-f", "shop.py", "--host", target.url, "--bind",
        f"127.0.0.1:{port}", "--keys", "keys", "--web", "--web-bind", f"127.0.0.1:{web}",
        "--user-store", "users.json", "--live", "off", "--heartbeat-timeout", "5s")
    procs.start("w1", "worker", "-f", "shop.py", "--master", f"127.0.0.1:{port}",
                "--keys", "keys", "--name", "w1", "--report-interval", "0.5")
    master.wait_for(r"worker w1 \S+ joined")

    status, reply = _api(web, token, "POST", "/api/v1/run/start",
                         {"users": 3, "spawn_rate": 100, "host": "http://127.0.0.2:9"})
    assert status == 400
    assert "outside the allowed targets" in str(reply["error"])
    status, reply = _api(web, token, "POST", "/api/v1/run/start",
                         {"users": 3, "spawn_rate": 100})
    assert status == 200, reply
    poll_until(lambda: target.server.stats.total_requests > 20, 20, "load from the worker")
    status, _ = _api(web, token, "POST", "/api/v1/run/stop", {})
    assert status == 200
    poll_until(lambda: _api(web, token, "GET", "/api/v1/runs")[1]["runs"] != [], 20,
               "the first test to end")
    status, reply = _api(web, token, "POST", "/api/v1/run/start",
                         {"users": 2, "spawn_rate": 100, "run_time": 1})
    assert status == 200, reply
    poll_until(lambda: len(_api(web, token, "GET", "/api/v1/runs")[1]["runs"]) == 2, 20,
               "the second test to end")
    runs = _api(web, token, "GET", "/api/v1/runs")[1]["runs"]
    assert [run["reason"] for run in runs] == ["requested", "run_time"]  # type: ignore[index]
    master.send_signal(signal.SIGTERM)
    assert master.wait_exit() in (0, 1)
    assert "Traceback" not in master.raw_output()
