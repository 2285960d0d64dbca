"""Reporting an exception raised by user code (a task, ``on_start``, ``on_stop``).

Every occurrence is recorded through ``RequestRecorder.record_exception`` with:

- ``task``: the qualified name of the function that raised (``Shopper.browse``);
- ``error_type``: the exception class name;
- ``message``: ``str(exc)``, cut to :data:`MESSAGE_LIMIT` characters;
- ``location``: ``file:line`` of the innermost traceback frame in user code.

"User code" is a frame outside the phalanx package and outside the Python
library directories (stdlib, site-packages); when no frame qualifies, the
innermost frame outside phalanx is used, then the innermost frame at all.

Logging is rate-limited per run and per ``(task, error_type)``: the first
occurrence is logged at WARNING with its traceback through the context's
logger, later ones are only recorded.
"""

from __future__ import annotations

import os
import sysconfig
from types import TracebackType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from phalanx.scripting.context import UserContext

MESSAGE_LIMIT: Final = 4096
"""A first, generous cut. The stats layer cuts to its own limit only after masking
secrets, so a secret straddling this cut would need a 4 KiB message to leak."""

_LIBRARY_DIRS: Final = tuple(
    sorted(
        {
            os.path.abspath(path) + os.sep
            for key in ("stdlib", "platstdlib", "purelib", "platlib")
            if (path := sysconfig.get_paths().get(key))
        }
    )
)


def _is_phalanx(module: object) -> bool:
    """Whether a frame of module ``module`` (its ``__name__``) is phalanx's own code.

    By module, not by file: a compiled module's frames carry the relative source path
    it was built from, which says nothing about where phalanx is installed.
    """
    return isinstance(module, str) and (module == "phalanx" or module.startswith("phalanx."))


def _is_library(filename: str) -> bool:
    return filename.startswith("<") or os.path.abspath(filename).startswith(_LIBRARY_DIRS)


def exception_location(exc: BaseException) -> str:
    """``file:line`` of the innermost frame of ``exc`` in user code (``"?"`` without one)."""
    frames: list[tuple[str, int, object]] = []
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        frames.append((frame.f_code.co_filename, tb.tb_lineno, frame.f_globals.get("__name__")))
        tb = tb.tb_next
    if not frames:
        return "?"
    outside = [frame for frame in frames if not _is_phalanx(frame[2])]
    user = [frame for frame in outside if not _is_library(frame[0])]
    filename, line, _ = (user or outside or frames)[-1]
    return f"{filename}:{line}"


def describe_exception(exc: BaseException) -> tuple[str, str]:
    """``(type name, message cut to MESSAGE_LIMIT)``; never raises."""
    try:
        message = str(exc)
    except Exception:  # a broken __str__ in user code must not break reporting
        message = f"<unprintable {type(exc).__name__}>"
    return type(exc).__name__, message[:MESSAGE_LIMIT]


def report_exception(context: UserContext, task: str, exc: BaseException) -> None:
    """Record ``exc`` raised by ``task``; log it the first time per (task, type) in the run."""
    error_type, message = describe_exception(exc)
    location = exception_location(exc)
    context.recorder.record_exception(task, error_type, message, location)
    if context.memo.first_time(("exception", task, error_type)):
        context.logger.warning(
            "%s raised %s: %s (at %s); later %s errors of this task are counted, not logged",
            task,
            error_type,
            message,
            location,
            error_type,
            exc_info=exc,
        )
