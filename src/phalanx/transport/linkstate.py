"""What a worker knows about its connection, from ZeroMQ's socket monitor events (pure).

The worker cannot read the master's logs, so it needs its own words for why
it is not connected: the master refused its key (ZAP status 400), the
master's key is not the pinned one (the handshake fails without detail), or
the two sides use different security modes (a mechanism mismatch, though
libzmq may also report that without detail). :func:`apply_event` folds one monitor event into a
:class:`LinkState`.

Note that libzmq does not retry a connection whose key the master refused:
a refused worker stays refused until its socket is reopened (a driver should
report ``last_failure`` and stop).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import zmq

MONITORED_EVENTS: Final = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_DISCONNECTED
)
REFUSED_BY_MASTER: Final = (
    "the master refused this worker's key (not on its allow-list, or revoked)"
)
HANDSHAKE_FAILED: Final = (
    "handshake failed: the master's key is not the pinned one (master.key.pub), or master "
    "and worker use different security modes (CURVE vs plaintext)"
)
MODE_MISMATCH: Final = "security mode mismatch: one side uses CURVE, the other plaintext"


@dataclass(frozen=True, slots=True)
class LinkState:
    """``connected``: a handshake succeeded and no disconnect followed.

    ``last_failure``: why the last handshake failed (None after a success);
    ``failures``: failed handshakes so far.
    """

    connected: bool = False
    last_failure: str | None = None
    failures: int = 0


def apply_event(state: LinkState, event: int, value: int) -> LinkState:
    """``state`` after one monitor event (unknown events change nothing)."""
    if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
        return replace(state, connected=True, last_failure=None)
    if event == zmq.EVENT_DISCONNECTED:
        return replace(state, connected=False)
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        why = REFUSED_BY_MASTER if value == 400 else f"the master's authentication failed " \
            f"(ZAP status {value})"
    elif event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        why = MODE_MISMATCH if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH else \
            f"handshake protocol error (code {value:#x})"
    elif event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        why = HANDSHAKE_FAILED
    else:
        return state
    return LinkState(connected=False, last_failure=why, failures=state.failures + 1)
