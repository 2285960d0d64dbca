"""An idle session (no connection yet) stays small: 10,000 idle users must fit in
a few KB each, everything included."""

from __future__ import annotations

import tracemalloc

from phalanx.core.results import RequestFailure
from phalanx.http import HttpOptions, HttpSession, TlsContexts


class _NullRecorder:
    def record(
        self,
        method: str,
        name: str,
        elapsed: float,
        response_bytes: int,
        failure: RequestFailure | None,
    ) -> None:
        pass

    def record_exception(self, task: str, error_type: str, message: str, location: str) -> None:
        pass


def test_idle_session_costs_under_one_kilobyte() -> None:
    options, tls, recorder = HttpOptions(), TlsContexts(), _NullRecorder()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        sessions = [
            HttpSession("http://127.0.0.1:8080/api", recorder, options=options, tls=tls)
            for _ in range(2000)
        ]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()

    per_session = sum(d.size_diff for d in after.compare_to(before, "filename")) / len(sessions)
    assert per_session < 1024
