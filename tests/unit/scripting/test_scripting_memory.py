"""Idle users stay small: the per-user budget (<= 4 KB with task and coroutines) holds."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

from phalanx import User, task
from phalanx.scripting.context import UserContext

USERS = 2_000
BUDGET_BYTES = 4096


async def test_an_idle_user_with_its_task_costs_less_than_the_budget(context: UserContext) -> None:
    all_waiting = asyncio.Event()
    waiting = [0]

    class Idle(User):
        def wait_time(self) -> float:
            waiting[0] += 1
            if waiting[0] == USERS:
                all_waiting.set()
            return 3600.0

        @task
        async def work(self) -> None: ...

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        users = [Idle(context) for _ in range(USERS)]
        runners = [asyncio.create_task(user.run()) for user in users]
        await asyncio.wait_for(all_waiting.wait(), 30)
        per_user = (tracemalloc.get_traced_memory()[0] - before) / USERS
    finally:
        tracemalloc.stop()
    assert all(user.is_waiting for user in users)
    for user, runner in zip(users, runners, strict=True):
        user.request_stop()
        runner.cancel()
    await asyncio.wait_for(asyncio.gather(*runners), 30)
    assert per_user < BUDGET_BYTES
