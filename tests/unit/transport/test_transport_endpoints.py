"""Endpoints: plaintext only on ipc:// and loopback literals; socket lifecycle; display."""

from __future__ import annotations

from pathlib import Path

import pytest

from phalanx.transport import (
    MasterSocket,
    PlaintextDev,
    TransportError,
    WorkerKey,
    WorkerSocket,
    check_plaintext_endpoint,
    check_private_ipc_directory,
    describe,
    fingerprint,
    generate_keypair,
)


@pytest.mark.parametrize(
    "endpoint",
    ["ipc:///tmp/phalanx/master.sock", "tcp://127.0.0.1:5557", "tcp://127.4.5.6:1",
     "tcp://127.0.0.1:*"],
)
def test_plaintext_is_allowed_on_ipc_and_loopback(endpoint: str) -> None:
    check_plaintext_endpoint(endpoint)


@pytest.mark.parametrize(
    "endpoint",
    ["tcp://0.0.0.0:5557", "tcp://10.0.0.1:5557", "tcp://192.168.1.5:5557", "tcp://*:5557",
     "tcp://localhost:5557", "tcp://eth0:5557", "tcp://127.0.0.1;10.0.0.1:5557",
     "tcp://10.0.0.1;127.0.0.1:5557", "tcp://127.0.0.1", "tcp://[::]:5557", "tcp://[::1]:5557",
     "tcp://[::ffff:10.0.0.1]:5557", "ipc://", "udp://127.0.0.1:5557", "inproc://x",
     "tcp://127.0.0.1:5557 ", "TCP://127.0.0.1:5557", "ipc://@abstract-name"],
)
def test_plaintext_is_refused_anywhere_else_with_a_clear_error(endpoint: str) -> None:
    with pytest.raises(TransportError, match="plaintext mode refused"):
        check_plaintext_endpoint(endpoint)


def test_sockets_refuse_plaintext_on_a_public_address_before_any_traffic() -> None:
    with pytest.raises(TransportError, match="plaintext mode refused"):
        MasterSocket("tcp://0.0.0.0:5557", PlaintextDev())
    with pytest.raises(TransportError, match="plaintext mode refused"):
        WorkerSocket("tcp://10.0.0.1:5557", PlaintextDev())


def test_ipc_socket_directory_must_be_private_to_the_user(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    check_private_ipc_directory(f"ipc://{private}/master.sock")
    private.chmod(0o755)
    with pytest.raises(TransportError, match="must be private"):
        check_private_ipc_directory(f"ipc://{private}/master.sock")
    with pytest.raises(TransportError, match="cannot use"):
        check_private_ipc_directory(f"ipc://{tmp_path}/missing/master.sock")
    check_private_ipc_directory("tcp://127.0.0.1:5557")  # not ipc: nothing to check


async def test_plaintext_master_refuses_to_bind_ipc_in_a_shared_directory(
        tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    master = MasterSocket(f"ipc://{shared}/master.sock", PlaintextDev())
    with pytest.raises(TransportError, match="must be private"):
        await master.__aenter__()
    assert not (shared / "master.sock").exists()


async def test_sockets_must_be_opened_before_use_and_close_twice_safely(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/m.sock"
    master = MasterSocket(endpoint, PlaintextDev())
    worker = WorkerSocket(endpoint, PlaintextDev())
    with pytest.raises(RuntimeError, match="not open"):
        await master.recv(timeout=0)
    with pytest.raises(RuntimeError, match="not open"):
        await worker.recv(timeout=0)
    async with master, worker:
        assert await master.recv(timeout=0) is None
        assert await worker.recv(timeout=0) is None
    await master.aclose()
    worker.close()


def test_worker_identities_are_shown_by_fingerprint() -> None:
    key = generate_keypair().public.decode()
    assert describe(WorkerKey(key)) == fingerprint(key)
    assert describe(WorkerKey("plaintext-3")) == "plaintext-3"
    assert describe(WorkerKey("garbage")) == "<invalid key>"
