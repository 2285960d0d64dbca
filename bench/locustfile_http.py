"""Locust HttpUser (python-requests) for bench/run.sh: GET / as fast as possible, no wait time.

Runs in the bench venv (bench/.venv-locust, locust pinned by run.sh), never in
the project venv. The host comes from ``--host``.
"""

from locust import HttpUser, constant, task


class RequestsGet(HttpUser):
    """One request per task, no pause: the same work as bench/phalanx_script.py."""

    wait_time = constant(0)

    @task
    def get_root(self) -> None:
        self.client.get("/")
