"""The public scripting surface of ``phalanx`` is pinned: changing it is a deliberate act."""

from __future__ import annotations

import subprocess
import sys

import phalanx
from phalanx import secrets as phalanx_secrets
from phalanx.core import errors
from phalanx.scripting import shape, task, taskset, user, wait_time

EXPECTED_ALL = [
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


def test_all_is_pinned_exactly() -> None:
    assert phalanx.__all__ == EXPECTED_ALL


def test_every_public_name_resolves_to_its_implementation() -> None:
    assert phalanx.User is user.User
    assert phalanx.HttpUser is user.HttpUser
    assert phalanx.TaskSet is taskset.TaskSet
    assert phalanx.SequentialTaskSet is taskset.SequentialTaskSet
    assert phalanx.task is task.task
    assert phalanx.tag is task.tag
    assert phalanx.between is wait_time.between
    assert phalanx.constant is wait_time.constant
    assert phalanx.constant_pacing is wait_time.constant_pacing
    assert phalanx.constant_throughput is wait_time.constant_throughput
    assert phalanx.LoadShape is shape.LoadShape
    assert phalanx.StopUser is errors.StopUser
    assert phalanx.RescheduleTask is errors.RescheduleTask
    assert phalanx.InterruptTaskSet is errors.InterruptTaskSet
    assert phalanx.secrets.get is phalanx_secrets.get


def test_version_is_a_non_empty_string() -> None:
    assert isinstance(phalanx.__version__, str)
    assert phalanx.__version__


def test_star_import_gives_exactly_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from phalanx import *", namespace)  # noqa: S102 - a fixed statement under test
    assert sorted(name for name in namespace if name != "__builtins__") == sorted(EXPECTED_ALL)


def test_unknown_attributes_raise_attribute_error() -> None:
    assert not hasattr(phalanx, "no_such_name")


def test_importing_phalanx_does_not_load_the_http_client_or_package_metadata() -> None:
    code = (
        "import sys, phalanx; "
        "print(sorted(m for m in ('phalanx.http', 'importlib.metadata', 'phalanx.engine') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
