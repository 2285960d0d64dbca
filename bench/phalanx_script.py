"""phalanx script for bench/run.sh: GET / as fast as possible, no wait time.

The same work as bench/locustfile_fast.py and bench/locustfile_http.py. The
host comes from ``--host``.
"""

from phalanx import HttpUser, constant, task


class Get(HttpUser):
    """One request per task, no pause."""

    wait_time = constant(0)

    @task
    async def get_root(self) -> None:
        await self.client.get("/")
