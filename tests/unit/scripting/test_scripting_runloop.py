"""The task loop's zero-wait yield guarantee: tasks that never suspend still
give the event loop a turn at least every ZERO_WAIT_YIELD_EVERY tasks."""

from __future__ import annotations

import asyncio
import itertools

from phalanx import TaskSet, User, constant, task
from phalanx.scripting.context import UserContext
from phalanx.scripting.runloop import ZERO_WAIT_YIELD_EVERY

TIMEOUT = 5.0
TASKS = 200


def _busy_user(runs: list[int]) -> type[User]:
    class Busy(User):
        wait_time = constant(0)

        @task
        async def spin(self) -> None:  # never suspends
            runs.append(1)
            if len(runs) == TASKS:
                self.request_stop()

    return Busy


async def _observe(runs: list[int], seen: list[int], done: asyncio.Future[None]) -> None:
    for _ in range(10 * TASKS):  # bounded: the user stops after TASKS tasks
        if done.done():
            return
        seen.append(len(runs))
        await asyncio.sleep(0)


async def test_a_user_that_never_suspends_yields_at_least_every_n_zero_waits(
    context: UserContext,
) -> None:
    runs: list[int] = []
    seen: list[int] = []
    user = _busy_user(runs)(context)
    run = asyncio.ensure_future(user.run())
    observer = asyncio.ensure_future(_observe(runs, seen, run))
    await asyncio.wait_for(run, TIMEOUT)
    await asyncio.wait_for(observer, TIMEOUT)

    assert len(runs) == TASKS
    steps = [b - a for a, b in itertools.pairwise(seen)]
    assert steps
    assert max(steps) <= ZERO_WAIT_YIELD_EVERY
    assert len(seen) >= TASKS // ZERO_WAIT_YIELD_EVERY - 1  # the loop got many turns


async def test_two_busy_users_both_make_progress(context: UserContext) -> None:
    first: list[int] = []
    second: list[int] = []
    a = _busy_user(first)(context)
    b = _busy_user(second)(context)
    run_a = asyncio.ensure_future(a.run())
    run_b = asyncio.ensure_future(b.run())
    progress: list[tuple[int, int]] = []
    for _ in range(10 * TASKS):  # bounded
        if run_a.done() and run_b.done():
            break
        progress.append((len(first), len(second)))
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(run_a, run_b), TIMEOUT)

    # Neither user ran more than N tasks in a row while the other had none to show.
    assert all(
        abs(x - y) <= 2 * ZERO_WAIT_YIELD_EVERY for x, y in progress if x < TASKS and y < TASKS
    )


async def test_a_zero_wait_in_a_nested_taskset_also_yields(context: UserContext) -> None:
    runs: list[int] = []
    seen: list[int] = []

    class Inner(TaskSet):
        wait_time = constant(0)

        @task
        async def spin(self) -> None:
            runs.append(1)
            if len(runs) == TASKS:
                self.user.request_stop()

    class Outer(User):
        tasks = (Inner,)

    user = Outer(context)
    run = asyncio.ensure_future(user.run())
    observer = asyncio.ensure_future(_observe(runs, seen, run))
    await asyncio.wait_for(run, TIMEOUT)
    await asyncio.wait_for(observer, TIMEOUT)

    steps = [b - a for a, b in itertools.pairwise(seen)]
    assert len(runs) == TASKS
    assert steps
    assert max(steps) <= ZERO_WAIT_YIELD_EVERY
