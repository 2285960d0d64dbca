"""The error tree.

Every error a user can cause (bad flag, bad config, broken script) is a
:class:`PhalanxError` subclass carrying a message that is shown as is, without
a traceback. ``exit_code`` is the process exit code the CLI uses for it.
"""

from __future__ import annotations


class PhalanxError(Exception):
    """Base class: a user-facing error whose ``str()`` is the whole message."""

    exit_code: int = 2


class ConfigError(PhalanxError):
    """A setting (flag, environment variable, config file entry) is invalid."""


class ScriptError(PhalanxError):
    """A user script cannot be loaded or is not a valid phalanx script.

    ``path`` and ``line`` locate the problem when known; ``str()`` already
    includes them, so callers print it as is.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")


class StopUser(Exception):
    """Raised inside a task to stop this simulated user (``on_stop`` still runs)."""


class InterruptTaskSet(Exception):
    """Raised by ``TaskSet.interrupt()`` to return control to the parent."""

    def __init__(self, reschedule: bool = True) -> None:
        super().__init__()
        self.reschedule = reschedule


class RescheduleTask(Exception):
    """Raised inside a task to end it early and pick the next task."""


class TargetNotAllowed(Exception):
    """A custom client asked for a host outside the run's target scope.

    Raised by ``User.check_target`` / ``User.resolve_target``; ``measure()``
    records it as a failure of kind ``target_not_allowed``.
    """

