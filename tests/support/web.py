"""Shared pieces of the web app tests: a reply as seen by the client, the session cookie."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from phalanx.web.app import SESSION_COOKIE


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    cookies: list[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(port: int, method: str, path: str, *, body: bytes | None = None,
          headers: Mapping[str, str] | None = None,
          ssl_context: ssl.SSLContext | None = None) -> Reply:
    """One blocking request to 127.0.0.1:``port`` (``Host`` set to it), on a new connection."""
    if ssl_context is not None:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=10, context=ssl_context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        sent = {"Host": f"127.0.0.1:{port}", **(headers or {})}
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                     response.headers.get_all("set-cookie") or [], data)
    finally:
        conn.close()


def session_cookie(reply: Reply) -> str:
    """The session id a reply sets (the test fails when it sets none)."""
    for header in reply.cookies:
        name, _, rest = header.partition("=")
        if name == SESSION_COOKIE:
            return rest.split(";", 1)[0]
    raise AssertionError(f"no session cookie in {reply.cookies}")


class DeferredApp:
    """An ASGI app that forwards to the app built once the server's port is known."""

    def __init__(self) -> None:
        self.target: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.target(scope, receive, send)
