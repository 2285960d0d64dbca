"""Request encoding: bodies and the request head, as bytes ready to write. Pure.

The head is one f-string encoded once: request line, the origin's
preformatted default lines (``Host``, ``User-Agent``, ``Accept``,
``Accept-Encoding``; built once per origin and session), then user headers,
``Content-Type``, ``Content-Length`` and ``Cookie``. A plain GET without
user headers costs one format and one encode.

Rules:

- ``data`` bytes/str are sent as they are (str as UTF-8), no Content-Type;
  ``data`` mapping is sent form-urlencoded; ``json`` is compact JSON
  (``application/json``); ``data`` wins when both are given.
- ``Content-Length`` is always computed here (a user-supplied
  ``Content-Length`` or ``Transfer-Encoding`` is dropped, so head and body
  can never disagree); POST, PUT and PATCH without body send ``Content-Length: 0``.
- User headers replace the defaults of the same name (case-insensitive);
  header names must be RFC 9110 tokens and values may not hold CR, LF or
  other control characters (no header injection); anything else fails the
  request with kind ``other``.
- A user ``Cookie`` header and the jar's cookies are merged into one field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, NamedTuple
from urllib.parse import urlencode

import msgspec

__all__ = [
    "InvalidRequest",
    "UserHeaders",
    "check_method",
    "default_header_block",
    "encode_body",
    "encode_head",
    "prepare_headers",
]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_METHOD = re.compile(r"[A-Z][A-Z0-9_-]*\Z")
_DROPPED: Final = frozenset({"content-length", "transfer-encoding"})
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE: Final = "application/json"


class InvalidRequest(ValueError):
    """The request cannot be encoded (bad header, unencodable body, bad method)."""


class UserHeaders(NamedTuple):
    """Validated user headers and the lower-case names they define."""

    pairs: tuple[tuple[str, str], ...]
    names: frozenset[str]


def check_method(method: str) -> str:
    """The method upper-cased; raises :class:`InvalidRequest` unless it is a token."""
    upper = method.upper()
    if _METHOD.match(upper) is None:
        raise InvalidRequest("invalid HTTP method")
    return upper


def default_header_block(authority: str, user_agent: str) -> str:
    """The default header lines of every request to one origin."""
    return (
        f"Host: {authority}\r\nUser-Agent: {user_agent}\r\n"
        "Accept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
    )


def prepare_headers(headers: Mapping[object, object]) -> UserHeaders:
    """Validate user headers once per request (not per redirect hop).

    Names and values may be any objects (``str()`` of each is sent): scripts pass
    ints and the like, and a compiled build must accept them as the sources do.
    """
    pairs: list[tuple[str, str]] = []
    for raw_name, raw_value in headers.items():
        name = str(raw_name)
        value = str(raw_value)
        if _TOKEN.match(name) is None:
            raise InvalidRequest("invalid header name")
        if _BAD_VALUE.search(value) is not None:
            raise InvalidRequest(f"invalid characters in the value of header {name!r}")
        if not value.isascii():
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                raise InvalidRequest(f"header {name!r} is not latin-1") from None
        if name.lower() in _DROPPED:
            continue
        pairs.append((name, value.strip()))
    return UserHeaders(tuple(pairs), frozenset(n.lower() for n, _ in pairs))


def encode_body(data: Any, json: Any) -> tuple[bytes | None, str | None]:
    """``(body, content_type)`` for the ``data=`` / ``json=`` arguments."""
    if data is not None:
        if isinstance(data, bytes):
            return data, None
        if isinstance(data, (bytearray, memoryview)):
            return bytes(data), None
        if isinstance(data, str):
            return data.encode("utf-8"), None
        if isinstance(data, Mapping):
            return urlencode(list(data.items())).encode("ascii"), FORM_CONTENT_TYPE
        raise InvalidRequest("data must be bytes, str or a mapping")
    if json is not None:
        try:
            return msgspec.json.encode(json), JSON_CONTENT_TYPE
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidRequest(f"cannot encode json: {exc}") from None
    return None, None


def encode_head(
    method: str,
    target: str,
    default_block: str,
    headers: UserHeaders | None,
    body: bytes | None,
    content_type: str | None,
    cookie: str | None,
    authorization: str | None,
) -> bytes:
    """The request head (request line, fields, blank line) as bytes."""
    if headers is None and body is None and cookie is None and authorization is None:
        if method in _BODY_METHODS:
            return f"{method} {target} HTTP/1.1\r\n{default_block}Content-Length: 0\r\n\r\n".encode(
                "latin-1"
            )
        return f"{method} {target} HTTP/1.1\r\n{default_block}\r\n".encode("latin-1")
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    names = headers.names if headers is not None else frozenset()
    if names.isdisjoint(("host", "user-agent", "accept", "accept-encoding")):
        lines.append(default_block)
    else:
        for line in default_block.split("\r\n"):
            if line and line.partition(":")[0].lower() not in names:
                lines.append(f"{line}\r\n")
    if headers is not None:
        for name, value in headers.pairs:
            if cookie is not None and name.lower() == "cookie":
                value = f"{value}; {cookie}" if value else cookie
                cookie = None
            lines.append(f"{name}: {value}\r\n")
    if authorization is not None and "authorization" not in names:
        lines.append(f"Authorization: {authorization}\r\n")
    if content_type is not None and "content-type" not in names:
        lines.append(f"Content-Type: {content_type}\r\n")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}\r\n")
    elif method in _BODY_METHODS:
        lines.append("Content-Length: 0\r\n")
    if cookie is not None:
        lines.append(f"Cookie: {cookie}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")
