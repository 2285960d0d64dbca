"""Endpoint checks: where the plaintext development mode may be used.

Plaintext (no CURVE) is allowed only where nobody else can listen: an
``ipc://`` path, or a ``tcp://`` endpoint whose host is an IPv4 loopback
literal (``127.0.0.0/8``; the sockets do not enable IPv6). Host names (even
``localhost``), interface names, wildcards and ZeroMQ's
``source;destination`` form are refused: what the check approves must be
exactly what the socket uses. Linux abstract ``ipc://@name`` sockets are
refused (they have no file permissions: anyone on the host may connect).
:func:`check_plaintext_endpoint` is pure; :func:`check_private_ipc_directory`
(used by the master when it binds in plaintext) looks at the file system: the
socket's directory must be private (no group/other access), as
``tempfile.mkdtemp()`` makes it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from pathlib import Path
from typing import Final

from phalanx.transport.errors import TransportError

_TCP: Final = re.compile(r"tcp://(?P<host>[0-9.]+):(?P<port>[0-9]{1,5}|\*)")


def check_plaintext_endpoint(endpoint: str) -> None:
    """Raise :class:`TransportError` unless plaintext may be used on ``endpoint``."""
    if endpoint.startswith("ipc://") and len(endpoint) > len("ipc://") \
            and not endpoint.startswith("ipc://@"):
        return
    match = _TCP.fullmatch(endpoint)
    if match is not None:
        host = match["host"]
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


def check_private_ipc_directory(endpoint: str) -> None:
    """Raise :class:`TransportError` if an ``ipc://`` socket's directory is not private.

    Endpoints that are not ``ipc://`` are left alone.
    """
    if not endpoint.startswith("ipc://"):
        return
    directory = Path(endpoint.removeprefix("ipc://")).parent
    try:
        info = os.stat(directory)
    except OSError as exc:
        raise TransportError(f"cannot use {endpoint!r}: {exc.strerror or exc}") from None
    if info.st_mode & 0o077 or info.st_uid != os.getuid():
        raise TransportError(
            f"plaintext mode refused on {endpoint!r}: its directory {directory} must be private "
            f"to this user (mode {stat.S_IMODE(info.st_mode):04o}; use 0700)"
        )
