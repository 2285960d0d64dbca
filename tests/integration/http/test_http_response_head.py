"""The response head read from the bytes as they came: heads split over many reads, 1xx
heads before the real one, field names in any case, a head too large, a body that ends
with the connection. A scripted server on 127.0.0.1 writes each reply in pieces, with a
pause between them so that each piece arrives in a read of its own."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest

from phalanx.core.results import ErrorKind
from phalanx.http.connection import MAX_HEAD_BYTES

Reply = Sequence[bytes]
"""The pieces of one reply, written one after another with a pause between them."""


@asynccontextmanager
async def scripted(replies: Sequence[Reply], *, close_after: bool = False,
                   ) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server answering the n-th request on any connection with ``replies[n]``; yields
    its URL and a list that gets each connection's request heads, one bytes per
    connection. ``close_after``: close each connection after its reply."""
    served = 0
    connections: list[bytes] = []
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        connections.append(b"")
        index = len(connections) - 1
        try:
            while served < len(replies):
                connections[index] += await reader.readuntil(b"\r\n\r\n")
                reply = replies[served]
                served += 1
                for piece in reply:
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.01)
                if close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        server.close()
        await server.wait_closed()
        if handlers:
            await asyncio.wait(handlers, timeout=5)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


HEAD = (b"HTTP/1.1 200 OK\r\nServer: scripted\r\nX-Spaced:   padded value \t\r\n"
        b"X-Empty:\r\nX-Twice: one\r\nX-Twice: two\r\nContent-Length: 5\r\n\r\n")


async def test_a_head_split_over_many_reads_is_read_whole_and_the_connection_reused(
        make_session, recorder):
    async with scripted([pieces(HEAD + b"hello", 7), [HEAD + b"again"]]) as (url, connections):
        session = make_session(url)
        first = await session.get("/a")
        second = await session.get("/b")
    assert (first.status_code, first.content, second.content) == (200, b"hello", b"again")
    assert first.headers["server"] == "scripted"
    assert first.headers["x-spaced"] == "padded value"  # surrounding spaces and tabs go
    assert first.headers["x-empty"] == ""
    assert first.headers.get_all("X-Twice") == ["one", "two"]
    assert list(first.headers) == ["Server", "X-Spaced", "X-Empty", "X-Twice", "Content-Length"]
    assert len(connections) == 1  # kept alive across the split head
    assert recorder.kinds == [None, None]


async def test_interim_heads_before_the_response_are_skipped_however_they_arrive(make_session):
    interim = b"HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
    replies = [
        [interim + HEAD + b"one.."],  # one read
        pieces(interim + early + HEAD + b"two..", 5),  # split anywhere, heads included
        [interim[:-3], interim[-3:] + early[:9], early[9:] + HEAD[:20], HEAD[20:] + b"three"],
    ]
    async with scripted(replies) as (url, connections):
        session = make_session(url)
        responses = [await session.get(f"/{n}") for n in range(3)]
    assert [r.content for r in responses] == [b"one..", b"two..", b"three"]
    for response in responses:  # the headers are the final head's, none of an interim one
        assert (response.status_code, response.headers["server"]) == (200, "scripted")
        assert "x-interim" not in response.headers
        assert "link" not in response.headers
    assert len(connections) == 1


async def test_field_names_in_any_case_are_understood(make_session):
    body = gzip.compress(b"compressed body")
    reply = (b"HTTP/1.1 200 OK\r\nSET-COOKIE: sid=abc; Path=/\r\ncOnTeNt-EnCoDiNg: gzip\r\n"
             b"content-LENGTH: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    echo = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with scripted([pieces(reply, 11), [echo]]) as (url, connections):
        session = make_session(url)
        response = await session.get("/set")
        assert response.content == b"compressed body"
        assert session.cookies.get("sid") == "abc"
        await session.get("/next")
    assert b"\r\ncookie: sid=abc\r\n" in connections[0].lower()


async def test_a_head_larger_than_the_limit_is_bad_http_and_the_connection_dropped(
        make_session, recorder):
    filler = b"X-Filler: " + b"f" * 1000 + b"\r\n"
    huge = b"HTTP/1.1 200 OK\r\n" + filler * (MAX_HEAD_BYTES // len(filler) + 2)
    reply = pieces(huge + b"Content-Length: 2\r\n\r\nok", 16 * 1024)
    async with scripted([reply]) as (url, _):
        session = make_session(url)
        response = await session.get("/huge")
    assert response.error is not None
    assert response.error.kind == ErrorKind.BAD_HTTP
    assert "head larger than 64 KiB" in response.error.message
    assert recorder.kinds == [ErrorKind.BAD_HTTP]
    assert session.connection_count == 0


async def test_a_body_ending_with_the_connection_is_complete_when_it_closes(make_session):
    reply = pieces(b"HTTP/1.1 200 OK\r\nX-Kind: until-close\r\n\r\nall of the body", 6)
    async with scripted([reply], close_after=True) as (url, _):
        session = make_session(url)
        response = await session.get("/until-close")
    assert response.error is None
    assert response.content == b"all of the body"
    assert session.connection_count == 0  # never reused


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\nX-Cut: ",  # closed inside the head
    b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part",  # a framed body
], ids=["inside-the-head", "framed-body-after-blank-lines"])
async def test_a_response_cut_by_the_peer_is_a_reset(make_session, recorder, reply):
    async with scripted([[reply]], close_after=True) as (url, _):
        session = make_session(url)
        response = await session.get("/cut")
    assert response.error is not None
    assert response.error.kind == ErrorKind.CONNECTION_RESET
    assert recorder.kinds == [ErrorKind.CONNECTION_RESET]
    assert session.connection_count == 0


async def test_trailer_fields_of_a_chunked_body_are_not_headers(make_session):
    reply = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
             b"5\r\nhello\r\n0\r\nX-Trailer: late\r\n\r\n"]
    async with scripted([reply]) as (url, _):
        session = make_session(url)
        response = await session.get("/chunked")
    assert response.content == b"hello"
    assert "x-trailer" not in response.headers
    assert response.headers["transfer-encoding"] == "chunked"


async def test_blank_lines_before_a_head_are_skipped_as_llhttp_skips_them(make_session):
    body = gzip.compress(b"unzipped")
    final = (b"HTTP/1.1 302 Found\r\nLocation: /next\r\nSet-Cookie: sid=1\r\n"
             b"Content-Encoding: gzip\r\nContent-Length: " + str(len(body)).encode()
             + b"\r\n\r\n" + body)
    replies = [
        [b"\r\n\r\n" + final],
        pieces(b"HTTP/1.1 100 Continue\r\n\r\n\r\n\n\r\n" + HEAD + b"after", 3),
    ]
    async with scripted(replies) as (url, connections):
        session = make_session(url)
        response = await session.get("/start")  # the redirect is followed: Location was read
    assert response.content == b"after"
    assert response.headers["server"] == "scripted"
    assert [r.status_code for r in response.history] == [302]
    assert response.history[0].content == b"unzipped"
    assert session.cookies.get("sid") == "1"
    assert len(connections) == 1


async def test_bytes_after_a_response_in_the_same_read_poison_the_connection(
        make_session, recorder):
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    unasked = b"HTTP/1.1 200 OK\r\nX-Unasked: "  # the start of a head nobody asked for
    replies = [[ok + unasked], [ok]]
    async with scripted(replies) as (url, connections):
        session = make_session(url)
        first = await session.get("/one")
        second = await session.get("/two")
    assert (first.content, second.content) == (b"ok", b"ok")
    assert second.headers.get("x-unasked") is None
    assert len(connections) == 2  # the first connection was not reused
    assert recorder.kinds == [None, None]
