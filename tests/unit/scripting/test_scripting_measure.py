"""user.measure(): one recorded result per block, success, failure, exceptions."""

from __future__ import annotations

import asyncio

import pytest
from scripting_fakes import FakeRecorder

from phalanx import RescheduleTask, StopUser, User, task
from phalanx.core.results import ErrorKind, RequestFailure
from phalanx.scripting.context import UserContext


class Custom(User):
    @task
    async def noop(self) -> None: ...


async def test_a_block_that_ends_normally_is_a_success(
    context: UserContext, recorder: FakeRecorder
) -> None:
    async with Custom(context).measure("grpc", "GetItem") as m:
        m.response_bytes = 128
    [result] = recorder.requests
    assert (result.method, result.name, result.response_bytes, result.failure) == (
        "grpc", "GetItem", 128, None
    )
    assert result.elapsed >= 0.0


async def test_failure_marks_the_result_failed_and_the_block_goes_on(
    context: UserContext, recorder: FakeRecorder
) -> None:
    reached = False
    async with Custom(context).measure("ws", "recv") as m:
        m.failure("unexpected frame")
        assert m.failed
        reached = True
    assert reached
    assert recorder.requests[0].failure == RequestFailure(ErrorKind.FAILURE, "unexpected frame")


async def test_success_undoes_an_earlier_failure(
    context: UserContext, recorder: FakeRecorder
) -> None:
    async with Custom(context).measure("db", "query") as m:
        m.failure("first try")
        m.success()
    assert recorder.requests[0].failure is None


async def test_failure_accepts_an_exception(context: UserContext, recorder: FakeRecorder) -> None:
    async with Custom(context).measure("db", "query") as m:
        m.failure(LookupError("no row"))
    assert recorder.requests[0].failure == RequestFailure(ErrorKind.FAILURE, "no row")


async def test_an_escaping_exception_is_recorded_and_reraised(
    context: UserContext, recorder: FakeRecorder
) -> None:
    with pytest.raises(ValueError, match="boom"):
        async with Custom(context).measure("grpc", "Put"):
            raise ValueError("boom")
    assert recorder.requests[0].failure == RequestFailure(ErrorKind.EXCEPTION, "ValueError: boom")


@pytest.mark.parametrize("control", [StopUser, RescheduleTask])
async def test_control_flow_exceptions_keep_the_outcome_and_propagate(
    context: UserContext, recorder: FakeRecorder, control: type[Exception]
) -> None:
    with pytest.raises(control):
        async with Custom(context).measure("grpc", "Put"):
            raise control
    assert recorder.requests[0].failure is None


async def test_a_cancelled_block_records_nothing(
    context: UserContext, recorder: FakeRecorder
) -> None:
    inside = asyncio.Event()

    async def measured() -> None:
        async with Custom(context).measure("grpc", "Slow"):
            inside.set()
            await asyncio.Event().wait()

    runner = asyncio.create_task(measured())
    await asyncio.wait_for(inside.wait(), 5)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert recorder.requests == []


async def test_measure_call_returns_the_result_and_records_once(
    context: UserContext, recorder: FakeRecorder
) -> None:
    async def fetch() -> str:
        return "value"

    assert await Custom(context).measure_call("redis", "GET", fetch()) == "value"
    assert [(r.method, r.name, r.failure) for r in recorder.requests] == [("redis", "GET", None)]


async def test_measure_call_records_and_reraises_an_exception(
    context: UserContext, recorder: FakeRecorder
) -> None:
    async def fetch() -> str:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await Custom(context).measure_call("redis", "GET", fetch())
    assert recorder.requests[0].failure == RequestFailure(
        ErrorKind.EXCEPTION, "ConnectionError: down"
    )


async def test_an_invalid_response_size_is_reported_as_zero(
    context: UserContext, recorder: FakeRecorder
) -> None:
    async with Custom(context).measure("x", "y") as m:
        m.response_bytes = -5
    assert recorder.requests[0].response_bytes == 0
