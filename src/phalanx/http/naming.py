"""Default stats names for requests. Pure: no I/O.

A request's stats entry is keyed by its name, so the default must be stable
per endpoint and must never carry secrets:

- the query string is dropped (``/search?q=secret&token=x`` -> ``/search``),
  so per-request values do not explode the number of entries and tokens in
  URLs never reach stats, logs or exports;
- a request to the session's own origin is named by its path alone;
- a request to another origin is named ``scheme://host[:port]/path`` (the
  port only when not the scheme's default);
- user info (``user:pass@``) and fragments never appear.
"""

from __future__ import annotations

from phalanx.http.url import Origin, Url

__all__ = ["MAX_NAME_LENGTH", "default_request_name", "fallback_request_name"]

MAX_NAME_LENGTH = 512


def default_request_name(url: Url, base_origin: Origin | None) -> str:
    """The name of a request to ``url`` made by a session based at ``base_origin``."""
    path = url.target.partition("?")[0]
    origin = url.origin
    if base_origin is not None and (origin is base_origin or origin == base_origin):
        return path
    return f"{origin}{path}"


def fallback_request_name(raw_url: str) -> str:
    """A best-effort safe name for a URL that could not be parsed.

    Drops the query string, the fragment and any user info, replaces control
    characters and bounds the length.
    """
    text = raw_url.strip().partition("?")[0].partition("#")[0]
    scheme, sep, rest = text.partition("://")
    if sep:
        authority, slash, path = rest.partition("/")
        authority = authority.rpartition("@")[2]
        text = f"{scheme}://{authority}{slash}{path}"
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text[:MAX_NAME_LENGTH] or "(invalid url)"
