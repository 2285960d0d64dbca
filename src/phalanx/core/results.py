"""What a request (or any timed operation) reports upward to the stats layer.

The HTTP client and the scripting hooks produce results; ``phalanx.stats``
consumes them. Both sides depend only on this module, never on each other.

Invariants:
- ``elapsed`` is seconds (float, >= 0), measured with a monotonic clock.
- ``name`` is already safe to show: query-string values stripped, secrets masked.
- ``failure is None`` means success.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol


class ErrorKind:
    """Stable error kinds: part of the output contract (JSON, CSV, later the API)."""

    CONNECTION_REFUSED: Final = "connection_refused"
    CONNECTION_RESET: Final = "connection_reset"
    CONNECT_TIMEOUT: Final = "connect_timeout"
    READ_TIMEOUT: Final = "read_timeout"
    TIMEOUT: Final = "timeout"  # the total deadline of a request
    DNS: Final = "dns"
    TLS: Final = "tls"
    BAD_HTTP: Final = "bad_http"
    HTTP_STATUS: Final = "http_status"  # 4xx/5xx without catch_response
    TOO_MANY_REDIRECTS: Final = "too_many_redirects"
    INVALID_URL: Final = "invalid_url"
    FAILURE: Final = "failure"  # r.failure(...) with catch_response, or a custom client failure
    EXCEPTION: Final = "exception"  # an exception escaped a measured block
    TARGET_NOT_ALLOWED: Final = "target_not_allowed"
    CONNECTION_LIMIT: Final = "connection_limit"  # the run's --max-connections is reached
    OTHER: Final = "other"


@dataclass(frozen=True, slots=True)
class RequestFailure:
    """Why a request failed: a stable ``kind`` and a short human ``message``."""

    kind: str
    message: str


class RequestRecorder(Protocol):
    """Sink for completed requests and for exceptions raised by user tasks.

    Implementations must be cheap (called on the hot path) and must not raise.
    """

    def record(
        self,
        method: str,
        name: str,
        elapsed: float,
        response_bytes: int,
        failure: RequestFailure | None,
    ) -> None: ...

    def record_exception(self, task: str, error_type: str, message: str, location: str) -> None: ...
