"""HttpSession against the real target: recording, naming, keep-alive, framing."""

from __future__ import annotations

import asyncio

from tests.support.target import serve, start_in_thread

from phalanx.core.results import ErrorKind


async def test_get_returns_response_and_records_one_success(target, make_session, recorder):
    session = make_session(target.url)

    response = await session.get("/")

    assert response.status_code == 200
    assert response.ok
    assert response.content == b"phalanx target\n"
    assert response.text == "phalanx target\n"
    assert response.url == f"{target.url}/"
    assert response.request_method == "GET"
    assert response.elapsed > 0
    assert [(r.method, r.name, r.response_bytes, r.failure) for r in recorder.requests] == [
        ("GET", "/", 15, None)
    ]


async def test_default_name_drops_the_query_string(target, make_session, recorder):
    session = make_session(target.url)

    await session.get("/items/7?token=secret&x=1")

    assert recorder.names == ["/items/7"]
    assert "secret" not in repr(recorder.requests)


async def test_explicit_name_is_recorded(target, make_session, recorder):
    session = make_session(target.url)

    await session.get("/items/7", name="/items/[id]")

    assert recorder.names == ["/items/[id]"]


async def test_absolute_url_to_another_origin_is_named_with_its_origin(make_session, recorder):
    async with serve() as first, serve() as second:
        session = make_session(first.url)
        await session.get(f"{second.url}/items?q=1")
        await session.get(f"{first.url}/items?q=1")

    assert recorder.names == [f"{second.url}/items", "/items"]


async def test_sequential_requests_reuse_one_keep_alive_connection(target, make_session):
    session = make_session(target.url)

    for _ in range(20):
        response = await session.get("/items")
        assert response.status_code == 200

    assert target.stats.requests("/items") == 20
    assert target.stats.connections == 1


async def test_concurrent_requests_open_at_most_the_per_origin_limit(target, make_session):
    session = make_session(target.url, max_connections_per_origin=3)

    responses = await asyncio.gather(*(session.get("/slow?delay=0.05") for _ in range(9)))

    assert [r.status_code for r in responses] == [200] * 9
    assert target.stats.connections <= 3
    assert target.stats.requests("/slow") == 9


async def test_json_route_parses(target, make_session):
    session = make_session(target.url)

    response = await session.get("/items/3")

    assert response.json() == {"id": 3}
    assert response.headers["content-type"] == "application/json"
    assert response.headers.get("CONTENT-TYPE") == "application/json"


async def test_chunked_response_body_is_reassembled(target, make_session, recorder):
    session = make_session(target.url)

    response = await session.get("/chunked?n=4")

    assert response.content == b"part-0;part-1;part-2;part-3;"
    assert recorder.requests[0].response_bytes == len(response.content)
    assert target.stats.connections == 1


async def test_body_delimited_by_connection_close_is_read(target, make_session):
    session = make_session(target.url)

    response = await session.get("/eof")

    assert response.ok
    assert response.content == b"until the connection closes"


async def test_connection_close_response_makes_the_next_request_reconnect(target, make_session):
    session = make_session(target.url)

    first = await session.get("/close")
    second = await session.get("/")

    assert first.ok
    assert second.ok
    assert target.stats.connections == 2


async def test_head_has_no_body_and_keeps_the_connection(target, make_session, recorder):
    session = make_session(target.url)

    head = await session.head("/items")
    get = await session.get("/items")

    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(get.content)
    assert target.stats.connections == 1
    assert [(r.method, r.response_bytes) for r in recorder.requests] == [
        ("HEAD", 0),
        ("GET", len(get.content)),
    ]


async def test_no_content_status_has_empty_body_and_keeps_the_connection(target, make_session):
    session = make_session(target.url)

    empty = await session.get("/status/204")
    after = await session.get("/")

    assert empty.status_code == 204
    assert empty.content == b""
    assert after.ok
    assert target.stats.connections == 1


async def test_error_status_is_recorded_as_http_status_failure(target, make_session, recorder):
    session = make_session(target.url)

    response = await session.get("/status/503")

    assert response.status_code == 503
    assert not response.ok
    assert response.error is None
    failure = recorder.requests[0].failure
    assert failure is not None
    assert failure.kind == ErrorKind.HTTP_STATUS
    assert failure.message == "HTTP 503 Service Unavailable"


async def test_relative_url_without_base_url_is_an_invalid_url_failure(make_session, recorder):
    session = make_session(None)

    response = await session.get("/items?token=abc")

    assert response.status_code == 0
    assert response.error is not None
    assert response.error.kind == ErrorKind.INVALID_URL
    assert recorder.kinds == [ErrorKind.INVALID_URL]
    assert recorder.names == ["/items"]


async def test_unsupported_scheme_is_an_invalid_url_failure(make_session, recorder):
    session = make_session(None)

    response = await session.get("ftp://127.0.0.1/file")

    assert response.error is not None
    assert response.error.kind == ErrorKind.INVALID_URL
    assert recorder.kinds == [ErrorKind.INVALID_URL]


async def test_session_close_closes_its_connections_and_stays_usable(target, make_session):
    session = make_session(target.url)
    await session.get("/")
    assert session.connection_count == 1

    await session.close()
    again = await session.get("/")

    assert session.connection_count == 1
    assert again.ok
    assert target.stats.connections == 2


async def test_sessions_do_not_share_connections(target, make_session):
    first = make_session(target.url)
    second = make_session(target.url)

    await first.get("/")
    await second.get("/")
    await first.get("/")

    assert target.stats.connections == 2


async def test_base_url_path_prefix_is_kept(target, make_session, recorder):
    session = make_session(f"{target.url}/items/")

    response = await session.get("/5")

    assert response.json() == {"id": 5}
    assert recorder.names == ["/items/5"]


async def test_threaded_target_serves_and_counts(make_session, recorder):
    with start_in_thread(use_uvloop=False) as threaded:
        session = make_session(threaded.url)

        responses = [await session.get("/items/1") for _ in range(3)]

        assert [r.json() for r in responses] == [{"id": 1}] * 3
        assert threaded.stats.requests("/items/1") == 3
        assert threaded.stats.connections == 1
        assert recorder.kinds == [None, None, None]
