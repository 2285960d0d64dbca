"""Test doubles shared across test packages.

:class:`FakeRecorder` is a ``RequestRecorder`` that keeps everything it is
given, for tests that assert exactly what was recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from phalanx.core.results import RequestFailure


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    name: str
    elapsed: float
    response_bytes: int
    failure: RequestFailure | None


@dataclass(frozen=True)
class RecordedException:
    task: str
    error_type: str
    message: str
    location: str


class FakeRecorder:
    """A RequestRecorder that keeps everything it is given."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.exceptions: list[RecordedException] = []

    def record(
        self,
        method: str,
        name: str,
        elapsed: float,
        response_bytes: int,
        failure: RequestFailure | None,
    ) -> None:
        self.requests.append(RecordedRequest(method, name, elapsed, response_bytes, failure))

    def record_exception(self, task: str, error_type: str, message: str, location: str) -> None:
        self.exceptions.append(RecordedException(task, error_type, message, location))

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.requests]

    @property
    def kinds(self) -> list[str | None]:
        return [None if r.failure is None else r.failure.kind for r in self.requests]
