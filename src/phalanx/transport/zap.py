"""ZAP (ZeroMQ Authentication Protocol, RFC 27) handler of the master.

libzmq asks the handler bound at ``inproc://zeromq.zap.01`` in the socket's
context about every incoming connection, once per handshake. The answer is
a status (200 accepted, 400 refused, 500 internal error) and a *User-Id*
that libzmq attaches to every message received on that connection: that is
how the master learns, for each message, which authenticated key sent it.

- CURVE (the default): accept exactly the keys on the allow-list (re-read
  on each attempt, so a revoked key is refused at its next connect); the
  User-Id is the client's public key in Z85. Refusals are logged with the
  key's fingerprint and the peer address, at most once a minute per key (a
  refused worker retries every few hundred milliseconds).
- Plaintext development mode: the NULL mechanism is accepted and each
  connection gets a fresh User-Id ``plaintext-<n>`` (there is no key).

Anything else (wrong domain, another mechanism, a malformed request) is
refused. Deciding is synchronous and separate from the socket loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import zmq
import zmq.asyncio
from zmq.utils import z85

from phalanx.transport.allowlist import AllowList
from phalanx.transport.keyfiles import fingerprint

ZAP_ENDPOINT: Final = "inproc://zeromq.zap.01"
ZAP_VERSION: Final = b"1.0"
DOMAIN: Final = "phalanx"
PLAINTEXT_PREFIX: Final = "plaintext-"
REFUSAL_LOG_INTERVAL: Final = 60.0
_MAX_REMEMBERED_REFUSALS: Final = 1024

log = logging.getLogger("phalanx.transport")


@dataclass(frozen=True, slots=True)
class ZapRequest:
    """The parts of a ZAP request that matter here."""

    request_id: bytes
    domain: bytes
    address: str
    mechanism: bytes
    credentials: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ZapVerdict:
    """A ZAP answer: status code, status text and the User-Id to attach."""

    status: bytes
    text: bytes
    user_id: bytes = b""

    @property
    def accepted(self) -> bool:
        return self.status == b"200"


REFUSED: Final = ZapVerdict(b"400", b"not authorized")


def parse_request(frames: list[bytes]) -> ZapRequest | None:
    """A :class:`ZapRequest`, or None if ``frames`` is not a version 1.0 request."""
    if len(frames) < 6 or frames[0] != ZAP_VERSION:
        return None
    address = frames[3].decode("ascii", "replace")[:100]
    return ZapRequest(frames[1], frames[2], address, frames[5], tuple(frames[6:]))


def reply_frames(request_id: bytes, verdict: ZapVerdict) -> list[bytes]:
    """The reply message for ``verdict`` (no metadata)."""
    return [ZAP_VERSION, request_id, verdict.status, verdict.text, verdict.user_id, b""]


class Authorizer(Protocol):
    """Decides one ZAP request at time ``now`` (monotonic seconds); counts refusals."""

    refused: int

    def decide(self, request: ZapRequest, now: float) -> ZapVerdict: ...


class CurveAuthorizer:
    """Accepts CURVE clients whose key is on the allow-list; User-Id is the Z85 key."""

    def __init__(self, allow_list: AllowList,
                 on_refused: Callable[[str, str], None] | None = None) -> None:
        self.allow_list = allow_list
        self.refused = 0
        self._logged: dict[str, float] = {}
        self._on_refused = on_refused  # (fingerprint, address), as often as the log line

    def decide(self, request: ZapRequest, now: float) -> ZapVerdict:
        if (request.domain != DOMAIN.encode() or request.mechanism != b"CURVE"
                or len(request.credentials) != 1 or len(request.credentials[0]) != 32):
            self.refused += 1
            log.warning("refused a connection from %s: not a phalanx CURVE client",
                        request.address)
            return REFUSED
        key = z85.encode(request.credentials[0])
        if self.allow_list.lookup(key, now=now, fresh=True) is not None:
            return ZapVerdict(b"200", b"OK", key)
        self.refused += 1
        self._log_refusal(fingerprint(key), request.address, now)
        return REFUSED

    def _log_refusal(self, print_: str, address: str, now: float) -> None:
        last = self._logged.get(print_)
        if last is not None and now - last < REFUSAL_LOG_INTERVAL:
            return
        if len(self._logged) >= _MAX_REMEMBERED_REFUSALS:
            self._logged.clear()
        self._logged[print_] = now
        log.warning("refused worker key %s from %s: not on the allow-list %s",
                    print_, address, self.allow_list.path)
        if self._on_refused is not None:
            self._on_refused(print_, address)


class PlaintextAuthorizer:
    """Development mode: accepts NULL-mechanism clients, one fresh User-Id per connection."""

    def __init__(self) -> None:
        self._next = 0
        self.refused = 0

    def decide(self, request: ZapRequest, now: float) -> ZapVerdict:
        if request.domain != DOMAIN.encode() or request.mechanism != b"NULL":
            self.refused += 1
            return REFUSED
        self._next += 1
        return ZapVerdict(b"200", b"OK", f"{PLAINTEXT_PREFIX}{self._next}".encode())


class ZapServer:
    """The ZAP socket of one context; :meth:`serve` answers until cancelled.

    :meth:`bind` must run before the master socket binds: with no handler
    bound, libzmq would let every client in.
    """

    def __init__(self, context: zmq.asyncio.Context, authorizer: Authorizer,
                 clock: Callable[[], float]) -> None:
        self._context = context
        self._authorizer = authorizer
        self._clock = clock
        self._socket: zmq.asyncio.Socket | None = None

    def bind(self) -> None:
        socket = self._context.socket(zmq.REP)
        socket.linger = 0
        socket.bind(ZAP_ENDPOINT)
        self._socket = socket

    async def serve(self) -> None:
        socket = self._socket
        if socket is None:
            raise RuntimeError("ZapServer.serve before bind")
        while True:
            frames = await socket.recv_multipart()
            await socket.send_multipart(self.answer(frames))
            await asyncio.sleep(0)  # yield between handshakes: a flood cannot starve the loop

    def answer(self, frames: list[bytes]) -> list[bytes]:
        """The reply to one request (always one: REP must answer every request)."""
        request = parse_request(frames)
        if request is None:
            log.error("malformed ZAP request (%d frames); refused", len(frames))
            return reply_frames(frames[1] if len(frames) > 1 else b"", REFUSED)
        try:
            verdict = self._authorizer.decide(request, self._clock())
        except Exception:  # a bug must refuse the client, not stop authentication
            log.exception("ZAP authorizer failed; connection refused")
            verdict = ZapVerdict(b"500", b"internal error")
        return reply_frames(request.request_id, verdict)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
