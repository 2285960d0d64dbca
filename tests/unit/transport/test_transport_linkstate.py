"""The worker's view of its link, folded from monitor events (pure)."""

from __future__ import annotations

import zmq

from phalanx.transport.linkstate import (
    HANDSHAKE_FAILED,
    MODE_MISMATCH,
    REFUSED_BY_MASTER,
    LinkState,
    apply_event,
)


def test_a_successful_handshake_connects_and_clears_the_last_failure() -> None:
    state = LinkState(connected=False, last_failure="x", failures=2)
    assert apply_event(state, zmq.EVENT_HANDSHAKE_SUCCEEDED, 0) == LinkState(True, None, 2)


def test_a_disconnect_keeps_the_failure_history() -> None:
    state = apply_event(LinkState(True, None, 1), zmq.EVENT_DISCONNECTED, 7)
    assert state == LinkState(False, None, 1)


def test_handshake_failures_are_explained_and_counted() -> None:
    state = apply_event(LinkState(), zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400)
    assert state == LinkState(False, REFUSED_BY_MASTER, 1)
    state = apply_event(state, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, 0)
    assert state == LinkState(False, HANDSHAKE_FAILED, 2)
    state = apply_event(state, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                        zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
    assert state == LinkState(False, MODE_MISMATCH, 3)


def test_unusual_codes_are_reported_with_their_value() -> None:
    auth = apply_event(LinkState(), zmq.EVENT_HANDSHAKE_FAILED_AUTH, 500)
    assert auth.last_failure is not None
    assert "500" in auth.last_failure
    protocol = apply_event(LinkState(), zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, 0x10000001)
    assert protocol.last_failure is not None
    assert "0x10000001" in protocol.last_failure


def test_other_events_change_nothing() -> None:
    state = LinkState(True, None, 0)
    assert apply_event(state, zmq.EVENT_CONNECT_DELAYED, 0) is state
