"""A small per-session cookie jar (RFC 6265 subset). Pure: no I/O, time injected.

What it does:

- ``store(set_cookie_values, request_url, now)`` parses ``Set-Cookie`` values
  received for ``request_url``: ``Domain`` (host-only when absent; rejected
  unless the request host domain-matches it; a single-label domain other than
  the host itself, such as ``com``, is rejected), ``Path`` (default path per
  RFC 6265 5.1.4), ``Max-Age`` (wins over ``Expires``), ``Expires`` (RFC 6265
  date parsing), ``Secure``; ``HttpOnly`` and ``SameSite`` are accepted and
  ignored (there is no script here). A cookie whose expiry has passed removes
  the stored one with the same (domain, path, name).
- ``cookie_header(url, now)`` returns the ``Cookie`` header value for a
  request: domain/host match, path match, ``Secure`` only over https, expired
  cookies skipped; longer paths first, then older cookies first.

``now`` is wall-clock epoch seconds (``Expires`` is an absolute date).
Bounds: names/values with control characters are refused, a cookie longer
than 8 KiB is ignored and a jar keeps at most 1,000 cookies (the oldest is
dropped), so a hostile target cannot grow a simulated user without bound.
"""

from __future__ import annotations

import calendar
import functools
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from phalanx.http.url import Url

__all__ = ["Cookie", "CookieJar", "parse_cookie_date"]

MAX_COOKIES: Final = 1000
MAX_COOKIE_BYTES: Final = 8192

_DATE_DELIMITERS = re.compile(r"[\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")
_TIME = re.compile(r"(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\D|\Z)")
_DAY = re.compile(r"(\d{1,2})(?:\D|\Z)")
_YEAR = re.compile(r"(\d{2,4})(?:\D|\Z)")
_MONTHS: Final = "janfebmaraprmayjunjulaugsepoctnovdec"  # month n at 3 * (n - 1)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(slots=True)
class Cookie:
    """One stored cookie. ``expires`` is epoch seconds, None for a session cookie."""

    name: str
    value: str
    domain: str
    path: str
    host_only: bool
    secure: bool
    expires: float | None
    created: int


class CookieJar:
    """The cookies of one simulated user (one :class:`HttpSession`)."""

    __slots__ = ("_cookies", "_counter")

    def __init__(self) -> None:
        self._cookies: dict[tuple[str, str, str], Cookie] = {}
        self._counter = 0

    def __len__(self) -> int:
        return len(self._cookies)

    def __iter__(self) -> Iterator[Cookie]:
        return iter(list(self._cookies.values()))

    def __contains__(self, name: object) -> bool:
        return any(cookie.name == name for cookie in self._cookies.values())

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first stored cookie called ``name`` (any domain/path)."""
        for cookie in self._cookies.values():
            if cookie.name == name:
                return cookie.value
        return default

    def set(
        self,
        name: str,
        value: str,
        *,
        domain: str,
        path: str = "/",
        secure: object = False,
        expires: float | None = None,
    ) -> None:
        """Store a cookie directly (host-only for ``domain``); ``secure`` is any truth value."""
        if _CONTROL.search(name) or _CONTROL.search(value) or not name or ";" in name + value:
            raise ValueError("cookie name/value must be non-empty, without ';' or control chars")
        self._put(Cookie(name, value, domain.lower(), path, True, bool(secure), expires, 0))

    def clear(self) -> None:
        self._cookies.clear()

    # -- receiving -----------------------------------------------------------------

    def store(self, set_cookie_values: Iterable[str], request_url: Url, now: float) -> None:
        """Apply the ``Set-Cookie`` header values received from ``request_url``."""
        for header in set_cookie_values:
            cookie = _parse_set_cookie(header, request_url, now)
            if cookie is None:
                continue
            key = (cookie.domain, cookie.path, cookie.name)
            if cookie.expires is not None and cookie.expires <= now:
                self._cookies.pop(key, None)
                continue
            self._put(cookie)

    def _put(self, cookie: Cookie) -> None:
        key = (cookie.domain, cookie.path, cookie.name)
        old = self._cookies.pop(key, None)
        if old is not None:
            cookie.created = old.created
        else:
            self._counter += 1
            cookie.created = self._counter
            if len(self._cookies) >= MAX_COOKIES:
                oldest = min(self._cookies, key=lambda k: self._cookies[k].created)
                del self._cookies[oldest]
        self._cookies[key] = cookie

    # -- sending -------------------------------------------------------------------

    def cookie_header(self, url: Url, now: float) -> str | None:
        """The ``Cookie`` header value for a request to ``url``, or None."""
        if not self._cookies:
            return None
        host = url.origin.host
        path = url.path
        secure = url.origin.scheme == "https"
        expired: list[tuple[str, str, str]] = []
        matches: list[Cookie] = []
        for key, cookie in self._cookies.items():
            if cookie.expires is not None and cookie.expires <= now:
                expired.append(key)
                continue
            if cookie.secure and not secure:
                continue
            if cookie.host_only:
                if host != cookie.domain:
                    continue
            elif not domain_match(host, cookie.domain):
                continue
            if path_match(path, cookie.path):
                matches.append(cookie)
        for key in expired:
            del self._cookies[key]
        if not matches:
            return None
        matches.sort(key=lambda c: (-len(c.path), c.created))
        return "; ".join(f"{c.name}={c.value}" for c in matches)


def domain_match(host: str, domain: str) -> bool:
    """RFC 6265 5.1.3: ``host`` equals ``domain`` or is a subdomain of it (not for IPs)."""
    if host == domain:
        return True
    return host.endswith("." + domain) and not _is_ip(host)


def path_match(request_path: str, cookie_path: str) -> bool:
    """RFC 6265 5.1.4 path-match."""
    if request_path == cookie_path:
        return True
    if not request_path.startswith(cookie_path):
        return False
    return cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"


def default_path(request_path: str) -> str:
    """RFC 6265 5.1.4 default-path: the request path up to its last ``/``."""
    if not request_path.startswith("/"):
        return "/"
    cut = request_path.rfind("/")
    return "/" if cut == 0 else request_path[:cut]


def parse_cookie_date(text: str) -> float | None:
    """RFC 6265 5.1.1 cookie date to epoch seconds; None when not a valid date."""
    time_found = day = month = year = None
    for token in _DATE_DELIMITERS.split(text):
        if not token:
            continue
        if time_found is None and (m := _TIME.match(token)) is not None:
            time_found = (int(m[1]), int(m[2]), int(m[3]))
        elif day is None and (m := _DAY.match(token)) is not None:
            day = int(m[1])
        elif month is None and len(token) >= 3 and (at := _MONTHS.find(token[:3].lower())) % 3 == 0:
            month = at // 3 + 1
        elif year is None and (m := _YEAR.match(token)) is not None:
            year = int(m[1])
    if time_found is None or day is None or month is None or year is None:
        return None
    if 70 <= year <= 99:
        year += 1900
    elif 0 <= year <= 69:
        year += 2000
    hour, minute, second = time_found
    if year < 1601 or not 1 <= day <= 31 or hour > 23 or minute > 59 or second > 59:
        return None
    if day > calendar.monthrange(year, month)[1]:
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def _parse_set_cookie(header: str, url: Url, now: float) -> Cookie | None:
    if len(header) > MAX_COOKIE_BYTES:
        return None
    pair, *attributes = header.split(";")
    name, eq, value = pair.partition("=")
    name, value = name.strip(), value.strip()
    if not eq or not name or _CONTROL.search(name) or _CONTROL.search(value):
        return None
    host = url.origin.host
    domain: str | None = None
    path: str | None = None
    secure = False
    max_age: float | None = None
    expires: float | None = None
    for attribute in attributes:
        key, _, raw = attribute.partition("=")
        key = key.strip().lower()
        raw = raw.strip()
        if key == "domain":
            candidate = raw.lstrip(".").lower()
            if candidate:
                domain = candidate
        elif key == "path":
            path = raw if raw.startswith("/") else None
        elif key == "max-age":
            if re.fullmatch(r"-?\d+", raw):
                seconds = int(raw)
                max_age = now + seconds if seconds > 0 else float("-inf")
        elif key == "expires":
            parsed = parse_cookie_date(raw)
            if parsed is not None:
                expires = parsed
        elif key == "secure":
            secure = True
    if domain is None or domain == host:
        host_only = domain is None
        domain = host
    else:
        if not domain_match(host, domain) or "." not in domain:
            return None
        host_only = False
    return Cookie(
        name,
        value,
        domain,
        path or default_path(url.path),
        host_only,
        secure,
        max_age if max_age is not None else expires,
        0,
    )


@functools.lru_cache(maxsize=256)  # asked per cookie per request for subdomain matches
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
