"""phalanx script for bench/master_scale.py: what the master under test loads.

The master only needs a valid script (its user classes name the shares it
hands out, its sha256 is checked against each worker's ``Hello``). No request
is ever sent: the simulated workers of master_scale.py run no users.
"""

from phalanx import HttpUser, constant, task


class Idle(HttpUser):
    """One task; never run by the simulated workers."""

    wait_time = constant(1)

    @task
    async def get_root(self) -> None:
        await self.client.get("/")
