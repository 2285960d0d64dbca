"""What the next request of a redirect looks like (RFC 9110 15.4). Pure.

- 303: GET (HEAD stays HEAD), body dropped.
- 301 and 302 after POST: GET, body dropped (what every browser does).
- 307 and 308: same method, same body.
- When the body is dropped, ``Content-Type`` goes with it.
- Cross-origin hop (scheme, host or port changes): ``Authorization``,
  ``Proxy-Authorization`` and a user-supplied ``Cookie`` header are dropped;
  the jar still sends the cookies that belong to the new origin.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from phalanx.http.encoding import UserHeaders

__all__ = ["REDIRECT_STATUSES", "NextHop", "next_hop"]

REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
_CREDENTIALS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})


class NextHop(NamedTuple):
    method: str
    body: bytes | None
    content_type: str | None
    headers: UserHeaders | None


def next_hop(
    status: int,
    method: str,
    body: bytes | None,
    content_type: str | None,
    headers: UserHeaders | None,
    *,
    same_origin: bool,
) -> NextHop:
    """The method, body and headers of the request that follows a ``status`` redirect."""
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, keep_body = "GET", False
    else:
        keep_body = status != 303
    if not keep_body:
        body = None
        content_type = None
    if headers is not None:
        dropped: set[str] = set()
        if not keep_body:
            dropped.add("content-type")
        if not same_origin:
            dropped |= _CREDENTIALS
        if not dropped.isdisjoint(headers.names):
            pairs = tuple((n, v) for n, v in headers.pairs if n.lower() not in dropped)
            headers = UserHeaders(pairs, frozenset(n.lower() for n, _ in pairs))
    return NextHop(method, body, content_type, headers)
