"""Values scripts pass to the client: accepted or refused the same way by the Python
sources and by the compiled build (scripts/test.sh runs this file on both), with
errors that name the argument rather than a compiled function's type check."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from phalanx.core.results import ErrorKind, RequestFailure
from phalanx.http import HttpOptions, HttpSession
from phalanx.http.encoding import prepare_headers
from phalanx.http.response import Response


class _NullRecorder:
    def record(self, method: str, name: str, elapsed: float, response_bytes: int,
               failure: RequestFailure | None) -> None:
        pass

    def record_exception(self, task: str, error_type: str, message: str, location: str) -> None:
        pass


@pytest.fixture
def session() -> HttpSession:
    return HttpSession("http://127.0.0.1:9", _NullRecorder())


def test_header_names_and_values_of_any_type_are_sent_as_text() -> None:
    headers = prepare_headers({"X-Id": 42, "X-Ratio": 0.5, 7: "seven"})
    assert headers.pairs == (("X-Id", "42"), ("X-Ratio", "0.5"), ("7", "seven"))


def test_a_failure_message_of_any_type_is_kept_as_text() -> None:
    response = Response(200)
    response._catchable = True  # what `async with ... catch_response=True` sets
    response.failure(RuntimeError("out of stock"))
    assert response._verdict == RequestFailure(ErrorKind.FAILURE, "out of stock")
    response.failure(404)
    assert response._verdict == RequestFailure(ErrorKind.FAILURE, "404")


@pytest.mark.parametrize("flag", [0, 1, None, "", "yes"])
def test_flags_take_any_truth_value(session: HttpSession, flag: object) -> None:
    call = session.get("/", allow_redirects=flag, catch_response=flag)  # type: ignore[arg-type]
    assert call._catch is bool(flag)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"name": 123}, TypeError, "name= must be a str, not int"),
        ({"timeout": "5"}, TypeError, "timeout= must be a number of seconds, not str"),
        ({"timeout": True}, TypeError, "timeout= must be a number of seconds, not bool"),
        ({"timeout": 0}, ValueError, "timeout= must be a finite number of seconds above 0, not 0"),
        ({"timeout": -1.5}, ValueError, "above 0, not -1.5"),
        ({"timeout": float("inf")}, ValueError, "above 0, not inf"),
        ({"timeout": float("nan")}, ValueError, "above 0, not nan"),
        ({"timeout": 10**400}, ValueError, "above 0, not 1000"),
        ({"bogus": 1}, TypeError, "unexpected request argument(s): bogus"),
    ],
)
def test_unusable_arguments_are_refused_where_the_request_is_made(
    session: HttpSession, arguments: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        session.get("/", **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("flag", [0, None, "yes"])
def test_every_option_is_read_by_the_request_itself(session: HttpSession, flag: object) -> None:
    # An invalid header name ends the request before any connection, after the request
    # has read all its options: this runs _perform's reading in both builds.
    call = session.get(
        "/", name="/n", allow_redirects=flag, timeout=2,  # type: ignore[arg-type]
        params={"q": 1}, json={"a": 1}, headers={"bad name": "x"},
    )
    requests = call.__await__()
    with pytest.raises(StopIteration) as stop:
        next(requests)
    response = stop.value.value
    assert isinstance(response, Response)
    assert response.error == RequestFailure(ErrorKind.OTHER, "invalid header name")


def test_a_cookie_flag_takes_any_truth_value(session: HttpSession) -> None:
    session.cookies.set("a", "1", domain="127.0.0.1", secure=1)
    session.cookies.set("b", "2", domain="127.0.0.1", secure=None)
    assert {cookie.name: cookie.secure for cookie in session.cookies} == {"a": True, "b": False}


def test_good_arguments_pass_the_check(session: HttpSession) -> None:
    session.get("/", name="/items", timeout=2)
    session.get("/", name=None, timeout=None)
    session.post("/", timeout=0.25, json={"a": 1}, headers={"X-Id": 1})  # type: ignore[dict-item]


def test_options_copy_to_themselves_and_replace_still_validates() -> None:
    options = HttpOptions(read_timeout=5.0)
    assert copy.copy(options) is options
    assert copy.deepcopy(options) is options
    changed = dataclasses.replace(options, total_timeout=9.0)
    assert (changed.read_timeout, changed.total_timeout) == (5.0, 9.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.read_timeout = 1.0  # type: ignore[misc]
