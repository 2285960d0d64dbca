"""Endpoint checks: where the plaintext development mode may be used.

Plaintext (no CURVE) is allowed only where nobody else can listen: an
``ipc://`` path, or a ``tcp://`` endpoint whose host is a loopback IP literal
(``127.0.0.0/8`` or ``[::1]``). Host names (even ``localhost``), interface
names, wildcards and ZeroMQ's ``source;destination`` form are refused: what
the check approves must be exactly what the socket uses. This module is pure.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from phalanx.transport.errors import TransportError

_TCP: Final = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[0-9.]+):(?P<port>[0-9]{1,5}|\*)")


def check_plaintext_endpoint(endpoint: str) -> None:
    """Raise :class:`TransportError` unless plaintext may be used on ``endpoint``."""
    if endpoint.startswith("ipc://") and len(endpoint) > len("ipc://"):
        return
    match = _TCP.fullmatch(endpoint)
    if match is not None:
        host = match["host"].strip("[]")
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return
    raise TransportError(
        f"plaintext mode refused on {endpoint!r}: it is allowed only on ipc:// or a loopback "
        "address (tcp://127.0.0.1:PORT); use CURVE keys (phalanx keys init) for any other address"
    )
