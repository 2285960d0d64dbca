"""Test doubles shared by the scripting tests (imported by conftest and test modules)."""

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
