"""Timing custom operations: the hook for clients phalanx does not ship.

``async with user.measure("grpc", "GetItem") as m:`` times the block with
``time.perf_counter`` and records one result through the run's
``RequestRecorder`` when the block ends:

- the block ends normally: success, unless ``m.failure(message)`` was called
  (then ``ErrorKind.FAILURE`` with that message);
- ``TargetNotAllowed`` escapes (see ``User.check_target``): ``ErrorKind.TARGET_NOT_ALLOWED``,
  and it propagates;
- another ``Exception`` escapes: ``ErrorKind.EXCEPTION`` with ``"TypeName: message"``,
  and the exception propagates;
- a control-flow exception of the scripting API escapes (``StopUser``,
  ``RescheduleTask``, ``InterruptTaskSet``): recorded with the outcome set so
  far (the operation itself completed), and propagates;
- a ``BaseException`` that is not an ``Exception`` (``CancelledError``,
  ``KeyboardInterrupt``) escapes: nothing is recorded (the operation was
  abandoned, not failed), and it propagates.

``m.response_bytes`` (int, default 0) is reported as the response size.
Exactly one result is recorded per measurement.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING

from phalanx.core.errors import InterruptTaskSet, RescheduleTask, StopUser, TargetNotAllowed
from phalanx.core.results import ErrorKind, RequestFailure
from phalanx.scripting.reporting import MESSAGE_LIMIT, describe_exception

if TYPE_CHECKING:
    from phalanx.core.results import RequestRecorder

_CONTROL_FLOW = (StopUser, RescheduleTask, InterruptTaskSet)


class Measurement:
    """The handle of one measured block (an async context manager)."""

    __slots__ = ("_failure", "_recorder", "_started", "method", "name", "response_bytes")

    def __init__(self, recorder: RequestRecorder, method: str, name: str) -> None:
        self._recorder = recorder
        self.method = method
        self.name = name
        self.response_bytes = 0
        self._failure: RequestFailure | None = None
        self._started = 0.0

    def failure(self, message: str | BaseException) -> None:
        """Mark the operation failed (``ErrorKind.FAILURE``); the block goes on."""
        text = describe_exception(message)[1] if isinstance(message, BaseException) else message
        self._failure = RequestFailure(ErrorKind.FAILURE, str(text)[:MESSAGE_LIMIT])

    def success(self) -> None:
        """Undo an earlier :meth:`failure`."""
        self._failure = None

    @property
    def failed(self) -> bool:
        return self._failure is not None

    async def __aenter__(self) -> Measurement:
        self._started = time.perf_counter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        elapsed = max(0.0, time.perf_counter() - self._started)
        failure = self._failure
        if exc is not None:
            if not isinstance(exc, Exception):
                return  # abandoned (cancelled): not a result
            if isinstance(exc, TargetNotAllowed):
                failure = RequestFailure(ErrorKind.TARGET_NOT_ALLOWED, str(exc)[:MESSAGE_LIMIT])
            elif not isinstance(exc, _CONTROL_FLOW):
                error_type, message = describe_exception(exc)
                failure = RequestFailure(
                    ErrorKind.EXCEPTION, f"{error_type}: {message}"[:MESSAGE_LIMIT]
                )
        size = self.response_bytes
        self._recorder.record(
            self.method, self.name, elapsed, size if isinstance(size, int) and size > 0 else 0,
            failure,
        )
