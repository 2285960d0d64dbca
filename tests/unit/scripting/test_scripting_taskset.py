"""TaskSets: their own loop, interrupt, SequentialTaskSet order, nesting, wait fallback."""

from __future__ import annotations

import asyncio

import pytest
from scripting_fakes import FakeRecorder

from phalanx import InterruptTaskSet, SequentialTaskSet, StopUser, TaskSet, User, constant, task
from phalanx.scripting.context import UserContext

TIMEOUT = 5.0


async def run(user: User) -> None:
    await asyncio.wait_for(user.run(), TIMEOUT)


async def test_interrupt_returns_to_the_parent_and_on_stop_runs(context: UserContext) -> None:
    events: list[str] = []

    class Inner(TaskSet):
        async def on_start(self) -> None:
            events.append("inner.on_start")
            if events.count("inner.on_start") == 2:
                self.user.request_stop()

        async def on_stop(self) -> None:
            events.append("inner.on_stop")

        @task
        async def step(self) -> None:
            events.append("inner.step")
            if events.count("inner.step") == 2:
                self.interrupt()

    class Shopper(User):
        tasks = (Inner,)

        async def on_stop(self) -> None:
            events.append("user.on_stop")

    await run(Shopper(context))
    assert events == [
        "inner.on_start", "inner.step", "inner.step", "inner.on_stop",
        "inner.on_start", "inner.on_stop", "user.on_stop",
    ]


@pytest.mark.parametrize(("reschedule", "expected_waits"), [(True, []), (False, ["user"])])
async def test_interrupt_reschedule_decides_whether_the_parent_waits(
    context: UserContext, reschedule: bool, expected_waits: list[str]
) -> None:
    waits: list[str] = []
    runs: list[int] = []

    class Once(TaskSet):
        @task
        async def leave(self) -> None:
            runs.append(1)
            if len(runs) == 2:
                self.user.request_stop()
            self.interrupt(reschedule=reschedule)

    class Shopper(User):
        tasks = (Once,)

        def wait_time(self) -> float:
            waits.append("user")
            return 0.0

    await run(Shopper(context))
    assert len(runs) == 2
    assert waits == expected_waits


async def test_sequential_taskset_runs_tasks_in_order_repeating_by_weight(
    context: UserContext,
) -> None:
    order: list[str] = []

    class Checkout(SequentialTaskSet):
        @task
        async def cart(self) -> None:
            order.append("cart")

        @task(2)
        async def address(self) -> None:
            order.append("address")

        @task
        async def pay(self) -> None:
            order.append("pay")
            if order.count("pay") == 2:
                self.user.request_stop()

    class Buyer(User):
        tasks = (Checkout,)

    await run(Buyer(context))
    assert order == ["cart", "address", "address", "pay"] * 2


async def test_nested_tasksets_know_user_and_parent_and_unwind_level_by_level(
    context: UserContext,
) -> None:
    events: list[str] = []

    class Inner(SequentialTaskSet):
        wait_time = constant(0)

        async def on_stop(self) -> None:
            events.append("inner.on_stop")

        @task
        async def first(self) -> None:
            assert isinstance(self.parent, Outer)
            assert isinstance(self.user, Shopper)
            assert self.parent.parent is self.user
            events.append("inner.first")

        @task
        async def second(self) -> None:
            events.append("inner.second")
            self.interrupt(reschedule=False)

    class Outer(TaskSet):
        tasks = (Inner,)

        async def on_stop(self) -> None:
            events.append("outer.on_stop")

        def wait_time(self) -> float:
            events.append("outer.wait")
            if events.count("outer.wait") == 2:
                self.interrupt(reschedule=False)
            return 0.0

    class Shopper(User):
        tasks = (Outer,)

        def wait_time(self) -> float:
            events.append("user.wait")
            self.request_stop()
            return 0.0

    await run(Shopper(context))
    assert events == [
        "inner.first", "inner.second", "inner.on_stop", "outer.wait",
        "inner.first", "inner.second", "inner.on_stop", "outer.wait", "outer.on_stop",
        "user.wait",
    ]


async def test_stop_user_inside_nested_tasksets_runs_every_on_stop(
    context: UserContext,
) -> None:
    events: list[str] = []

    class Inner(TaskSet):
        async def on_stop(self) -> None:
            events.append("inner.on_stop")

        @task
        async def quit(self) -> None:
            raise StopUser

    class Outer(TaskSet):
        tasks = (Inner,)

        async def on_stop(self) -> None:
            events.append("outer.on_stop")

    class Shopper(User):
        tasks = (Outer,)

        async def on_stop(self) -> None:
            events.append("user.on_stop")

    await run(Shopper(context))
    assert events == ["inner.on_stop", "outer.on_stop", "user.on_stop"]


async def test_taskset_wait_time_falls_back_to_the_users(context: UserContext) -> None:
    waits: list[str] = []

    class Inherits(TaskSet):
        @task
        async def step(self) -> None:
            if len(waits) == 2:
                self.user.request_stop()

    class Shopper(User):
        tasks = (Inherits,)

        def wait_time(self) -> float:
            waits.append("user")
            return 0.0

    await run(Shopper(context))
    assert waits == ["user", "user"]


async def test_taskset_own_wait_time_wins(context: UserContext) -> None:
    waits: list[str] = []

    class Own(TaskSet):
        def wait_time(self) -> float:
            waits.append("taskset")
            return 0.0

        @task
        async def step(self) -> None:
            if len(waits) == 2:
                self.user.request_stop()

    class Shopper(User):
        tasks = (Own,)

        def wait_time(self) -> float:
            waits.append("user")
            return 0.0

    await run(Shopper(context))
    assert waits == ["taskset", "taskset"]


async def test_taskset_task_errors_are_recorded_and_its_loop_goes_on(
    context: UserContext, recorder: FakeRecorder
) -> None:
    runs: list[int] = []

    class Flaky(TaskSet):
        @task
        async def step(self) -> None:
            runs.append(1)
            if len(runs) == 3:
                self.user.request_stop()
            raise KeyError("missing")

    class Shopper(User):
        tasks = (Flaky,)

    await run(Shopper(context))
    assert len(runs) == 3
    assert [e.task.rsplit(".", 2)[-2:] for e in recorder.exceptions] == [["Flaky", "step"]] * 3


async def test_a_failing_taskset_on_start_returns_to_the_parent_after_on_stop(
    context: UserContext, recorder: FakeRecorder
) -> None:
    events: list[str] = []

    class Broken(TaskSet):
        async def on_start(self) -> None:
            raise RuntimeError("setup failed")

        async def on_stop(self) -> None:
            events.append("broken.on_stop")

        @task
        async def step(self) -> None:
            events.append("broken.step")

    class Shopper(User):
        tasks = (Broken,)

        def wait_time(self) -> float:
            events.append("user.wait")
            self.request_stop()
            return 0.0

    await run(Shopper(context))
    assert events == ["broken.on_stop", "user.wait"]
    assert [e.task.rsplit(".", 1)[-1] for e in recorder.exceptions] == ["on_start"]


async def test_cancel_while_a_taskset_waits_after_request_stop_unwinds_normally(
    context: UserContext,
) -> None:
    events: list[str] = []
    reached = asyncio.Event()

    class Slow(TaskSet):
        def wait_time(self) -> float:
            reached.set()
            return 3600.0

        async def on_stop(self) -> None:
            events.append("slow.on_stop")

        @task
        async def step(self) -> None:
            events.append("slow.step")

    class Shopper(User):
        tasks = (Slow,)

        async def on_stop(self) -> None:
            events.append("user.on_stop")

    user = Shopper(context)
    runner = asyncio.create_task(user.run())
    await asyncio.wait_for(reached.wait(), TIMEOUT)
    assert user.is_waiting
    user.request_stop()
    runner.cancel()
    await asyncio.wait_for(runner, TIMEOUT)
    assert events == ["slow.step", "slow.on_stop", "user.on_stop"]


async def test_taskset_proxies_client_random_and_measure_of_the_user(
    context: UserContext, recorder: FakeRecorder
) -> None:
    seen: list[object] = []

    class Proxying(TaskSet):
        @task
        async def step(self) -> None:
            seen.extend([self.client, self.random])
            async with self.measure("custom", "op"):
                pass
            assert await self.measure_call("custom", "call", asyncio.sleep(0, "ok")) == "ok"
            self.user.request_stop()

    class WithClient(User):
        tasks = (Proxying,)

        def __init__(self, ctx: UserContext) -> None:
            super().__init__(ctx)
            self.client = "my-client"

    await run(WithClient(context))
    assert seen == ["my-client", context.random]
    assert [(r.method, r.name) for r in recorder.requests] == [("custom", "op"), ("custom", "call")]


async def test_a_taskset_run_directly_uses_its_own_table(context: UserContext) -> None:
    events: list[str] = []

    class Alone(TaskSet):
        @task
        async def step(self) -> None:
            events.append("step")
            self.interrupt()

    class Host(User):
        @task
        async def noop(self) -> None: ...

    with pytest.raises(InterruptTaskSet):
        await asyncio.wait_for(Alone(Host(context)).run(), TIMEOUT)
    assert events == ["step"]
