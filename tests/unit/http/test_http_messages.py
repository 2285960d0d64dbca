"""Pure message pieces: request heads, bodies, redirect rules, headers, decoding."""

from __future__ import annotations

import gzip
import zlib

import pytest

from phalanx.http.decoding import BodyDecodeError, decoder_for
from phalanx.http.encoding import (
    InvalidRequest,
    check_method,
    default_header_block,
    encode_body,
    encode_head,
    prepare_headers,
)
from phalanx.http.headers import Headers, split_fields
from phalanx.http.redirects import next_hop
from phalanx.http.response import HttpStatusError, Response

BLOCK = default_header_block("h.test", "ua/1")


def test_plain_get_head_is_request_line_plus_defaults() -> None:
    head = encode_head("GET", "/x", BLOCK, None, None, None, None, None)

    assert head == (
        b"GET /x HTTP/1.1\r\nHost: h.test\r\nUser-Agent: ua/1\r\nAccept: */*\r\n"
        b"Accept-Encoding: gzip, deflate\r\n\r\n"
    )


def test_head_with_body_headers_cookie_and_auth() -> None:
    headers = prepare_headers({"Accept": "text/html", "Cookie": "u=1", "X-A": " b "})

    head = encode_head("POST", "/p", BLOCK, headers, b"12", "text/plain", "j=2", "Basic x")

    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /p HTTP/1.1"
    assert "Accept: text/html" in lines
    assert "Accept: */*" not in lines
    assert "Cookie: u=1; j=2" in lines
    assert "X-A: b" in lines
    assert "Authorization: Basic x" in lines
    assert "Content-Type: text/plain" in lines
    assert "Content-Length: 2" in lines
    assert head.endswith(b"\r\n\r\n")


def test_user_content_length_and_transfer_encoding_are_dropped() -> None:
    headers = prepare_headers({"Content-Length": "9", "Transfer-Encoding": "chunked"})

    assert headers.pairs == ()


@pytest.mark.parametrize(
    "headers",
    [{"X": "a\r\nB: c"}, {"Bad Name": "v"}, {"X": "\x00"}, {"": "v"}, {"X": "€"}],
)
def test_invalid_headers_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest):
        prepare_headers(headers)


def test_methods_are_upper_cased_tokens() -> None:
    assert check_method("get") == "GET"
    with pytest.raises(InvalidRequest):
        check_method("GET /x HTTP/1.1\r\n")


def test_body_encodings() -> None:
    assert encode_body(b"x", None) == (b"x", None)
    assert encode_body("é", None) == ("é".encode(), None)
    assert encode_body({"a": "b c"}, None) == (b"a=b+c", "application/x-www-form-urlencoded")
    assert encode_body(None, {"a": [1]}) == (b'{"a":[1]}', "application/json")
    assert encode_body(b"data wins", {"a": 1}) == (b"data wins", None)
    assert encode_body(None, None) == (None, None)
    with pytest.raises(InvalidRequest):
        encode_body(12, None)


@pytest.mark.parametrize(
    ("status", "method", "expected_method", "keeps_body"),
    [
        (303, "POST", "GET", False),
        (303, "PUT", "GET", False),
        (303, "HEAD", "HEAD", False),
        (302, "POST", "GET", False),
        (301, "POST", "GET", False),
        (302, "PUT", "PUT", True),
        (307, "POST", "POST", True),
        (308, "PATCH", "PATCH", True),
    ],
)
def test_redirect_method_rules(
    status: int, method: str, expected_method: str, keeps_body: bool
) -> None:
    headers = prepare_headers({"Content-Type": "text/plain"})

    hop = next_hop(status, method, b"body", "text/plain", headers, same_origin=True)

    assert hop.method == expected_method
    assert (hop.body == b"body") is keeps_body
    assert hop.headers is not None
    assert ("content-type" in hop.headers.names) is keeps_body


def test_cross_origin_hop_drops_credentials_only() -> None:
    headers = prepare_headers({"Authorization": "x", "Cookie": "c", "X-Keep": "1"})

    hop = next_hop(302, "GET", None, None, headers, same_origin=False)

    assert hop.headers is not None
    assert hop.headers.pairs == (("X-Keep", "1"),)


def test_headers_are_case_insensitive_and_multi_valued() -> None:
    headers = Headers.from_raw([(b"Set-Cookie", b"a=1"), (b"X-A", b"1"), (b"set-cookie", b"b=2")])

    assert headers["SET-COOKIE"] == "a=1, b=2"
    assert headers.get_all("set-cookie") == ["a=1", "b=2"]
    assert headers.get("missing") is None
    assert "x-a" in headers
    assert list(headers) == ["Set-Cookie", "X-A"]
    assert len(headers) == 2


@pytest.mark.parametrize(("block", "fields"), [
    (b"HTTP/1.1 204 No Content", []),
    (b"HTTP/1.1 200 OK\r\nA: 1", [(b"A", b"1")]),
    (b"HTTP/1.1 200 OK\r\nA:\r\nB: \t x y \t\r\nC:a:b",
     [(b"A", b""), (b"B", b"x y"), (b"C", b"a:b")]),
    (b"\r\nA: 1\r\nA: 2", [(b"A", b"1"), (b"A", b"2")]),  # a block without status line
])
def test_a_header_block_splits_into_its_fields(block: bytes,
                                               fields: list[tuple[bytes, bytes]]) -> None:
    assert split_fields(block) == fields
    assert Headers.from_raw(block).multi_items() == [
        (n.decode("latin-1"), v.decode("latin-1")) for n, v in fields]


def test_response_text_uses_the_declared_charset() -> None:
    response = Response(200, [(b"Content-Type", b"text/plain; charset=latin-1")], b"\xe9")

    assert response.text == "é"
    assert Response(200, content=b"\xff").text == "\ufffd"


def test_response_reason_and_raise_for_status() -> None:
    response = Response(404)

    assert response.reason == "Not Found"
    assert not response.ok
    with pytest.raises(HttpStatusError, match="HTTP 404 Not Found"):
        response.raise_for_status()
    Response(200).raise_for_status()


def test_gzip_decoder_caps_output() -> None:
    decoder = decoder_for(b"gzip")
    assert decoder is not None

    out, overflow = decoder.decompress(gzip.compress(b"a" * 100_000), 10)

    assert out == b"a" * 10
    assert overflow


def test_deflate_decoder_accepts_zlib_and_raw() -> None:
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw_body = raw.compress(b"hello") + raw.flush()
    for body in (zlib.compress(b"hello"), raw_body):
        decoder = decoder_for(b" Deflate ")
        assert decoder is not None
        out, overflow = decoder.decompress(body, 100)
        tail, _ = decoder.flush(100)
        assert out + tail == b"hello"
        assert not overflow


def test_corrupt_gzip_raises_body_decode_error() -> None:
    decoder = decoder_for(b"gzip")
    assert decoder is not None
    with pytest.raises(BodyDecodeError):
        decoder.decompress(b"not gzip at all", 100)


def test_unknown_encodings_are_left_alone() -> None:
    assert decoder_for(b"br") is None
    assert decoder_for(b"identity") is None
