"""Readable: waiting on a ZeroMQ socket's own descriptor, over a real TCP pair on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import pytest
import zmq

from phalanx.transport.sockets import Readable

WAIT = 5.0
"""Upper bound of any wait for something that should happen (it happens in milliseconds)."""
QUIET = 0.3
"""How long to listen when checking that something does *not* happen."""


@contextlib.contextmanager
def connected(receiver_type: int, sender_type: int) -> Iterator[
        tuple[zmq.Socket[bytes], zmq.Socket[bytes]]]:
    """A receiver bound on 127.0.0.1 and a sender connected to it, closed afterwards."""
    context = zmq.Context()
    receiver = context.socket(receiver_type)
    sender = context.socket(sender_type)
    try:
        for socket in (receiver, sender):
            socket.setsockopt(zmq.LINGER, 0)
        port = receiver.bind_to_random_port("tcp://127.0.0.1")
        sender.connect(f"tcp://127.0.0.1:{port}")
        yield receiver, sender
    finally:
        sender.close(0)
        receiver.close(0)
        context.term()


@pytest.fixture
def pair() -> Iterator[tuple[zmq.Socket[bytes], zmq.Socket[bytes]]]:
    with connected(zmq.PULL, zmq.PUSH) as sockets:
        yield sockets


async def test_wait_times_out_with_nothing_to_read_then_wakes_for_a_message(
        pair: tuple[zmq.Socket[bytes], zmq.Socket[bytes]]) -> None:
    receiver, sender = pair
    readable = Readable(receiver)
    try:
        assert await readable.wait(QUIET) is False
        assert readable.suspended

        waiter = asyncio.get_running_loop().create_task(readable.wait(WAIT))
        while not readable.parked:  # the send comes once the wait is suspended
            await asyncio.sleep(0)
        sender.send(b"one")
        assert await asyncio.wait_for(waiter, WAIT) is True
        assert receiver.recv(zmq.NOBLOCK) == b"one"
        # A waiting message is seen at once, without giving the loop a turn.
        sender.send(b"two")
        assert await readable.wait(WAIT) is True
        assert await readable.wait(0.0) is True
        assert not readable.suspended
        assert receiver.recv(zmq.NOBLOCK) == b"two"
    finally:
        readable.close()


async def test_an_unread_message_does_not_make_the_loop_spin(
        pair: tuple[zmq.Socket[bytes], zmq.Socket[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    receiver, sender = pair
    readable = Readable(receiver)
    calls = 0
    notice = readable.notice

    def counting_notice() -> None:
        nonlocal calls
        calls += 1
        notice()

    # The loop calls what add_reader registered: re-register the counting wrapper.
    loop = asyncio.get_running_loop()
    loop.remove_reader(receiver.FD)
    loop.add_reader(receiver.FD, counting_notice)
    try:
        for n in range(20):
            sender.send(b"%d" % n)
        await asyncio.sleep(QUIET)  # nobody reads: a level-triggered descriptor would fire
        assert calls < 50  # ... on every turn of the loop, thousands of times
        assert readable.ready()
    finally:
        readable.close()


async def test_close_stops_watching_the_descriptor(
        pair: tuple[zmq.Socket[bytes], zmq.Socket[bytes]]) -> None:
    receiver, _sender = pair
    readable = Readable(receiver)
    readable.close()
    assert not asyncio.get_running_loop().remove_reader(receiver.FD)


async def test_notice_wakes_a_parked_wait_after_another_task_used_the_socket() -> None:
    with connected(zmq.PAIR, zmq.PAIR) as (receiver, sender):
        readable = Readable(receiver)
        waiter = asyncio.get_running_loop().create_task(readable.wait(WAIT))
        while not readable.parked:
            await asyncio.sleep(0)
        sender.send(b"one")
        # Another task asks ZeroMQ itself (as a send on this socket does): that can swallow
        # the descriptor's signal before the loop sees it, so it must notice() for the waiter.
        deadline = time.monotonic() + WAIT
        while not receiver.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            assert time.monotonic() < deadline, "the message never arrived"
        assert readable.parked
        readable.notice()
        assert await asyncio.wait_for(waiter, WAIT) is True
        assert not readable.parked
        readable.close()


async def test_rest_ignores_the_descriptor_then_watches_it_again(
        pair: tuple[zmq.Socket[bytes], zmq.Socket[bytes]]) -> None:
    receiver, sender = pair
    readable = Readable(receiver)
    loop = asyncio.get_running_loop()
    try:
        resting = loop.create_task(readable.rest(0.2))
        await asyncio.sleep(0)  # the rest has begun
        assert not loop.remove_reader(receiver.FD)  # not watched while it rests
        sender.send(b"during the rest")
        await asyncio.wait_for(resting, WAIT)
        assert await readable.wait(WAIT) is True  # watched again: the message is seen
        assert receiver.recv(zmq.NOBLOCK) == b"during the rest"
    finally:
        readable.close()


async def test_a_rest_cancelled_or_ended_by_close_leaves_the_right_registration(
        pair: tuple[zmq.Socket[bytes], zmq.Socket[bytes]]) -> None:
    receiver, sender = pair
    loop = asyncio.get_running_loop()
    readable = Readable(receiver)
    resting = loop.create_task(readable.rest(WAIT))
    await asyncio.sleep(0)  # the rest has begun
    resting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await resting
    sender.send(b"after the cancelled rest")
    assert await readable.wait(WAIT) is True  # the reader is back
    readable.close()

    readable = Readable(receiver)
    resting = loop.create_task(readable.rest(0.05))
    await asyncio.sleep(0)
    readable.close()  # the socket's owner closes it while a rest is under way
    await asyncio.wait_for(resting, WAIT)
    assert not loop.remove_reader(receiver.FD)  # the ended rest did not register it again
