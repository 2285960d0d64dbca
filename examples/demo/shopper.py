"""The demo script of the README: a shopper who logs in, browses and opens items."""

from phalanx import HttpUser, between, task


class Shopper(HttpUser):
    wait_time = between(0.5, 2)

    async def on_start(self) -> None:
        await self.client.post("/login", json={"user": "demo"})

    @task(3)
    async def browse(self) -> None:
        await self.client.get("/items", name="/items")

    @task
    async def item(self) -> None:
        async with self.client.get("/items/42", catch_response=True) as r:
            if r.json().get("id") != 42:
                r.failure("wrong item")
