"""Secrets the command line takes out of the environment before anything else runs.

``PHALANX_ADMIN_PASSWORD`` creates the web UI's first admin. A user script is
imported (and may run code) long before the web UI starts, and local worker
processes inherit the environment, so :func:`take_secrets` moves the value
into this module's memory first thing in ``main``; the web UI takes it from
here once (:func:`take_once`). Light on purpose: ``main`` imports it before it
knows which command runs.
"""

from __future__ import annotations

import os
from typing import Final

TAKEN_VARIABLES: Final = ("PHALANX_ADMIN_PASSWORD",)
"""Variables removed from ``os.environ`` at start-up (``web.accounts.ADMIN_PASSWORD_ENV``)."""

_taken: dict[str, str] = {}


def take_secrets() -> None:
    """Move every variable of :data:`TAKEN_VARIABLES` out of ``os.environ``."""
    for name in TAKEN_VARIABLES:
        value = os.environ.pop(name, None)
        if value is not None:
            _taken[name] = value


def take_once(name: str) -> str | None:
    """The value taken for ``name`` (None if it was not set); forgotten once read."""
    return _taken.pop(name, None)
