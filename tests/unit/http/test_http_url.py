"""URL resolution: origins, targets safe for the request line, user info."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phalanx.http.url import (
    InvalidUrl,
    Origin,
    append_params,
    parse_absolute_url,
    parse_base_url,
    resolve_location,
    resolve_url,
)

BASE = parse_base_url("https://Example.TEST/api/")


def test_base_url_parts_are_normalized() -> None:
    assert BASE.url.origin == Origin("https", "example.test", 443)
    assert BASE.prefix == "/api"
    assert str(BASE.url.origin) == "https://example.test"


def test_absolute_path_extends_the_base_prefix() -> None:
    url = resolve_url("/items?x=1", BASE)

    assert url.origin is BASE.url.origin
    assert url.target == "/api/items?x=1"
    assert url.path == "/api/items"


def test_relative_path_follows_rfc3986_against_the_base() -> None:
    assert resolve_url("items", BASE).target == "/api/items"


def test_scheme_relative_url_takes_the_base_scheme() -> None:
    url = resolve_url("//other.test/x", BASE)

    assert url.origin == Origin("https", "other.test", 443)


def test_absolute_url_ignores_the_base() -> None:
    url = resolve_url("http://other.test:8080/p?q#frag", BASE)

    assert url.origin == Origin("http", "other.test", 8080)
    assert url.target == "/p?q"
    assert str(url) == "http://other.test:8080/p?q"


@pytest.mark.parametrize(
    "bad",
    [
        "ftp://host/x",
        "http:///nohost",
        "http://host:99999/",
        "http://host:abc/",
        "http://bad_host!/",
        "http://[zz::1]/",
    ],
)
def test_invalid_urls_raise_invalid_url_without_echoing_them(bad: str) -> None:
    with pytest.raises(InvalidUrl) as info:
        parse_absolute_url(bad)
    assert bad not in str(info.value)


def test_relative_url_without_base_is_invalid() -> None:
    with pytest.raises(InvalidUrl):
        resolve_url("/x", None)


def test_user_info_becomes_basic_authorization() -> None:
    url = parse_absolute_url("http://us%40er:p%3Ass@host.test/")

    assert url.authorization == "Basic " + base64.b64encode(b"us@er:p:ss").decode()
    assert "p%3Ass" not in str(url)


def test_idna_host_is_encoded() -> None:
    assert parse_absolute_url("http://bücher.test/").origin.host == "xn--bcher-kva.test"


def test_ipv6_authority_has_brackets_and_port() -> None:
    origin = parse_absolute_url("http://[::1]:8080/").origin

    assert origin.host == "::1"
    assert origin.authority == "[::1]:8080"


def test_redirect_location_resolves_against_the_current_url() -> None:
    current = parse_absolute_url("http://host.test/a/b?x=1")

    assert resolve_location("c", current).target == "/a/c"
    assert resolve_location("/d?y", current).target == "/d?y"
    assert resolve_location("https://o.test/", current).origin == Origin("https", "o.test", 443)
    with pytest.raises(InvalidUrl):
        resolve_location("  ", current)


@pytest.mark.parametrize(
    ("target", "params", "expected"),
    [
        ("/p", {"a": 1}, "/p?a=1"),
        ("/p?x=1", {"a": "b c"}, "/p?x=1&a=b+c"),
        ("/p?", [("a", 1.5)], "/p?a=1.5"),
        ("/p", {}, "/p"),
    ],
)
def test_append_params(target: str, params: object, expected: str) -> None:
    assert append_params(target, params) == expected  # type: ignore[arg-type]


@given(st.text(max_size=80))
def test_targets_are_always_safe_for_the_request_line(path: str) -> None:
    try:
        url = resolve_url("/" + path, BASE)
    except InvalidUrl:
        return
    assert url.target.startswith("/")
    assert all(0x21 <= ord(ch) <= 0x7E for ch in url.target)
    assert "#" not in url.target
