"""Request encoding (seen through /echo) and response decoding (gzip, deflate, caps)."""

from __future__ import annotations

from phalanx.core.results import ErrorKind


def _headers(echo: dict[str, object]) -> dict[str, str]:
    pairs = echo["headers"]
    assert isinstance(pairs, list)
    return {name.lower(): value for name, value in pairs}


async def test_default_headers_are_sent(target, make_session):
    session = make_session(target.url, user_agent="phalanx-test/1")

    echo = (await session.get("/echo")).json()

    headers = _headers(echo)
    assert headers["host"] == f"127.0.0.1:{target.port}"
    assert headers["user-agent"] == "phalanx-test/1"
    assert headers["accept-encoding"] == "gzip, deflate"
    assert "content-length" not in headers
    assert echo["method"] == "GET"


async def test_params_are_urlencoded_and_appended_to_the_query(target, make_session, recorder):
    session = make_session(target.url)

    echo = (await session.get("/echo?a=1", params={"q": "x y&z", "n": 3})).json()

    assert echo["query"] == "a=1&q=x+y%26z&n=3"
    assert recorder.names == ["/echo"]


async def test_params_as_pairs_keep_repeated_keys(target, make_session):
    session = make_session(target.url)

    echo = (await session.get("/echo", params=[("k", 1), ("k", 2.5)])).json()

    assert echo["query"] == "k=1&k=2.5"


async def test_json_body_is_compact_with_content_type(target, make_session):
    session = make_session(target.url)

    echo = (await session.post("/echo", json={"a": [1, 2], "b": "é"})).json()

    headers = _headers(echo)
    assert echo["method"] == "POST"
    assert echo["body"] == '{"a":[1,2],"b":"é"}'
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(echo["body_length"])


async def test_mapping_data_is_form_encoded(target, make_session):
    session = make_session(target.url)

    echo = (await session.put("/echo", data={"user": "a b", "pw": "p&q"})).json()

    assert echo["method"] == "PUT"
    assert echo["body"] == "user=a+b&pw=p%26q"
    assert _headers(echo)["content-type"] == "application/x-www-form-urlencoded"


async def test_bytes_and_str_data_are_sent_raw(target, make_session):
    session = make_session(target.url)

    raw = (await session.patch("/echo", data=b"\x00\x01raw")).json()
    text = (await session.post("/echo", data="héllo")).json()

    assert raw["body_length"] == 5
    assert "content-type" not in _headers(raw)
    assert text["body"] == "héllo"
    assert _headers(text)["content-length"] == str(len("héllo".encode()))


async def test_post_without_body_sends_zero_content_length(target, make_session):
    session = make_session(target.url)

    echo = (await session.post("/echo")).json()

    assert _headers(echo)["content-length"] == "0"


async def test_user_headers_override_defaults_and_content_length_is_ours(target, make_session):
    session = make_session(target.url)

    echo = (
        await session.post(
            "/echo",
            data=b"12345",
            headers={"User-Agent": "custom", "X-Trace": "t1", "Content-Length": "999"},
        )
    ).json()

    pairs = [(n.lower(), v) for n, v in echo["headers"]]
    assert ("user-agent", "custom") in pairs
    assert [v for n, v in pairs if n == "user-agent"] == ["custom"]
    assert ("x-trace", "t1") in pairs
    assert [v for n, v in pairs if n == "content-length"] == ["5"]


async def test_header_injection_is_refused_without_sending(target, make_session, recorder):
    session = make_session(target.url)

    response = await session.get("/echo", headers={"X-Evil": "a\r\nInjected: yes"})

    assert response.error is not None
    assert response.error.kind == ErrorKind.OTHER
    assert recorder.kinds == [ErrorKind.OTHER]
    assert target.stats.total_requests == 0


async def test_unencodable_json_is_a_recorded_failure_not_an_exception(target, make_session):
    session = make_session(target.url)

    response = await session.post("/echo", json={"x": object()})

    assert response.error is not None
    assert response.error.kind == ErrorKind.OTHER


async def test_url_with_spaces_and_unicode_is_percent_encoded(target, make_session, recorder):
    session = make_session(target.url)

    echo = (await session.get("/echo/a b/é")).json()

    assert echo["path"] == "/echo/a%20b/%C3%A9"
    assert recorder.names == ["/echo/a%20b/%C3%A9"]


async def test_gzip_body_is_decompressed_and_wire_bytes_recorded(target, make_session, recorder):
    session = make_session(target.url)

    response = await session.get("/gzip")

    assert response.json()["compressed"] is True
    assert 0 < recorder.requests[0].response_bytes < len(response.content)
    assert response.wire_bytes == recorder.requests[0].response_bytes


async def test_deflate_body_is_decompressed_zlib_and_raw(target, make_session):
    session = make_session(target.url)

    wrapped = await session.get("/deflate")
    raw = await session.get("/deflate?raw=1")

    assert wrapped.json()["compressed"] is True
    assert raw.json() == wrapped.json()


async def test_big_body_is_truncated_at_the_cap_and_all_bytes_are_counted(
    target, make_session, recorder
):
    session = make_session(target.url, max_body_bytes=1000)

    response = await session.get("/big?bytes=300000")
    after = await session.get("/")

    assert response.ok
    assert response.truncated
    assert response.content == b"x" * 1000
    assert recorder.requests[0].response_bytes == 300_000
    assert after.ok
    assert target.stats.connections == 1


async def test_chunked_big_body_is_truncated_too(target, make_session, recorder):
    session = make_session(target.url, max_body_bytes=70_000)

    response = await session.get("/big?bytes=200000&chunked=1")

    assert response.truncated
    assert len(response.content) == 70_000
    assert recorder.requests[0].response_bytes == 200_000


async def test_gzip_bomb_is_capped_after_decompression(target, make_session, recorder):
    session = make_session(target.url, max_body_bytes=4096)

    response = await session.get("/gzip?bytes=5000000")

    assert response.truncated
    assert response.content == b"a" * 4096
    assert recorder.requests[0].response_bytes < 100_000


async def test_body_under_the_cap_is_not_truncated(target, make_session):
    session = make_session(target.url, max_body_bytes=1000)

    response = await session.get("/big?bytes=1000")

    assert not response.truncated
    assert len(response.content) == 1000
