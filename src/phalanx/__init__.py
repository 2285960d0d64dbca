"""phalanx: a secure-by-default load-testing tool; simulated users in async Python.

This module is the public scripting surface, and only that::

    from phalanx import HttpUser, task, between

    class Shopper(HttpUser):
        wait_time = between(0.5, 2)

        @task
        async def browse(self):
            await self.client.get("/items")

``__all__`` is pinned by a test. ``__version__`` is read from the installed
package metadata on first access ("0.0.0" when phalanx is not installed), so
importing phalanx does not load ``importlib.metadata``.
"""

from __future__ import annotations

from phalanx import secrets
from phalanx.core.errors import InterruptTaskSet, RescheduleTask, StopUser, TargetNotAllowed
from phalanx.scripting.shape import LoadShape
from phalanx.scripting.task import tag, task
from phalanx.scripting.taskset import SequentialTaskSet, TaskSet
from phalanx.scripting.user import HttpUser, User
from phalanx.scripting.wait_time import between, constant, constant_pacing, constant_throughput

__all__ = [
    "HttpUser",
    "InterruptTaskSet",
    "LoadShape",
    "RescheduleTask",
    "SequentialTaskSet",
    "StopUser",
    "TargetNotAllowed",
    "TaskSet",
    "User",
    "__version__",
    "between",
    "constant",
    "constant_pacing",
    "constant_throughput",
    "secrets",
    "tag",
    "task",
]


def __getattr__(name: str) -> str:
    """Provide ``__version__`` lazily (PEP 562)."""
    if name != "__version__":
        raise AttributeError(f"module 'phalanx' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("phalanx")
    except PackageNotFoundError:
        return "0.0.0"
