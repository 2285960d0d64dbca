"""Mapping transport exceptions to stable :class:`~phalanx.core.results.ErrorKind` values.

Messages are short and never contain the URL (it may carry tokens).
"""

from __future__ import annotations

import socket
import ssl

from phalanx.core.results import ErrorKind, RequestFailure

__all__ = ["TransportError", "connect_failure"]


class TransportError(Exception):
    """Raised inside the client when no connection could be had; carries the failure.

    Never leaves the client: the session turns it into a failed response.
    """

    def __init__(self, failure: RequestFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def connect_failure(exc: BaseException) -> RequestFailure:
    """The failure for an exception raised while resolving or connecting."""
    if isinstance(exc, TransportError):
        return exc.failure
    if isinstance(exc, socket.gaierror):
        return RequestFailure(ErrorKind.DNS, f"cannot resolve host: {exc.strerror or exc}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or exc.reason or "certificate verify failed"
        return RequestFailure(ErrorKind.TLS, f"TLS certificate rejected: {detail}")
    if isinstance(exc, ssl.SSLError):
        return RequestFailure(ErrorKind.TLS, f"TLS handshake failed: {exc.reason or exc}")
    if isinstance(exc, ConnectionRefusedError):
        return RequestFailure(ErrorKind.CONNECTION_REFUSED, "connection refused")
    if isinstance(exc, ConnectionError):
        return RequestFailure(
            ErrorKind.CONNECTION_RESET, f"connection lost while connecting: {exc}"
        )
    if isinstance(exc, OSError):
        return RequestFailure(
            ErrorKind.CONNECTION_REFUSED, f"cannot connect: {exc.strerror or exc}"
        )
    return RequestFailure(ErrorKind.OTHER, f"{type(exc).__name__}: {exc}")
