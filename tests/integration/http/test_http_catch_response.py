"""catch_response: the block decides success or failure; recorded once, on exit."""

from __future__ import annotations

import pytest

from phalanx.core.errors import RescheduleTask
from phalanx.core.results import ErrorKind, RequestFailure


async def test_ok_response_without_verdict_is_recorded_as_success_on_exit(
    target, make_session, recorder
):
    session = make_session(target.url)

    async with session.get("/items", catch_response=True) as response:
        assert recorder.requests == []
        assert response.status_code == 200

    assert recorder.kinds == [None]
    assert recorder.names == ["/items"]


async def test_failure_call_records_a_failure_with_the_message(target, make_session, recorder):
    session = make_session(target.url)

    async with session.get("/items", catch_response=True) as response:
        if b"item-0" in response.content:
            response.failure("unexpected content")

    assert [r.failure for r in recorder.requests] == [
        RequestFailure(ErrorKind.FAILURE, "unexpected content")
    ]


async def test_success_call_turns_an_error_status_into_a_success(target, make_session, recorder):
    session = make_session(target.url)

    async with session.get("/status/404", catch_response=True) as response:
        response.success()

    assert recorder.kinds == [None]


async def test_error_status_without_verdict_is_an_http_status_failure(
    target, make_session, recorder
):
    session = make_session(target.url)

    async with session.get("/status/500", catch_response=True):
        pass

    assert recorder.kinds == [ErrorKind.HTTP_STATUS]


async def test_transport_error_can_be_declared_a_success(make_session, recorder):
    session = make_session(None)

    async with session.get("no-base-url", catch_response=True) as response:
        assert response.error is not None
        response.success()

    assert recorder.kinds == [None]


async def test_exception_in_the_block_is_recorded_and_reraised(target, make_session, recorder):
    session = make_session(target.url)

    with pytest.raises(KeyError):
        async with session.get("/items", catch_response=True) as response:
            response.json()[0]["missing"]

    assert recorder.kinds == [ErrorKind.EXCEPTION]
    failure = recorder.requests[0].failure
    assert failure is not None
    assert failure.message.startswith("KeyError")


async def test_control_flow_exception_records_the_verdict_and_propagates(
    target, make_session, recorder
):
    session = make_session(target.url)

    async def task() -> None:
        async with session.get("/items", catch_response=True) as response:
            response.failure("checked")
            raise RescheduleTask

    with pytest.raises(RescheduleTask):
        await task()

    assert [r.failure for r in recorder.requests] == [RequestFailure(ErrorKind.FAILURE, "checked")]


async def test_redirect_hops_are_recorded_at_once_and_the_final_one_on_exit(
    target, make_session, recorder
):
    session = make_session(target.url)

    async with session.get("/redirect/2", catch_response=True) as response:
        assert recorder.names == ["/redirect/2", "/redirect/1"]
        response.failure("no")

    assert recorder.names == ["/redirect/2", "/redirect/1", "/"]
    assert recorder.kinds == [None, None, ErrorKind.FAILURE]


async def test_verdict_outside_catch_response_is_refused(target, make_session):
    session = make_session(target.url)

    response = await session.get("/items")

    with pytest.raises(RuntimeError, match="catch_response"):
        response.failure("too late")


async def test_plain_async_with_records_immediately(target, make_session, recorder):
    session = make_session(target.url)

    async with session.get("/status/500") as response:
        assert recorder.kinds == [ErrorKind.HTTP_STATUS]
        assert response.status_code == 500

    assert len(recorder.requests) == 1
