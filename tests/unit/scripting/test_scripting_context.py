"""UserContext and its run-scoped memo; exception description and location helpers."""

from __future__ import annotations

import dataclasses
import random
import sys

import pytest
from scripting_fakes import FakeRecorder

from phalanx import User, task
from phalanx.scripting.context import ONCE_KEYS_LIMIT, RunMemo, UserContext
from phalanx.scripting.reporting import describe_exception, exception_location
from phalanx.scripting.runloop import MAX_WAIT, _checked_seconds


def test_context_is_frozen_and_each_context_has_its_own_memo(recorder: FakeRecorder) -> None:
    first = UserContext(recorder=recorder)
    second = dataclasses.replace(first, host="http://127.0.0.1:1")
    assert first.memo is not second.memo
    assert isinstance(first.random, random.Random)
    assert first.logger.name == "phalanx.user"
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.host = "x"  # type: ignore[misc]


def test_memo_builds_each_value_once() -> None:
    memo = RunMemo()
    built: list[int] = []

    def build() -> int:
        built.append(1)
        return 42

    assert memo.get("k", build) == 42
    assert memo.get("k", build) == 42
    assert built == [1]


def test_first_time_is_true_once_per_key_and_bounded() -> None:
    memo = RunMemo()
    assert memo.first_time("a")
    assert not memo.first_time("a")
    for index in range(ONCE_KEYS_LIMIT):
        memo.first_time(index)
    assert not memo.first_time("never seen but over the limit")


def test_exception_location_without_a_traceback_is_unknown() -> None:
    assert exception_location(ValueError("x")) == "?"


def test_exception_location_is_the_callers_line_not_phalanx_code() -> None:
    # Runs on the compiled build too, whose frames carry relative source paths
    # (src/phalanx/...): phalanx's frames are recognised by module, not by path.
    from phalanx.http.response import HttpStatusError, Response

    line = sys._getframe().f_lineno + 2
    try:
        Response(503).raise_for_status()
    except HttpStatusError as exc:
        location = exception_location(exc)
    assert location == f"{__file__}:{line}"


def test_describe_exception_survives_a_broken_str() -> None:
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert describe_exception(Broken()) == ("Broken", "<unprintable Broken>")


@pytest.mark.parametrize(("value", "expected"), [(float("inf"), MAX_WAIT), (-3, 0.0), (2, 2.0)])
def test_wait_values_are_capped_and_floored(
    context: UserContext, value: float, expected: float
) -> None:
    class Odd(User):
        def wait_time(self) -> float:
            return value

        @task
        async def work(self) -> None: ...

    user = Odd(context)
    # what task_loop does with a wait_time() result that is not a float in range
    assert _checked_seconds(user, user, user.wait_time()) == expected
