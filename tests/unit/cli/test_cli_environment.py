"""The command line takes the first admin's password out of the environment at start-up."""

from __future__ import annotations

import os

import pytest

from phalanx.cli import environment
from phalanx.web.accounts import ADMIN_PASSWORD_ENV


def test_the_admin_password_leaves_the_environment_and_is_read_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert ADMIN_PASSWORD_ENV in environment.TAKEN_VARIABLES
    monkeypatch.setenv(ADMIN_PASSWORD_ENV, "taken at start-up")
    environment.take_secrets()
    assert ADMIN_PASSWORD_ENV not in os.environ
    assert environment.take_once(ADMIN_PASSWORD_ENV) == "taken at start-up"
    assert environment.take_once(ADMIN_PASSWORD_ENV) is None
