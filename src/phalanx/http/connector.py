"""Opening connections: resolve, admit, connect, TLS handshake.

The client resolves host names itself (``loop.getaddrinfo``) and connects a
socket to the exact address it resolved; TLS then runs over that socket with
``server_hostname`` set to the URL's host (SNI and certificate checks use the
name, never the address). Nothing resolves the name a second time, so what
:func:`admit_addresses` approved is what gets connected to.

:func:`admit_addresses` is THE seam for the target scope guard: every new
connection, including each redirect hop to a new origin, passes through it
after resolution and before any packet is sent to the target.

Timeouts: resolution + connect + handshake share one budget, the smaller of
``connect_timeout`` (kind ``connect_timeout``) and what is left of the
request's deadline (kind ``timeout``). Addresses are tried in order.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl

from phalanx.core.results import ErrorKind, RequestFailure
from phalanx.http.connection import HttpConnection
from phalanx.http.failures import TransportError, connect_failure
from phalanx.http.url import Origin
from phalanx.security.scope import Decision, ScopeGuard

__all__ = ["ResolvedAddress", "admit_addresses", "admit_host", "open_connection", "resolve"]

ResolvedAddress = tuple[int, tuple[str, int] | tuple[str, int, int, int]]  # (family, sockaddr)


async def resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[ResolvedAddress]:
    """The TCP addresses of ``host`` in resolver order, duplicates removed.

    IP literals are returned without a resolver call. Raises ``socket.gaierror``.
    """
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if ip.version == 6:
            return [(socket.AF_INET6, (host, port, 0, 0))]
        return [(socket.AF_INET, (host, port))]
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    seen: set[object] = set()
    addresses: list[ResolvedAddress] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6) or sockaddr in seen:
            continue
        seen.add(sockaddr)
        addresses.append((family, sockaddr))  # type: ignore[arg-type]
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "no TCP address")
    return addresses


def _refused(origin: Origin, decision: Decision) -> TransportError:
    rule = f" (rule {decision.rule})" if decision.rule else ""
    return TransportError(RequestFailure(
        ErrorKind.TARGET_NOT_ALLOWED,
        f"{origin.host}:{origin.port} is not an allowed target: {decision.reason}{rule}",
    ))


def admit_host(origin: Origin, scope: ScopeGuard | None) -> None:
    """Refuse, before any DNS query, a host name or literal outside the scope."""
    if scope is not None:
        decision = scope.check_host(origin.host, origin.port)
        if not decision.allowed:
            raise _refused(origin, decision)


def admit_addresses(
    origin: Origin, addresses: list[ResolvedAddress], scope: ScopeGuard | None = None
) -> list[ResolvedAddress]:
    """The resolved addresses this run may connect to (the scope guard's seam).

    Called for every new connection (each redirect hop to a new origin
    included), after DNS resolution and before connecting; the addresses
    returned are exactly the ones tried, so a name that resolves into a
    forbidden range (DNS rebinding included) is refused. Raises
    :class:`~phalanx.http.failures.TransportError` of kind
    ``target_not_allowed`` when none is allowed.
    """
    if scope is None:
        return addresses
    admitted: list[ResolvedAddress] = []
    first_refusal: Decision | None = None
    for address in addresses:
        decision = scope.check_address(origin.host, origin.port, address[1][0])
        if decision.allowed:
            admitted.append(address)
        elif first_refusal is None:
            first_refusal = decision
    if not admitted:
        raise _refused(origin, first_refusal or Decision(False, None, "no address"))
    return admitted


async def open_connection(
    loop: asyncio.AbstractEventLoop,
    origin: Origin,
    ssl_context: ssl.SSLContext | None,
    *,
    connect_timeout: float,
    deadline: float,
    scope: ScopeGuard | None = None,
) -> HttpConnection:
    """Admit, resolve, admit and connect; raise :class:`TransportError` on any failure."""
    admit_host(origin, scope)
    budget = deadline - loop.time()
    kind = ErrorKind.CONNECT_TIMEOUT
    if budget <= connect_timeout:
        kind = ErrorKind.TIMEOUT
    else:
        budget = connect_timeout
    if budget <= 0:
        raise TransportError(
            RequestFailure(ErrorKind.TIMEOUT, "request exceeded its total timeout")
        )
    try:
        async with asyncio.timeout(budget):
            resolved = await resolve(loop, origin.host, origin.port)
            addresses = admit_addresses(origin, resolved, scope)
            return await _connect_first(loop, origin, addresses, ssl_context)
    except TimeoutError:
        message = f"connect took longer than {budget:g} s"
        raise TransportError(RequestFailure(kind, message)) from None
    except TransportError:
        raise
    except Exception as exc:  # every connect failure becomes a recorded kind
        raise TransportError(connect_failure(exc)) from None


async def _connect_first(
    loop: asyncio.AbstractEventLoop,
    origin: Origin,
    addresses: list[ResolvedAddress],
    ssl_context: ssl.SSLContext | None,
) -> HttpConnection:
    last_error: OSError | None = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, sockaddr)
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        except BaseException:
            sock.close()
            raise
        try:
            return await _start_protocol(loop, sock, origin, ssl_context)
        except BaseException:
            sock.close()
            raise
    assert last_error is not None  # noqa: S101 - resolve() never returns an empty list
    raise last_error


async def _start_protocol(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    origin: Origin,
    ssl_context: ssl.SSLContext | None,
) -> HttpConnection:
    """Wrap a connected socket in a transport (TLS handshake included)."""
    connection = HttpConnection(loop)
    await loop.create_connection(
        lambda: connection,
        sock=sock,
        ssl=ssl_context,
        server_hostname=origin.host if ssl_context is not None else None,
    )
    return connection
