"""Shared pieces of the web app tests: a reply as seen by the client, the session cookie."""

from __future__ import annotations

import json
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
