"""The local runner on a real event loop: spawning, weights, stop paths, shapes, real HTTP."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from phalanx import LoadShape, StopUser, User, constant, task
from phalanx.engine.runner import LocalRunner, RunPlan, RunResult, RunState, RunStatus, StopReason
from phalanx.scripting.context import UserContext
from phalanx.stats import Aggregator, Recorder, StatsSnapshot

pytestmark = pytest.mark.timeout(30)


class Events:
    """What the test users did, shared through the class (reset per test)."""

    started = 0
    stopped = 0
    tasks = 0


class Quick(User):
    wait_time = constant(0.01)

    async def on_start(self) -> None:
        Events.started += 1

    async def on_stop(self) -> None:
        Events.stopped += 1

    @task
    async def work(self) -> None:
        async with self.measure("CUSTOM", "work"):
            await asyncio.sleep(0)
        # Counted once recorded: a task cut by the stop (mid-sleep) records nothing.
        Events.tasks += 1


class Heavy(Quick):
    weight = 3


class Light(Quick):
    weight = 1


class Sleeper(User):
    """Waits an hour between tasks: stopping must not wait for that."""

    wait_time = constant(3600)

    async def on_stop(self) -> None:
        Events.stopped += 1

    @task
    async def work(self) -> None:
        async with self.measure("CUSTOM", "nap"):
            await asyncio.sleep(0)


class Busy(User):
    """A task that never ends on its own: only the stop timeout ends it."""

    wait_time = constant(0)

    @task
    async def work(self) -> None:
        Events.tasks += 1
        await asyncio.sleep(3600)


@pytest.fixture(autouse=True)
def _reset_events() -> None:
    Events.started = Events.stopped = Events.tasks = 0


class StatusWatch:
    """The runner's ``on_update``: keeps every status and wakes tests waiting for one."""

    def __init__(self) -> None:
        self.seen: list[RunStatus] = []
        self._waiting: list[tuple[Callable[[RunStatus], bool], asyncio.Event]] = []

    def __call__(self, _snapshot: StatsSnapshot, status: RunStatus) -> None:
        self.seen.append(status)
        for predicate, event in self._waiting:
            if predicate(status):
                event.set()

    async def until(self, predicate: Callable[[RunStatus], bool]) -> None:
        """Return once a published status satisfies ``predicate`` (at most 10 s)."""
        event = asyncio.Event()
        self._waiting.append((predicate, event))
        await asyncio.wait_for(event.wait(), timeout=10)


FAST = 0.02  # stats interval of the tests that wait for a status


def make_runner(
    on_update: Callable[[StatsSnapshot, RunStatus], None] | None = None,
) -> tuple[LocalRunner, Recorder]:
    recorder = Recorder(0.0)
    context = UserContext(recorder=recorder, random=random.Random(7))
    runner = LocalRunner(context, recorder, Aggregator(start=0.0), on_update=on_update)
    return runner, recorder


async def test_run_time_ends_the_run_with_every_user_started_and_stopped() -> None:
    runner, _ = make_runner()
    result = await runner.run(RunPlan((Quick,), users=5, spawn_rate=1000, run_time=0.3,
                                      stats_interval=0.05))
    assert result.reason is StopReason.RUN_TIME
    assert Events.started == 5
    assert Events.stopped == 5
    assert result.status.state is RunState.STOPPED
    assert result.status.users == 0
    assert result.snapshot.total.num_requests == Events.tasks > 0


async def test_weights_are_honoured_exactly_once_ramped() -> None:
    seen: list[RunStatus] = []
    runner, _ = make_runner(lambda _snap, status: seen.append(status))
    await runner.run(RunPlan((Heavy, Light), users=8, spawn_rate=1000, run_time=0.3,
                             stats_interval=0.05))
    running = [s for s in seen if s.state is RunState.RUNNING]
    assert running, "the run never reported a completed ramp"
    assert dict(running[-1].class_counts) == {"Heavy": 6, "Light": 2}


async def test_spawn_rate_paces_the_ramp() -> None:
    seen: list[RunStatus] = []
    runner, _ = make_runner(lambda _snap, status: seen.append(status))
    await runner.run(RunPlan((Sleeper,), users=50, spawn_rate=20, run_time=0.5,
                             stats_interval=0.1))
    # 20 users/s for 0.5 s allows at most 11 users, far from 50: the ramp is paced
    assert 1 <= max(s.users for s in seen) <= 12


async def test_graceful_stop_cancels_waiting_users_at_once_and_runs_on_stop() -> None:
    watch = StatusWatch()
    runner, _ = make_runner(watch)

    async def stop_soon() -> None:
        await watch.until(lambda status: status.users == 3)  # all up, waiting an hour
        runner.request_stop()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(stop_soon())
        run = tg.create_task(runner.run(RunPlan((Sleeper,), users=3, spawn_rate=1000,
                                                stop_timeout=30, stats_interval=FAST)))
    result: RunResult = run.result()
    assert result.reason is StopReason.REQUESTED
    assert Events.stopped == 3


async def test_stop_timeout_cancels_a_busy_user() -> None:
    runner, _ = make_runner()
    loop = asyncio.get_running_loop()
    began = loop.time()
    result = await runner.run(RunPlan((Busy,), users=2, spawn_rate=1000, run_time=0.1,
                                      stop_timeout=0.2))
    assert result.reason is StopReason.RUN_TIME
    assert loop.time() - began < 10
    assert result.status.users == 0


async def test_abort_stops_everything_at_once() -> None:
    watch = StatusWatch()
    runner, _ = make_runner(watch)

    async def abort_soon() -> None:
        await watch.until(lambda status: status.users == 2)
        runner.request_stop()
        runner.abort()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(abort_soon())
        run = tg.create_task(runner.run(RunPlan((Busy,), users=2, spawn_rate=1000,
                                                stop_timeout=3600, stats_interval=FAST)))
    assert run.result().reason is StopReason.ABORTED


async def test_change_target_ramps_down_while_running() -> None:
    watch = StatusWatch()
    runner, _ = make_runner(watch)

    async def shrink() -> None:
        await watch.until(lambda status: status.users == 6)
        runner.change_target(2, spawn_rate=1000)
        await watch.until(lambda status: status.users == 2 and not status.stopping)
        runner.request_stop()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(shrink())
        tg.create_task(runner.run(RunPlan((Sleeper,), users=6, spawn_rate=1000,
                                          stats_interval=FAST)))
    assert any(s.users == 2 and s.target_users == 2 for s in watch.seen)
    assert Events.stopped == 6


class Steps(LoadShape):
    """Counts its ticks instead of reading the clock, so a slow CI cannot skip a step."""

    ticks = 0

    def tick(self) -> tuple[int, float] | None:
        self.ticks += 1
        if self.ticks <= 3:
            return (2, 1000.0)
        if self.ticks <= 6:
            return (4, 1000.0)
        return None


async def test_a_load_shape_drives_users_and_ends_the_run() -> None:
    seen: list[RunStatus] = []
    runner, _ = make_runner(lambda _snap, status: seen.append(status))
    result = await runner.run(RunPlan((Sleeper,), users=1, spawn_rate=1, shape=Steps(),
                                      shape_interval=0.05, stats_interval=0.02))
    assert result.reason is StopReason.SHAPE
    assert {s.target_users for s in seen} >= {2, 4}


class Broken(User):
    wait_time = constant(0.01)

    @task
    async def fails(self) -> None:
        raise ValueError("boom")


async def test_task_exceptions_are_recorded_and_users_keep_going() -> None:
    runner, _ = make_runner()
    result = await runner.run(RunPlan((Broken,), users=2, spawn_rate=1000, run_time=0.2))
    [exc] = result.snapshot.exceptions
    assert exc.error_type == "ValueError"
    assert exc.count >= 4  # both users went on after the first exception
    assert "test_engine_runner.py" in exc.location


class Worker(User):
    """Busy in a task most of the time: a ramp-down must still stop exactly the surplus."""

    wait_time = constant(0)

    async def on_stop(self) -> None:
        Events.stopped += 1

    @task
    async def work(self) -> None:
        Events.tasks += 1
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("stop_timeout", [0.0, 5.0])
async def test_ramp_down_of_busy_users_stops_exactly_the_surplus(stop_timeout: float) -> None:
    watch = StatusWatch()
    runner, _ = make_runner(watch)

    async def shrink() -> None:
        await watch.until(lambda status: status.users == 20)
        runner.change_target(4, spawn_rate=10_000)
        await watch.until(lambda status: status.users == 4 and not status.stopping)
        runner.request_stop()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(shrink())
        run = tg.create_task(runner.run(RunPlan((Worker,), users=20, spawn_rate=10_000,
                                                stop_timeout=stop_timeout,
                                                stats_interval=FAST)))
    assert run.result().reason is StopReason.REQUESTED
    assert Events.stopped == 20  # on_stop ran for every user, busy or not
    assert run.result().status.users == 0


class Quitter(User):
    wait_time = constant(0)

    @task
    async def once(self) -> None:
        async with self.measure("CUSTOM", "once"):
            pass
        raise StopUser


async def test_run_ends_when_every_user_stopped_itself() -> None:
    runner, _ = make_runner()
    result = await runner.run(RunPlan((Quitter,), users=3, spawn_rate=1000, stats_interval=0.05))
    assert result.reason is StopReason.NO_USERS
    assert result.snapshot.total.num_requests == 3


class OnlyFixed(User):
    fixed_count = 2
    wait_time = constant(3600)

    @task
    async def work(self) -> None:
        pass


async def test_fixed_counts_below_the_requested_users_set_the_real_target() -> None:
    runner, _ = make_runner()
    result = await runner.run(RunPlan((OnlyFixed,), users=10, spawn_rate=1000, run_time=0.1))
    assert result.status.target_users == 2


async def test_a_second_stop_request_while_stopping_aborts() -> None:
    watch = StatusWatch()
    runner, _ = make_runner(watch)

    async def stop_twice() -> None:
        await watch.until(lambda status: status.users == 2)
        runner.request_stop()
        await watch.until(lambda status: status.state is RunState.STOPPING)
        runner.request_stop()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(stop_twice())
        run = tg.create_task(runner.run(RunPlan((Busy,), users=2, spawn_rate=1000,
                                                stop_timeout=3600, stats_interval=FAST)))
    assert run.result().reason is StopReason.ABORTED


async def test_a_runner_runs_once() -> None:
    runner, _ = make_runner()
    await runner.run(RunPlan((Quick,), users=1, spawn_rate=10, run_time=0.05))
    with pytest.raises(RuntimeError, match="runs once"):
        await runner.run(RunPlan((Quick,), users=1, spawn_rate=10, run_time=0.05))


class BadShape(LoadShape):
    def tick(self) -> tuple[int, float] | None:
        return (-1, 5.0)  # invalid: negative users


class RaisingShape(LoadShape):
    def tick(self) -> tuple[int, float] | None:
        raise KeyError("stage")


@pytest.mark.parametrize("shape", [BadShape(), RaisingShape()])
async def test_a_broken_shape_stops_the_run_and_points_at_the_script(shape: LoadShape) -> None:
    runner, _ = make_runner()
    result = await runner.run(RunPlan((Sleeper,), users=1, spawn_rate=10, shape=shape,
                                      shape_interval=0.05))
    assert result.reason is StopReason.SHAPE_ERROR
    [exc] = result.snapshot.exceptions
    assert exc.task == f"{type(shape).__name__}.tick"
    assert "test_engine_runner.py" in exc.location


class SlowGoodbye(User):
    """Finishes its task within the stop timeout, then needs a while in on_stop."""

    wait_time = constant(0)

    async def on_stop(self) -> None:
        await asyncio.sleep(0.3)
        Events.stopped += 1

    @task
    async def work(self) -> None:
        Events.tasks += 1
        await asyncio.sleep(0.1)


async def test_the_stop_timeout_never_cuts_on_stop_of_a_user_that_finished_its_task() -> None:
    runner, _ = make_runner()
    result = await runner.run(RunPlan((SlowGoodbye,), users=3, spawn_rate=1000, run_time=0.15,
                                      stop_timeout=0.2))
    assert result.reason is StopReason.RUN_TIME
    assert Events.stopped == 3


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class BrokenRelease(User):
    """An error escapes the user's own handling, and even printing it fails."""

    wait_time = constant(3600)

    @task
    async def work(self) -> None:
        pass

    async def _release(self) -> None:
        raise Unprintable


async def test_an_unprintable_error_escaping_a_user_is_recorded_and_the_run_goes_on() -> None:
    runner, _ = make_runner()
    result = await runner.run(RunPlan((BrokenRelease,), users=2, spawn_rate=1000, run_time=0.1))
    assert result.reason is StopReason.RUN_TIME
    [exc] = result.snapshot.exceptions
    assert (exc.error_type, exc.count) == ("Unprintable", 2)
    assert "unprintable" in exc.message


async def test_exact_class_counts_override_weights_and_follow_a_new_share() -> None:
    watch = StatusWatch()
    deltas: list[int] = []
    recorder = Recorder(0.0)
    runner = LocalRunner(UserContext(recorder=recorder, random=random.Random(7)), recorder,
                         Aggregator(start=0.0), on_update=watch,
                         on_delta=lambda delta: deltas.append(
                             sum(e.num_requests for e in delta.entries)))

    async def reshare() -> None:
        await watch.until(lambda status: dict(status.class_counts) == {"Heavy": 1, "Light": 4})
        with pytest.raises(ValueError, match="unknown user class"):
            runner.change_class_targets({"Nope": 1})
        runner.change_class_targets({"Heavy": 3}, spawn_rate=1000)
        await watch.until(lambda status: dict(status.class_counts) == {"Heavy": 3, "Light": 0})
        runner.request_stop()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(reshare())
        result = tg.create_task(runner.run(RunPlan(
            (Heavy, Light), users=0, spawn_rate=1000, stats_interval=FAST,
            class_counts={"Heavy": 1, "Light": 4})))
    # Every delta went to on_delta before the runner's own aggregator: nothing is lost.
    assert sum(deltas) == result.result().snapshot.total.num_requests > 0
