"""Real CURVE links on 127.0.0.1: who may connect, who the master thinks is talking, and that
nothing a worker sends can break the master's receive loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from phalanx.protocol import PROTOCOL_VERSION, Heartbeat, Hello, MasterHeartbeat, Welcome, encode
from phalanx.transport import (
    CurveClient,
    KeyDir,
    LinkLimits,
    MasterSocket,
    PlaintextDev,
    TransportError,
    WorkerKey,
    WorkerSocket,
    fingerprint,
    generate_keypair,
)
from phalanx.transport.linkstate import (
    HANDSHAKE_FAILED,
    MODE_MISMATCH,
    REFUSED_BY_MASTER,
    LinkState,
)

LOOPBACK = "tcp://127.0.0.1:0"
WAIT = 5.0
"""Upper bound of any wait for something that should happen (it happens in milliseconds)."""
QUIET = 0.3
"""How long to listen when checking that something does *not* happen."""


def hello(name: str = "w1") -> Hello:
    return Hello(protocol_version=PROTOCOL_VERSION, worker_name=name, script_sha256="0" * 64,
                 phalanx_version="0.1.0", cpu_count=2)


def heartbeat(seq: int = 1) -> Heartbeat:
    return Heartbeat(seq=seq, users=0, state="ready", cpu_percent=0.0, rss_bytes=1)


async def handshake(master: MasterSocket, worker: WorkerSocket,
                    name: str = "w1") -> WorkerKey:
    """Worker says Hello, master answers Welcome; returns the key the master saw."""
    assert await worker.send(hello(name), timeout=WAIT)
    item = await master.recv(timeout=WAIT)
    assert item is not None
    key, message = item
    assert message == hello(name)
    assert master.send(key, Welcome(run_id="r1"))
    assert await worker.recv(timeout=WAIT) == Welcome(run_id="r1")
    return key


async def turns(count: int) -> None:
    """Give the event loop ``count`` turns (a task started just before runs up to its wait)."""
    for _ in range(count):
        await asyncio.sleep(0)


async def wait_for_refusals(master: MasterSocket, count: int) -> None:
    """Keep the master serving until its ZAP handler refused ``count`` attempts."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while master.refused_connections < count:
        assert loop.time() < deadline, "the refusal never happened"
        assert await master.recv(timeout=0.02) is None


async def wait_for_failure(worker: WorkerSocket) -> str:
    """The worker's own explanation of its failed handshake, once it has one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while (failure := worker.link_state().last_failure) is None:
        assert loop.time() < deadline, "the handshake failure was never reported"
        assert await worker.recv(timeout=0.02) is None
    return failure


async def test_allowed_worker_is_welcomed_and_identified_by_its_key_not_its_name(
        keys: KeyDir) -> None:
    client = keys.curve_client("w2")
    async with MasterSocket(LOOPBACK, keys.curve_server()) as master, \
            WorkerSocket(master.endpoint, client) as worker:
        key = await handshake(master, worker, name="w1")  # claims another worker's name
        assert worker.link_state() == LinkState(connected=True)
        assert key == client.keypair.public.decode()
        assert master.name_of(key) == "w2"  # the name comes from the master's own allow-list


async def test_two_workers_claiming_the_same_name_get_their_own_identities(
        keys: KeyDir) -> None:
    async with MasterSocket(LOOPBACK, keys.curve_server()) as master, \
            WorkerSocket(master.endpoint, keys.curve_client("w1")) as one, \
            WorkerSocket(master.endpoint, keys.curve_client("w2")) as two:
        first = await handshake(master, one, name="same")
        second = await handshake(master, two, name="same")
        assert first != second
        assert master.send(second, MasterHeartbeat(seq=9))
        assert await two.recv(timeout=WAIT) == MasterHeartbeat(seq=9)
        assert await one.recv(timeout=QUIET) is None


async def test_one_key_used_by_two_live_connections_is_reported(
        keys: KeyDir, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="phalanx.transport"):
        async with MasterSocket(LOOPBACK, keys.curve_server()) as master, \
                WorkerSocket(master.endpoint, keys.curve_client("w1")) as one, \
                WorkerSocket(master.endpoint, keys.curve_client("w1")) as copy:
            for link in (one, copy, one):  # the return address flips back: two hosts
                assert await link.send(heartbeat(), timeout=WAIT)
                assert await master.recv(timeout=WAIT) is not None
    shared = [r.getMessage() for r in caplog.records if "two connections" in r.getMessage()]
    assert len(shared) == 1
    assert fingerprint(keys.curve_client("w1").keypair.public) in shared[0]


async def test_a_reconnecting_worker_is_not_reported_as_shared(
        keys: KeyDir, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="phalanx.transport"):
        async with MasterSocket(LOOPBACK, keys.curve_server()) as master:
            for _ in range(3):  # a new connection each time, never an old one again
                async with WorkerSocket(master.endpoint, keys.curve_client("w1")) as link:
                    assert await link.send(heartbeat(), timeout=WAIT)
                    assert await master.recv(timeout=WAIT) is not None
    assert not [r for r in caplog.records if "two connections" in r.getMessage()]


async def test_worker_with_a_key_not_on_the_allow_list_is_refused_and_logged(
        keys: KeyDir, caplog: pytest.LogCaptureFixture) -> None:
    rogue = CurveClient(keypair=generate_keypair(),
                        master_public=keys.curve_client("w1").master_public)
    reported: list[tuple[str, str]] = []
    with caplog.at_level(logging.WARNING, logger="phalanx.transport"):
        async with MasterSocket(LOOPBACK, keys.curve_server()) as master, \
                WorkerSocket(master.endpoint, rogue) as worker:
            master.on_refused = lambda key, address: reported.append((key, address))
            assert not await worker.send(hello(), timeout=QUIET)
            await wait_for_refusals(master, 1)
            assert await master.recv(timeout=QUIET) is None
            assert master.received == 0
            assert await worker.recv(timeout=QUIET) is None
            assert await wait_for_failure(worker) == REFUSED_BY_MASTER
    refusals = [r.getMessage() for r in caplog.records if "refused worker key" in r.getMessage()]
    assert refusals
    assert fingerprint(rogue.keypair.public) in refusals[0]
    assert reported[0][0] == fingerprint(rogue.keypair.public)  # what the audit log gets


async def test_worker_pinned_to_the_wrong_master_key_never_gets_a_reply(keys: KeyDir) -> None:
    good = keys.curve_client("w1")
    misled = CurveClient(keypair=good.keypair, master_public=generate_keypair().public)
    async with MasterSocket(LOOPBACK, keys.curve_server()) as master, \
            WorkerSocket(master.endpoint, misled) as worker:
        assert not await worker.send(hello(), timeout=QUIET)
        assert await master.recv(timeout=QUIET) is None
        assert await worker.recv(timeout=QUIET) is None
        assert master.received == 0
        assert await wait_for_failure(worker) == HANDSHAKE_FAILED
        assert not worker.link_state().connected


async def test_revoked_key_is_refused_at_its_next_connect(keys: KeyDir) -> None:
    async with MasterSocket(LOOPBACK, keys.curve_server()) as master:
        async with WorkerSocket(master.endpoint, keys.curve_client("w2")) as worker:
            await handshake(master, worker)
        keys.revoke("w2")
        async with WorkerSocket(master.endpoint, keys.curve_client("w2")) as worker:
            assert not await worker.send(hello(), timeout=QUIET)
            await wait_for_refusals(master, 1)
            assert await master.recv(timeout=QUIET) is None
        async with WorkerSocket(master.endpoint, keys.curve_client("w1")) as other:
            await handshake(master, other)  # the others are unaffected


async def test_open_connection_of_a_revoked_key_goes_silent(
        keys: KeyDir, caplog: pytest.LogCaptureFixture) -> None:
    limits = LinkLimits(allow_list_recheck=0.0)
    async with MasterSocket(LOOPBACK, keys.curve_server(), limits=limits) as master, \
            WorkerSocket(master.endpoint, keys.curve_client("w2"), limits=limits) as worker:
        await handshake(master, worker)
        keys.revoke("w2")
        assert await worker.send(heartbeat(), timeout=WAIT)
        with caplog.at_level(logging.WARNING, logger="phalanx.transport"):
            assert await master.recv(timeout=QUIET) is None
        assert "no longer on the allow-list" in caplog.text


async def test_plaintext_client_cannot_talk_to_a_curve_master(keys: KeyDir) -> None:
    async with MasterSocket(LOOPBACK, keys.curve_server()) as master, \
            WorkerSocket(master.endpoint, PlaintextDev()) as worker:
        assert not await worker.send(hello(), timeout=QUIET)
        assert await master.recv(timeout=QUIET) is None
        assert master.received == 0
        assert await wait_for_failure(worker) in (MODE_MISMATCH, HANDSHAKE_FAILED)


async def test_raw_unencrypted_bytes_sent_to_the_master_port_never_reach_recv(
        keys: KeyDir) -> None:
    async with MasterSocket(LOOPBACK, keys.curve_server()) as master:
        host, port = master.endpoint.removeprefix("tcp://").rsplit(":", 1)
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, int(port)), WAIT)
        try:
            writer.write(b"\xff" + b"\x00" * 8 + b"\x7f" + b"GET / HTTP/1.1\r\n\r\n" * 10)
            await asyncio.wait_for(writer.drain(), WAIT)
            assert await master.recv(timeout=QUIET) is None
        finally:
            writer.close()


def raw_dealer(context: zmq.asyncio.Context, endpoint: str, client: CurveClient
               ) -> zmq.asyncio.Socket:
    """A bare authenticated DEALER that can send anything (the test's misbehaving worker)."""
    assert client.keypair.secret is not None
    socket = context.socket(zmq.DEALER)
    socket.linger = 0
    socket.curve_serverkey = client.master_public
    socket.curve_publickey = client.keypair.public
    socket.curve_secretkey = client.keypair.secret
    socket.connect(endpoint)
    return socket


async def test_garbage_and_truncated_frames_from_an_authenticated_worker_are_counted_and_dropped(
        keys: KeyDir, caplog: pytest.LogCaptureFixture) -> None:
    context = zmq.asyncio.Context()
    try:
        async with MasterSocket(LOOPBACK, keys.curve_server()) as master:
            evil = raw_dealer(context, master.endpoint, keys.curve_client("w2"))
            valid = encode(hello())
            bad_frames: list[list[bytes]] = [
                [b""], [b"\x00garbage"], [valid[:5]], [valid + b"\x00"], [b"\x01" + valid[1:]],
                [encode(Welcome(run_id="r1"))],  # master-to-worker message from a worker
                [valid, valid],  # multipart
                [b"x"] * 50,  # many parts
            ]
            with caplog.at_level(logging.WARNING, logger="phalanx.transport"):
                for frames in bad_frames:
                    await asyncio.wait_for(evil.send_multipart(frames), WAIT)
                await asyncio.wait_for(evil.send(encode(heartbeat(7))), WAIT)
                item = await master.recv(timeout=WAIT)
            assert item is not None
            key, message = item
            assert message == heartbeat(7)  # the loop survived every bad frame, in order
            assert key == keys.curve_client("w2").keypair.public.decode()
            assert master.bad_frames(key) == len(bad_frames)
            assert master.dropped == len(bad_frames)
            logged = [r for r in caplog.records if "invalid message" in r.getMessage()]
            assert len(logged) == 1  # once per worker
            assert fingerprint(key) in logged[0].getMessage()
            evil.close()
    finally:
        context.destroy(linger=0)


async def test_oversized_frame_disconnects_its_sender_and_the_master_serves_others(
        keys: KeyDir) -> None:
    limits = LinkLimits(max_message_bytes=64 * 1024)
    context = zmq.asyncio.Context()
    try:
        async with MasterSocket(LOOPBACK, keys.curve_server(), limits=limits) as master, \
                WorkerSocket(master.endpoint, keys.curve_client("w1"), limits=limits) as good:
            evil = raw_dealer(context, master.endpoint, keys.curve_client("w2"))
            oversized = bytes([PROTOCOL_VERSION]) + b"\x00" * (1024 * 1024)
            await asyncio.wait_for(evil.send(oversized), WAIT)
            await handshake(master, good)
            assert await master.recv(timeout=QUIET) is None
            assert master.received == 1
            assert master.dropped == 0  # ZeroMQ discarded it: it never reached the decoder
            evil.close()
    finally:
        context.destroy(linger=0)


async def test_frame_claiming_a_huge_length_is_dropped_and_the_sender_keeps_its_link(
        keys: KeyDir) -> None:
    async with MasterSocket(LOOPBACK, keys.curve_server()) as master, \
            WorkerSocket(master.endpoint, keys.curve_client("w1")) as worker:
        key = await handshake(master, worker)
        context = zmq.asyncio.Context()
        try:
            evil = raw_dealer(context, master.endpoint, keys.curve_client("w1"))
            lie = bytes([PROTOCOL_VERSION]) + b"\xdb" + b"\xff" * 64  # a str32 claiming 4 GB
            await asyncio.wait_for(evil.send(lie), WAIT)
            assert await worker.send(heartbeat(2), timeout=WAIT)
            item = await master.recv(timeout=WAIT)
            assert item == (key, heartbeat(2))
            evil.close()
        finally:
            context.destroy(linger=0)


async def test_send_to_an_unknown_worker_returns_false_without_blocking(keys: KeyDir) -> None:
    async with MasterSocket(LOOPBACK, keys.curve_server()) as master:
        assert not master.send(WorkerKey("nobody"), MasterHeartbeat(seq=1))
        assert master.send_failures == 1


async def test_a_cancelled_recv_loses_no_message(keys: KeyDir) -> None:
    async with MasterSocket(LOOPBACK, keys.curve_server()) as master, \
            WorkerSocket(master.endpoint, keys.curve_client("w1")) as worker:
        waiting = asyncio.ensure_future(master.recv(timeout=WAIT))
        for _ in range(3):  # let recv pass its leading yield and park on the socket poll
            await asyncio.sleep(0)
        assert not waiting.done()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await worker.send(hello(), timeout=WAIT)
        item = await master.recv(timeout=WAIT)
        assert item is not None
        assert item[1] == hello()


async def test_plaintext_dev_mode_works_over_ipc_with_a_transport_given_identity(
        tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/master.sock"
    async with MasterSocket(endpoint, PlaintextDev()) as master, \
            WorkerSocket(endpoint, PlaintextDev()) as worker:
        key = await handshake(master, worker, name="w1")
        assert key.startswith("plaintext-")
        assert master.name_of(key) == ""


async def test_curve_worker_cannot_join_a_plaintext_master(keys: KeyDir, tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/master.sock"
    async with MasterSocket(endpoint, PlaintextDev()) as master, \
            WorkerSocket(endpoint, keys.curve_client("w1")) as worker:
        assert not await worker.send(hello(), timeout=QUIET)
        assert await master.recv(timeout=QUIET) is None
        assert await wait_for_failure(worker) in (MODE_MISMATCH, HANDSHAKE_FAILED)


async def test_worker_drops_invalid_frames_from_the_master_and_keeps_receiving(
        tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/master.sock"
    context = zmq.asyncio.Context()
    try:
        router = context.socket(zmq.ROUTER)
        router.linger = 0
        router.bind(endpoint)
        async with WorkerSocket(endpoint, PlaintextDev()) as worker:
            assert await worker.send(hello(), timeout=WAIT)
            route, _payload = await asyncio.wait_for(router.recv_multipart(), WAIT)
            for frames in ([b"junk"], [encode(hello())], [b"a", b"b"]):
                await asyncio.wait_for(router.send_multipart([route, *frames]), WAIT)
            await asyncio.wait_for(
                router.send_multipart([route, encode(MasterHeartbeat(seq=3))]), WAIT)
            assert await worker.recv(timeout=WAIT) == MasterHeartbeat(seq=3)
            assert worker.bad_frames == 3
        router.close()
    finally:
        context.destroy(linger=0)


async def test_binding_a_busy_endpoint_is_a_clear_error_and_leaves_nothing_running(
        keys: KeyDir) -> None:
    async with MasterSocket(LOOPBACK, keys.curve_server()) as master:
        second = MasterSocket(master.endpoint, keys.curve_server())
        with pytest.raises(TransportError, match="cannot bind"):
            await second.__aenter__()
        zap_tasks = [t for t in asyncio.all_tasks() if t.get_name() == "phalanx-zap"]
        assert len(zap_tasks) == 1  # only the first master's
        async with WorkerSocket(master.endpoint, keys.curve_client("w1")) as worker:
            await handshake(master, worker)


@contextlib.asynccontextmanager
async def master_with_two_workers(keys: KeyDir) -> AsyncIterator[
        tuple[MasterSocket, tuple[WorkerSocket, WorkerKey], tuple[WorkerSocket, WorkerKey]]]:
    """A master and workers w1 and w2, both welcomed (each with the key the master saw)."""
    async with MasterSocket(LOOPBACK, keys.curve_server()) as master, \
            WorkerSocket(master.endpoint, keys.curve_client("w1")) as one, \
            WorkerSocket(master.endpoint, keys.curve_client("w2")) as two:
        first = await handshake(master, one, name="one")
        second = await handshake(master, two, name="two")
        yield master, (one, first), (two, second)


async def test_recv_batch_returns_what_arrived_in_order_up_to_its_limit(keys: KeyDir) -> None:
    async with master_with_two_workers(keys) as (master, (one, first), (two, second)):
        for seq in range(1, 6):
            assert await one.send(heartbeat(seq), timeout=WAIT)
            assert await two.send(heartbeat(100 + seq), timeout=WAIT)
        received: list[tuple[WorkerKey, object]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while len(received) < 10:
            assert loop.time() < deadline, f"only {len(received)} of 10 messages came"
            batch = await master.recv_batch(timeout=WAIT, limit=3)
            assert 1 <= len(batch) <= 3
            received.extend(batch)
        assert [m for k, m in received if k == first] == [heartbeat(s) for s in range(1, 6)]
        assert [m for k, m in received if k == second] == [heartbeat(100 + s)
                                                           for s in range(1, 6)]
        assert await master.recv_batch(timeout=QUIET) == []
        with pytest.raises(ValueError, match="limit"):
            await master.recv_batch(timeout=0.0, limit=0)


async def test_a_message_sent_while_recv_batch_rests_is_read_after_the_rest(
        keys: KeyDir, monkeypatch: pytest.MonkeyPatch) -> None:
    from phalanx.transport import master as module

    monkeypatch.setattr(module, "REST_S", 0.2)
    async with MasterSocket(LOOPBACK, keys.curve_server()) as master, \
            WorkerSocket(master.endpoint, keys.curve_client("w1")) as worker:
        key = await handshake(master, worker)  # a read that returned a message: next, a rest
        loop = asyncio.get_running_loop()
        waiting = asyncio.ensure_future(master.recv_batch(timeout=WAIT))
        await turns(3)  # it read nothing and rests (0.2 s): the descriptor is not watched
        assert not waiting.done()
        assert await worker.send(heartbeat(3), timeout=WAIT)
        sent_at = loop.time()
        assert await asyncio.wait_for(waiting, WAIT) == [(key, heartbeat(3))]
        assert loop.time() - sent_at < WAIT
        # A rest cancelled half-way leaves the socket watched: the next wait still wakes.
        assert await worker.send(heartbeat(4), timeout=WAIT)
        assert await master.recv_batch(timeout=WAIT) == [(key, heartbeat(4))]
        resting = asyncio.ensure_future(master.recv_batch(timeout=WAIT))
        await turns(3)
        resting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await resting
        parked = asyncio.ensure_future(master.recv_batch(timeout=WAIT))
        await turns(3)  # no rest now (nothing was read since): a plain wait
        assert await worker.send(heartbeat(5), timeout=WAIT)
        assert await asyncio.wait_for(parked, WAIT) == [(key, heartbeat(5))]


async def test_send_all_encodes_once_and_reaches_every_known_worker(keys: KeyDir) -> None:
    async with master_with_two_workers(keys) as (master, (one, first), (two, second)):
        sent = master.send_all([first, WorkerKey("nobody"), second], MasterHeartbeat(seq=4))
        assert sent == 2
        assert master.send_failures == 1
        assert await one.recv(timeout=WAIT) == MasterHeartbeat(seq=4)
        assert await two.recv(timeout=WAIT) == MasterHeartbeat(seq=4)
