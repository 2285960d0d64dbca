"""The User run loop: lifecycle, stopping, cancellation, control-flow exceptions, reporting."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from random import Random

import pytest
from scripting_fakes import FakeRecorder

from phalanx import (
    HttpUser,
    InterruptTaskSet,
    RescheduleTask,
    StopUser,
    User,
    between,
    constant,
    task,
)
from phalanx.scripting.context import UserContext

TIMEOUT = 5.0


def fail_here(message: str) -> None:
    raise ValueError(message)


FAIL_LINE = fail_here.__code__.co_firstlineno + 1


def run_until_calls(limit: int, events: list[str]) -> type[User]:
    """A user class whose single task stops the user after ``limit`` runs."""

    class Counting(User):
        async def on_start(self) -> None:
            events.append("on_start")

        async def on_stop(self) -> None:
            events.append("on_stop")

        @task
        async def work(self) -> None:
            events.append("work")
            if events.count("work") == limit:
                self.request_stop()

    return Counting


async def test_run_calls_on_start_then_tasks_then_on_stop(context: UserContext) -> None:
    events: list[str] = []
    user = run_until_calls(3, events)(context)
    await asyncio.wait_for(user.run(), TIMEOUT)
    assert events == ["on_start", "work", "work", "work", "on_stop"]
    assert user.is_stopping
    assert not user.is_waiting


async def test_request_stop_before_run_skips_tasks_but_runs_hooks(context: UserContext) -> None:
    events: list[str] = []
    user = run_until_calls(99, events)(context)
    user.request_stop()
    await asyncio.wait_for(user.run(), TIMEOUT)
    assert events == ["on_start", "on_stop"]


def waiting_user(events: list[str], reached: asyncio.Event) -> type[User]:
    class Waiter(User):
        def wait_time(self) -> float:
            reached.set()
            return 3600.0

        async def on_stop(self) -> None:
            events.append("on_stop")
            events.append(f"cancelling={asyncio.current_task().cancelling()}")  # type: ignore[union-attr]
            try:
                async with asyncio.timeout(0):
                    await asyncio.Event().wait()
            except TimeoutError:
                events.append("timeout works in on_stop")

        @task
        async def work(self) -> None:
            events.append("work")

    return Waiter


async def test_cancel_while_waiting_after_request_stop_runs_on_stop_and_returns(
    context: UserContext,
) -> None:
    events: list[str] = []
    reached = asyncio.Event()
    user = waiting_user(events, reached)(context)
    runner = asyncio.create_task(user.run())
    await asyncio.wait_for(reached.wait(), TIMEOUT)
    assert user.is_waiting
    user.request_stop()
    runner.cancel()
    await asyncio.wait_for(runner, TIMEOUT)  # returns normally: no CancelledError
    assert not runner.cancelled()
    assert events == ["work", "on_stop", "cancelling=0", "timeout works in on_stop"]
    assert not user.is_waiting


async def test_cancel_while_waiting_without_request_stop_propagates(context: UserContext) -> None:
    events: list[str] = []
    reached = asyncio.Event()
    user = waiting_user(events, reached)(context)
    runner = asyncio.create_task(user.run())
    await asyncio.wait_for(reached.wait(), TIMEOUT)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(runner, TIMEOUT)
    assert events == ["work"]


class _Busy(User):
    events: list[str]
    inside: asyncio.Event

    async def on_stop(self) -> None:
        self.events.append("on_stop")

    @task
    async def hang(self) -> None:
        self.inside.set()
        await asyncio.Event().wait()


async def test_stop_that_cancels_a_busy_user_still_runs_on_stop(context: UserContext) -> None:
    _Busy.events, _Busy.inside = [], asyncio.Event()
    user = _Busy(context)
    runner = asyncio.create_task(user.run())
    await asyncio.wait_for(_Busy.inside.wait(), TIMEOUT)
    assert not user.is_waiting
    user.request_stop()
    runner.cancel()
    await asyncio.wait_for(runner, TIMEOUT)  # returns normally: the stop asked for the cancel
    assert _Busy.events == ["on_stop"]


async def test_abort_cancel_during_a_task_propagates_and_skips_on_stop(
    context: UserContext,
) -> None:
    _Busy.events, _Busy.inside = [], asyncio.Event()
    user = _Busy(context)
    runner = asyncio.create_task(user.run())
    await asyncio.wait_for(_Busy.inside.wait(), TIMEOUT)
    user.abort()
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(runner, TIMEOUT)
    assert _Busy.events == []


async def test_stop_user_ends_the_user_and_runs_on_stop(
    context: UserContext, recorder: FakeRecorder
) -> None:
    events: list[str] = []

    class Quitter(User):
        async def on_stop(self) -> None:
            events.append("on_stop")

        @task
        async def quit(self) -> None:
            events.append("quit")
            raise StopUser

    await asyncio.wait_for(Quitter(context).run(), TIMEOUT)
    assert events == ["quit", "on_stop"]
    assert recorder.exceptions == []


async def test_reschedule_task_ends_the_task_early_without_an_error(
    context: UserContext, recorder: FakeRecorder
) -> None:
    events: list[str] = []

    class Rescheduler(User):
        @task
        async def short(self) -> None:
            events.append("start")
            if events.count("start") == 2:
                self.request_stop()
            raise RescheduleTask
            events.append("never")  # pragma: no cover

    await asyncio.wait_for(Rescheduler(context).run(), TIMEOUT)
    assert events == ["start", "start"]
    assert recorder.exceptions == []


async def test_task_exceptions_are_recorded_with_the_script_location_and_the_loop_goes_on(
    context: UserContext, recorder: FakeRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[int] = []

    class Failing(User):
        @task
        async def boom(self) -> None:
            runs.append(1)
            if len(runs) == 3:
                self.request_stop()
            fail_here("bad item")

    with caplog.at_level(logging.WARNING, logger="phalanx.test.user"):
        await asyncio.wait_for(Failing(context).run(), TIMEOUT)
    assert len(runs) == 3
    assert len(recorder.exceptions) == 3
    first = recorder.exceptions[0]
    assert first.task.endswith("Failing.boom")
    assert first.error_type == "ValueError"
    assert first.message == "bad item"
    assert first.location == f"{__file__}:{FAIL_LINE}"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # rate-limited per (task, type)
    assert warnings[0].exc_info is not None
    assert "Failing.boom" in warnings[0].getMessage()


async def test_each_task_and_error_type_is_logged_once(
    context: UserContext, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[int] = []

    class TwoKinds(User):
        @task
        async def boom(self) -> None:
            runs.append(1)
            if len(runs) == 4:
                self.request_stop()
            if len(runs) % 2:
                raise KeyError("k")
            raise ValueError("v")

    with caplog.at_level(logging.WARNING, logger="phalanx.test.user"):
        await asyncio.wait_for(TwoKinds(context).run(), TIMEOUT)
    assert sorted(r.getMessage().split(" raised ")[1].split(":")[0] for r in caplog.records) == [
        "KeyError", "ValueError"
    ]


async def test_exception_messages_get_a_generous_first_cut(
    context: UserContext, recorder: FakeRecorder
) -> None:
    class Verbose(User):
        @task
        async def boom(self) -> None:
            self.request_stop()
            raise RuntimeError("x" * 9000)

    await asyncio.wait_for(Verbose(context).run(), TIMEOUT)
    # the stats layer cuts to its own limit after masking secrets (see stats.recorder)
    assert len(recorder.exceptions[0].message) == 4096


async def test_location_skips_frames_inside_phalanx_and_the_standard_library(
    context: UserContext, recorder: FakeRecorder
) -> None:
    class Misuse(User):
        @task
        async def bad_wait(self) -> None:
            self.request_stop()
            between(5, 1)  # raises inside phalanx.scripting.wait_time

        @task
        async def bad_json(self) -> None:
            self.request_stop()
            json.loads("{not json")  # raises inside the json package

    for _ in range(20):  # both tasks get picked (seeded random)
        await asyncio.wait_for(Misuse(context).run(), TIMEOUT)
    by_task = {e.task.rsplit(".", 1)[-1]: e for e in recorder.exceptions}
    assert set(by_task) == {"bad_wait", "bad_json"}
    for name, exception in by_task.items():
        line = Misuse.__dict__[name].__code__.co_firstlineno + 3
        assert exception.location == f"{__file__}:{line}"


async def test_a_failing_on_start_is_recorded_and_the_user_stops_after_on_stop(
    context: UserContext, recorder: FakeRecorder
) -> None:
    events: list[str] = []

    class BadStart(User):
        async def on_start(self) -> None:
            fail_here("login failed")

        async def on_stop(self) -> None:
            events.append("on_stop")

        @task
        async def work(self) -> None:
            events.append("work")

    await asyncio.wait_for(BadStart(context).run(), TIMEOUT)
    assert events == ["on_stop"]
    assert [(e.task.rsplit(".", 1)[-1], e.message, e.location) for e in recorder.exceptions] == [
        ("on_start", "login failed", f"{__file__}:{FAIL_LINE}")
    ]
    assert recorder.exceptions[0].task.endswith("BadStart.on_start")


async def test_stop_user_in_on_start_stops_without_an_error(
    context: UserContext, recorder: FakeRecorder
) -> None:
    events: list[str] = []

    class NoStart(User):
        async def on_start(self) -> None:
            raise StopUser

        async def on_stop(self) -> None:
            events.append("on_stop")

        @task
        async def work(self) -> None:
            events.append("work")

    await asyncio.wait_for(NoStart(context).run(), TIMEOUT)
    assert events == ["on_stop"]
    assert recorder.exceptions == []


async def test_a_failing_on_stop_is_recorded(context: UserContext, recorder: FakeRecorder) -> None:
    class BadStop(User):
        async def on_stop(self) -> None:
            raise OSError("logout failed")

        @task
        async def work(self) -> None:
            self.request_stop()

    await asyncio.wait_for(BadStop(context).run(), TIMEOUT)
    assert [(e.task.rsplit(".", 2)[-2:], e.error_type) for e in recorder.exceptions] == [
        (["BadStop", "on_stop"], "OSError")
    ]


async def test_a_broken_wait_time_is_reported_and_stops_the_user(
    context: UserContext, recorder: FakeRecorder
) -> None:
    events: list[str] = []

    class BadWait(User):
        def wait_time(self) -> float:
            raise ZeroDivisionError("oops")

        async def on_stop(self) -> None:
            events.append("on_stop")

        @task
        async def work(self) -> None:
            events.append("work")

    class WrongType(User):
        def wait_time(self) -> str:
            return "soon"

        @task
        async def work(self) -> None:
            pass

    await asyncio.wait_for(BadWait(context).run(), TIMEOUT)
    await asyncio.wait_for(WrongType(context).run(), TIMEOUT)
    assert events == ["work", "on_stop"]
    assert [(e.task.rsplit(".", 1)[-1], e.error_type) for e in recorder.exceptions] == [
        ("wait_time", "ZeroDivisionError"), ("wait_time", "TypeError")
    ]


@pytest.mark.parametrize("returned", ["soon", None, True, [1.0]])
async def test_a_wait_time_that_is_not_a_number_is_named_in_the_report(
    context: UserContext, recorder: FakeRecorder, returned: object
) -> None:
    # The same message from the compiled build: its task loop must not reject the value
    # with a TypeError of its own before the loop's check sees it.
    runs: list[str] = []

    class WrongType(User):
        def wait_time(self) -> object:
            return returned

        @task
        async def work(self) -> None:
            runs.append("work")

    await asyncio.wait_for(WrongType(context).run(), TIMEOUT)
    assert runs == ["work"]
    assert [(e.error_type, e.message) for e in recorder.exceptions] == [
        ("TypeError", f"wait_time() must return a number of seconds, got {returned!r}")
    ]


@pytest.mark.parametrize("raised", [RescheduleTask, InterruptTaskSet])
async def test_control_flow_from_a_user_wait_time_is_reported_and_stops_the_user(
    context: UserContext, recorder: FakeRecorder, raised: type[Exception]
) -> None:
    events: list[str] = []

    class Odd(User):
        def wait_time(self) -> float:
            raise raised

        async def on_stop(self) -> None:
            events.append("on_stop")

        @task
        async def work(self) -> None:
            events.append("work")

    await asyncio.wait_for(Odd(context).run(), TIMEOUT)
    assert events == ["work", "on_stop"]
    assert [e.error_type for e in recorder.exceptions] == [raised.__name__]


async def test_a_negative_wait_time_counts_as_zero(
    context: UserContext, recorder: FakeRecorder
) -> None:
    runs: list[int] = []

    class Negative(User):
        def wait_time(self) -> float:
            return -5.0

        @task
        async def work(self) -> None:
            runs.append(1)
            if len(runs) == 2:
                self.request_stop()

    await asyncio.wait_for(Negative(context).run(), TIMEOUT)
    assert len(runs) == 2
    assert recorder.exceptions == []


async def test_interrupt_from_a_user_task_is_reported_as_a_misuse(
    context: UserContext, recorder: FakeRecorder
) -> None:
    class Confused(User):
        @task
        async def work(self) -> None:
            self.request_stop()
            raise InterruptTaskSet

    await asyncio.wait_for(Confused(context).run(), TIMEOUT)
    assert recorder.exceptions[0].error_type == "RuntimeError"
    assert "only TaskSets can be interrupted" in recorder.exceptions[0].message


async def test_task_timing_attributes_are_maintained(context: UserContext) -> None:
    seen: list[tuple[float, float]] = []

    class Timed(User):
        def wait_time(self) -> float:
            seen.append((self.task_started_at, self.last_task_duration))
            return 0.0

        @task
        async def work(self) -> None:
            if len(seen) == 1:
                self.request_stop()

    user = Timed(context)
    assert (user.task_started_at, user.last_task_duration) == (0.0, 0.0)
    await asyncio.wait_for(user.run(), TIMEOUT)
    assert len(seen) == 1
    started, duration = seen[0]
    assert started > 0.0
    assert duration >= 0.0


def picky_class(order: list[str]) -> type[User]:
    class Picky(User):
        @task
        async def a(self) -> None:
            order.append("a")
            if len(order) == 30:
                self.request_stop()

        @task
        async def b(self) -> None:
            order.append("b")
            if len(order) == 30:
                self.request_stop()

    return Picky


async def test_task_selection_is_reproducible_with_the_context_random(
    make_context: Callable[..., UserContext],
) -> None:
    first: list[str] = []
    second: list[str] = []
    await asyncio.wait_for(picky_class(first)(make_context(random=Random(5))).run(), TIMEOUT)
    await asyncio.wait_for(picky_class(second)(make_context(random=Random(5))).run(), TIMEOUT)
    assert first == second
    assert set(first) == {"a", "b"}


def test_user_and_httpuser_are_abstract_and_subclasses_are_concrete() -> None:
    class Concrete(User):
        pass

    class Base(HttpUser):
        abstract = True

    class Leaf(Base):
        pass

    assert User.abstract
    assert HttpUser.abstract
    assert Base.abstract
    assert Concrete.abstract is False
    assert Leaf.abstract is False


def test_base_users_have_no_instance_dict_but_script_subclasses_do(context: UserContext) -> None:
    class Scripted(User):
        def __init__(self, ctx: UserContext) -> None:
            super().__init__(ctx)
            self.cart: list[str] = []

    assert not hasattr(User(context), "__dict__")
    scripted = Scripted(context)
    scripted.token = "abc"  # type: ignore[attr-defined]
    assert vars(scripted) == {"cart": [], "token": "abc"}


def test_class_defaults_match_locust() -> None:
    assert User.host is None
    assert User.weight == 1
    assert User.fixed_count == 0
    assert User.wait_time(object()) == 0.0  # type: ignore[arg-type]
    assert constant(0)(object()) == 0.0
