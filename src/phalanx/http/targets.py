"""What a session remembers about the URL strings it requests: :class:`Target`
and the bounded per-session memo :class:`TargetCache`. Pure: no I/O.

A script requests the same few URL strings again and again. Resolving one
(:func:`~phalanx.http.url.resolve_url`), naming it
(:func:`~phalanx.http.naming.default_request_name`) and encoding the head of a
plain request (:func:`~phalanx.http.encoding.encode_head`) are pure functions
of the string and of the session (base URL, default header lines), so a
session computes them once per string and reuses them.

Invariants:

- A :class:`Target` holds the URL as resolved *before* ``params`` are applied
  and its default stats name; the name never carries a query string (see
  :mod:`phalanx.http.naming`), whatever ``params`` a request adds later.
- ``head`` is the encoded request head for ``head_method`` of a request
  *without* user headers, body, params or cookies; the session uses it only
  in exactly that case and re-encodes otherwise.
- Bounded: at most ``limit`` strings per session. Once full, further strings
  are resolved every time but not kept (no eviction churn for scripts that
  build unique URLs).
- Secrets: only strings without a query (``?``) and without user info
  (``@``) are kept, so a token in a query string or credentials in a URL are
  never retained beyond their request.
"""

from __future__ import annotations

from typing import Final

from phalanx.http.naming import default_request_name
from phalanx.http.url import BaseUrl, Url, resolve_url

__all__ = ["DEFAULT_TARGET_LIMIT", "Target", "TargetCache"]

DEFAULT_TARGET_LIMIT: Final = 32
"""URL strings remembered per session."""


class Target:
    """One resolved URL string: URL, default name and (once encoded) a plain head."""

    __slots__ = ("head", "head_method", "name", "url")

    def __init__(self, url: Url, name: str) -> None:
        self.url = url
        self.name = name
        self.head_method = ""  # the method ``head`` was encoded for ("" = none yet)
        self.head = b""


class TargetCache(dict[str, Target]):
    """Resolved targets of one session, keyed by the URL string as given.

    ``cache[raw_url]`` is the target (a plain dict lookup when known); a
    string not seen yet is resolved, kept when the bounds allow, and
    returned. Raises :class:`~phalanx.http.url.InvalidUrl` for a URL that
    cannot be requested (nothing is kept then).
    """

    __slots__ = ("_base", "_limit")

    def __init__(self, base: BaseUrl | None, limit: int = DEFAULT_TARGET_LIMIT) -> None:
        super().__init__()
        self._base = base
        self._limit = limit

    def __missing__(self, raw_url: str) -> Target:
        base = self._base
        url = resolve_url(raw_url, base)
        target = Target(url, default_request_name(url, base.url.origin if base else None))
        if len(self) < self._limit and "?" not in raw_url and "@" not in raw_url:
            self[raw_url] = target
        return target
