"""Fixtures for the scripting tests: a recording fake RequestRecorder and a UserContext."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import pytest
from scripting_fakes import FakeRecorder

from phalanx.scripting.context import UserContext


@pytest.fixture
def recorder() -> FakeRecorder:
    return FakeRecorder()


@pytest.fixture
def logger() -> logging.Logger:
    return logging.getLogger("phalanx.test.user")


@pytest.fixture
def make_context(recorder: FakeRecorder, logger: logging.Logger) -> Callable[..., UserContext]:
    """Build a UserContext on the fake recorder with a seeded Random (overridable)."""

    def build(**overrides: Any) -> UserContext:
        values: dict[str, Any] = {
            "recorder": recorder,
            "random": random.Random(1234),
            "logger": logger,
        }
        values.update(overrides)
        return UserContext(**values)

    return build


@pytest.fixture
def context(make_context: Callable[..., UserContext]) -> UserContext:
    return make_context()
