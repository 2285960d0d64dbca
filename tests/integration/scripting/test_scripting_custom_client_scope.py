"""Custom clients check their targets with the run's scope guard (no packet is sent here)."""

from __future__ import annotations

import random

import pytest
from tests.support.fakes import FakeRecorder

from phalanx import TargetNotAllowed, User, task
from phalanx.core.results import ErrorKind
from phalanx.http.options import HttpOptions
from phalanx.scripting.context import UserContext
from phalanx.security.scope import ScopeGuard


class Grpc(User):
    @task
    async def call(self) -> None:
        pass


def user_with_scope(rules: list[str]) -> tuple[Grpc, FakeRecorder]:
    recorder = FakeRecorder()
    guard = ScopeGuard.from_rules(rules, default_host_url=None)
    context = UserContext(recorder=recorder, http_options=HttpOptions(scope=guard),
                          random=random.Random(1))
    return Grpc(context), recorder


def test_check_target_allows_the_scope_and_refuses_the_rest() -> None:
    user, _ = user_with_scope(["127.0.0.1:50051"])
    user.check_target("http://127.0.0.1:50051")
    with pytest.raises(TargetNotAllowed, match=r"127\.0\.0\.2"):
        user.check_target("http://127.0.0.2:50051")
    with pytest.raises(TargetNotAllowed):
        user.check_target("http://169.254.169.254/latest/meta-data")


async def test_resolve_target_returns_only_allowed_addresses() -> None:
    user, _ = user_with_scope(["127.0.0.1:50051"])
    assert await user.resolve_target("127.0.0.1", 50051) == ["127.0.0.1"]
    with pytest.raises(TargetNotAllowed):
        await user.resolve_target("127.0.0.1", 50052)  # wrong port
    with pytest.raises(TargetNotAllowed):
        await user.resolve_target("127.0.0.2", 50051)


async def test_a_refusal_inside_measure_is_recorded_as_target_not_allowed() -> None:
    user, recorder = user_with_scope(["127.0.0.1:50051"])
    with pytest.raises(TargetNotAllowed):
        async with user.measure("grpc", "GetItem"):
            await user.resolve_target("127.0.0.3", 50051)
    assert recorder.names == ["GetItem"]
    assert recorder.requests[0].method == "grpc"
    assert recorder.kinds == [ErrorKind.TARGET_NOT_ALLOWED]


async def test_without_a_scope_everything_is_allowed() -> None:
    user = Grpc(UserContext(recorder=FakeRecorder(), random=random.Random(1)))
    user.check_target("http://127.0.0.9:1")
    assert await user.resolve_target("127.0.0.9", 1) == ["127.0.0.9"]


def test_check_target_takes_any_scheme_and_host_port_and_hides_credentials() -> None:
    user, _ = user_with_scope(["127.0.0.1:50051", "127.0.0.1:443"])
    user.check_target("grpc://127.0.0.1:50051")
    user.check_target("127.0.0.1:50051")
    user.check_target("wss://127.0.0.1/socket")  # wss defaults to 443
    with pytest.raises(TargetNotAllowed, match="give the port"):
        user.check_target("grpc://127.0.0.1")
    with pytest.raises(TargetNotAllowed) as refused:
        user.check_target("postgres://admin:hunter2pass@127.0.0.2:5432/db?sslkey=x")
    assert "hunter2pass" not in str(refused.value)
    assert "sslkey" not in str(refused.value)
