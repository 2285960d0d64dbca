"""The :class:`Response` a request returns, success or not.

A response always exists: a transport failure (refused, timeout, TLS, bad
HTTP, ...) gives ``status_code == 0`` and ``error`` set, so user code never
has to catch client exceptions. Headers and text are decoded lazily.

``success()`` / ``failure(message)`` decide how the request is recorded and
are only valid inside ``async with session.get(..., catch_response=True) as r``.
"""

from __future__ import annotations

import codecs
from http import HTTPStatus
from typing import Any

import msgspec

from phalanx.core.results import ErrorKind, RequestFailure
from phalanx.http.headers import Headers
from phalanx.http.url import Url

__all__ = ["HttpStatusError", "Response"]

_RawHeaders = bytes | list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...]
"""A header block as received (see :func:`~phalanx.http.headers.split_fields`) or pairs."""
_EMPTY_RAW: tuple[tuple[bytes, bytes], ...] = ()


class HttpStatusError(Exception):
    """Raised by :meth:`Response.raise_for_status`."""

    def __init__(self, message: str, response: Response) -> None:
        super().__init__(message)
        self.response = response


class Response:
    """One HTTP response (or the absence of one, with ``error`` set).

    Attributes: ``status_code`` (0 without a response), ``content`` (the body
    kept in memory, decompressed), ``truncated`` (the body exceeded
    ``max_body_bytes``; the rest was read and discarded), ``wire_bytes`` (body
    bytes received on the wire, discarded ones included), ``elapsed``
    (seconds, this hop), ``error``, ``request_method``.
    """

    __slots__ = (
        "_catchable",
        "_headers",
        "_history",
        "_raw_headers",
        "_url",
        "_verdict",
        "content",
        "elapsed",
        "error",
        "has_set_cookie",
        "request_method",
        "status_code",
        "truncated",
        "wire_bytes",
    )

    def __init__(
        self,
        status_code: int = 0,
        raw_headers: _RawHeaders = _EMPTY_RAW,
        content: bytes = b"",
        truncated: bool = False,
        wire_bytes: int = 0,
        has_set_cookie: bool = False,
    ) -> None:
        self.status_code = status_code
        self._raw_headers = raw_headers
        self._headers: Headers | None = None
        self.content = content
        self.truncated = truncated
        self.wire_bytes = wire_bytes
        self.has_set_cookie = has_set_cookie
        self.error: RequestFailure | None = None
        self.request_method = ""
        self.elapsed = 0.0
        self._url: Url | str = ""
        self._history: list[Response] | None = None
        self._verdict: RequestFailure | bool | None = None
        self._catchable = False

    @classmethod
    def failed(cls, method: str, url: Url | str, failure: RequestFailure) -> Response:
        """A response standing for a request that got no (usable) response."""
        response = cls()
        response.request_method = method
        response._url = url
        response.error = failure
        return response

    # -- status ---------------------------------------------------------------

    @property
    def reason(self) -> str:
        """The standard reason phrase of the status ("" for unknown codes).

        The phrase a server sent is not kept: it carries no meaning (HTTP/2 has
        none) and skipping it saves a parser callback per response.
        """
        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""

    @property
    def ok(self) -> bool:
        """True for a 2xx/3xx response without error."""
        return self.error is None and 200 <= self.status_code < 400

    def raise_for_status(self) -> None:
        """Raise :class:`HttpStatusError` on a transport error or a 4xx/5xx status."""
        if self.error is not None:
            raise HttpStatusError(f"{self.error.kind}: {self.error.message}", self)
        if self.status_code >= 400:
            raise HttpStatusError(f"HTTP {self.status_code} {self.reason}", self)

    # -- headers and body -------------------------------------------------------

    @property
    def headers(self) -> Headers:
        headers = self._headers
        if headers is None:
            headers = self._headers = Headers.from_raw(self._raw_headers)
        return headers

    @property
    def encoding(self) -> str:
        """The charset from ``Content-Type`` when Python knows it, else ``utf-8``."""
        content_type = self.headers.get("content-type")
        if content_type:
            for param in content_type.split(";")[1:]:
                key, _, value = param.partition("=")
                if key.strip().lower() == "charset":
                    charset = value.strip().strip("\"'")
                    try:
                        return codecs.lookup(charset).name
                    except LookupError:
                        break
        return "utf-8"

    @property
    def text(self) -> str:
        """The body decoded with :attr:`encoding`; undecodable bytes are replaced."""
        return self.content.decode(self.encoding, errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` when it is not JSON)."""
        return msgspec.json.decode(self.content)

    @property
    def url(self) -> str:
        """The URL this response came from (after redirects: the final one)."""
        return str(self._url)

    @property
    def history(self) -> list[Response]:
        """The redirect responses that led here, oldest first."""
        history = self._history
        if history is None:
            history = self._history = []
        return history

    # -- catch_response verdicts -------------------------------------------------

    def success(self) -> None:
        """Record this request as a success (``catch_response=True`` only)."""
        self._check_catchable("success")
        self._verdict = True

    def failure(self, message: object) -> None:
        """Record this request as a failure of kind ``failure`` (``catch_response=True`` only).

        ``message`` may be any object (an exception, a status code): its ``str()`` is kept.
        """
        self._check_catchable("failure")
        self._verdict = RequestFailure(ErrorKind.FAILURE, str(message))

    def _check_catchable(self, what: str) -> None:
        if not self._catchable:
            raise RuntimeError(
                f"response.{what}() needs `async with session.get(..., catch_response=True)`"
            )

    def __repr__(self) -> str:
        if self.error is not None:
            return f"<Response [{self.error.kind}]>"
        return f"<Response [{self.status_code}]>"
