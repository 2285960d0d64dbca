"""Plaintext development mode: allowed on ipc:// and loopback IP literals only (pure check)."""

from __future__ import annotations

import pytest

from phalanx.transport import (
    MasterSocket,
    PlaintextDev,
    TransportError,
    WorkerSocket,
    check_plaintext_endpoint,
)


@pytest.mark.parametrize(
    "endpoint",
    ["ipc:///tmp/phalanx/master.sock", "tcp://127.0.0.1:5557", "tcp://127.4.5.6:1",
     "tcp://127.0.0.1:*", "tcp://[::1]:5557"],
)
def test_plaintext_is_allowed_on_ipc_and_loopback(endpoint: str) -> None:
    check_plaintext_endpoint(endpoint)


@pytest.mark.parametrize(
    "endpoint",
    ["tcp://0.0.0.0:5557", "tcp://10.0.0.1:5557", "tcp://192.168.1.5:5557", "tcp://*:5557",
     "tcp://localhost:5557", "tcp://eth0:5557", "tcp://127.0.0.1;10.0.0.1:5557",
     "tcp://10.0.0.1;127.0.0.1:5557", "tcp://127.0.0.1", "tcp://[::]:5557",
     "tcp://[::ffff:10.0.0.1]:5557", "ipc://", "udp://127.0.0.1:5557", "inproc://x",
     "tcp://127.0.0.1:5557 ", "TCP://127.0.0.1:5557"],
)
def test_plaintext_is_refused_anywhere_else_with_a_clear_error(endpoint: str) -> None:
    with pytest.raises(TransportError, match="plaintext mode refused"):
        check_plaintext_endpoint(endpoint)


def test_sockets_refuse_plaintext_on_a_public_address_before_any_traffic() -> None:
    with pytest.raises(TransportError, match="plaintext mode refused"):
        MasterSocket("tcp://0.0.0.0:5557", PlaintextDev())
    with pytest.raises(TransportError, match="plaintext mode refused"):
        WorkerSocket("tcp://10.0.0.1:5557", PlaintextDev())
