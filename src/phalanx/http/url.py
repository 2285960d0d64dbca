"""URLs as the client needs them: an :class:`Origin` to pool connections by and
a request target to put on the request line. Pure: no I/O.

Invariants of every :class:`Url` this module returns:

- ``origin.scheme`` is ``http`` or ``https``; ``origin.host`` is lower-case
  ASCII (IDNA-encoded), an IPv6 literal is kept without brackets; ``port`` is
  explicit (80/443 filled in).
- ``target`` starts with ``/``, has no fragment, and holds only visible ASCII
  (anything else is percent-encoded), so it can go on the request line as is:
  no request-line or header injection through a URL.
- ``authorization`` is the ``Basic`` header value built from user info in the
  URL (``http://user:pass@host/``); user info never appears anywhere else.

Hot path: a path such as ``/items/3`` relative to the session's base URL is
resolved without ``urllib.parse`` (string checks only).
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple
from urllib.parse import quote, unquote, urlencode, urljoin, urlsplit

__all__ = [
    "BaseUrl",
    "InvalidUrl",
    "Origin",
    "Url",
    "append_params",
    "parse_absolute_url",
    "parse_base_url",
    "resolve_location",
    "resolve_url",
]

ParamValue = str | int | float
Params = Mapping[str, ParamValue] | Sequence[tuple[str, ParamValue]]

# Anything outside visible ASCII must be percent-encoded on the request line.
_UNSAFE_TARGET = re.compile(r"[^\x21-\x7e]")
# Every visible ASCII character is left as is by the re-quoting (``%`` included,
# so existing escapes survive); only the unsafe characters get encoded.
_SAFE_TARGET = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_HOST = re.compile(r"[a-z0-9._-]+\Z")
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


class InvalidUrl(ValueError):
    """A URL that cannot be requested. The message never repeats the URL
    (it may carry credentials or tokens)."""


class Origin(NamedTuple):
    """Where connections go: the pool key. ``str(origin)`` is ``scheme://authority``."""

    scheme: str
    host: str
    port: int

    @property
    def is_tls(self) -> bool:
        return self.scheme == "https"

    @property
    def authority(self) -> str:
        """The ``Host`` header value: brackets around IPv6, port only when not default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _default_port(self.scheme):
            return host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}"


class Url(NamedTuple):
    """An origin plus the request target (``/path?query``)."""

    origin: Origin
    target: str
    authorization: str | None = None

    @property
    def path(self) -> str:
        """The target without its query string."""
        return self.target.partition("?")[0]

    def __str__(self) -> str:
        return f"{self.origin}{self.target}"


_new_url = tuple.__new__  # the NamedTuple constructor without its keyword handling


class BaseUrl(NamedTuple):
    """A session's base URL and the path prefix that relative paths extend."""

    url: Url
    prefix: str  # base path without its trailing slash ("" for "http://h/")


def parse_base_url(base_url: str) -> BaseUrl:
    """Parse a session base URL such as ``http://host:8080`` or ``https://h/api/``."""
    url = parse_absolute_url(base_url)
    return BaseUrl(url, url.path.rstrip("/"))


def resolve_url(url: str, base: BaseUrl | None) -> Url:
    """Resolve a request URL: absolute, or relative to ``base``.

    A path starting with ``/`` is appended to the base path (``/api`` +
    ``/items`` = ``/api/items``), as Locust does; other relative forms follow
    RFC 3986 resolution against the base URL.
    """
    if url.startswith("/") and not url.startswith("//"):
        if base is None:
            raise InvalidUrl("a relative URL needs a base URL (host)")
        target = base.prefix + url
        # ASCII + printable + no space == only 0x21-0x7E (str methods beat a regex here)
        if not (target.isascii() and target.isprintable()) or " " in target or "#" in target:
            target = clean_target(target)
        return _new_url(Url, (base.url.origin, target, base.url.authorization))
    if _ABSOLUTE.match(url) is not None:
        return parse_absolute_url(url)
    if url[:2] == "//":
        if base is None:
            raise InvalidUrl("a scheme-relative URL needs a base URL (host)")
        return parse_absolute_url(f"{base.url.origin.scheme}:{url}")
    if base is None:
        raise InvalidUrl("a relative URL needs a base URL (host)")
    return parse_absolute_url(urljoin(str(base.url), url))


def resolve_location(location: str, current: Url) -> Url:
    """The next URL of a redirect: ``Location`` resolved against the current URL."""
    location = location.strip()
    if not location:
        raise InvalidUrl("empty redirect location")
    return parse_absolute_url(urljoin(str(current), location))


def parse_absolute_url(url: str) -> Url:
    """Parse ``http(s)://[user[:pass]@]host[:port][/path][?query][#fragment]``."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
        username = parts.username
        password = parts.password
    except ValueError:
        raise InvalidUrl("malformed URL (bad host or port)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidUrl(f"unsupported URL scheme {scheme!r} (use http or https)")
    host = _normalize_host(parts.hostname or "")
    if port is None:
        port = _default_port(scheme)
    elif not 0 < port < 65536:
        raise InvalidUrl("URL port out of range")
    target = parts.path or "/"
    if target[0] != "/":
        target = "/" + target
    if parts.query:
        target = f"{target}?{parts.query}"
    authorization = None
    if username is not None or password is not None:
        raw = f"{unquote(username or '')}:{unquote(password or '')}".encode()
        authorization = "Basic " + base64.b64encode(raw).decode("ascii")
    return Url(Origin(scheme, host, port), clean_target(target), authorization)


def append_params(target: str, params: Params) -> str:
    """Append url-encoded ``params`` to the target's query string."""
    items = list(params.items()) if isinstance(params, Mapping) else list(params)
    if not items:
        return target
    encoded = urlencode(items)
    if "?" not in target:
        return f"{target}?{encoded}"
    if target.endswith(("?", "&")):
        return target + encoded
    return f"{target}&{encoded}"


def clean_target(target: str) -> str:
    """Drop the fragment and percent-encode what may not appear on a request line."""
    target = target.partition("#")[0]
    if _UNSAFE_TARGET.search(target) is not None:
        target = quote(target, safe=_SAFE_TARGET)
    return target


def _normalize_host(host: str) -> str:
    if not host:
        raise InvalidUrl("URL has no host")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            raise InvalidUrl("invalid IPv6 address in URL") from None
    host = host.lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidUrl("invalid international host name in URL") from None
    if _HOST.match(host) is None:
        raise InvalidUrl("invalid characters in URL host")
    return host


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
