"""Default request names: path without query, other origins qualified, no secrets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phalanx.http.naming import MAX_NAME_LENGTH, default_request_name, fallback_request_name
from phalanx.http.url import Origin, parse_absolute_url, parse_base_url, resolve_url

BASE = parse_base_url("http://example.test:8080")


def _name(url: str) -> str:
    return default_request_name(resolve_url(url, BASE), BASE.url.origin)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/", "/"),
        ("/search?q=secret", "/search"),
        ("/items/3?token=abc&x=1", "/items/3"),
        ("/a#fragment", "/a"),
        ("http://example.test:8080/same?x=1", "/same"),
        ("http://other.test/path?k=v", "http://other.test/path"),
        ("https://other.test:8443/p", "https://other.test:8443/p"),
        ("https://other.test:443/p", "https://other.test/p"),
        ("http://user:pw@other.test/p?x", "http://other.test/p"),
        ("http://[::1]:9000/v6", "http://[::1]:9000/v6"),
    ],
)
def test_default_name(url: str, expected: str) -> None:
    assert _name(url) == expected


def test_same_host_other_port_is_another_origin() -> None:
    assert _name("http://example.test:9090/x") == "http://example.test:9090/x"


def test_without_base_every_name_is_qualified() -> None:
    url = parse_absolute_url("http://example.test/p?q=1")
    assert default_request_name(url, None) == "http://example.test/p"


def test_origin_equality_not_identity_decides() -> None:
    url = parse_absolute_url("http://example.test:8080/p")
    assert default_request_name(url, Origin("http", "example.test", 8080)) == "/p"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ftp://user:secret@host/file?token=1", "ftp://host/file"),
        ("/relative?token=x#frag", "/relative"),
        ("http://bad host/\x00x", "http://bad host/?x"),
        ("", "(invalid url)"),
    ],
)
def test_fallback_name_drops_query_userinfo_and_control_chars(raw: str, expected: str) -> None:
    assert fallback_request_name(raw) == expected


@given(st.text(max_size=2000))
def test_fallback_name_is_never_empty_and_bounded(raw: str) -> None:
    name = fallback_request_name(raw)
    assert 0 < len(name) <= MAX_NAME_LENGTH
    assert name.isprintable()


@given(st.text(max_size=100).filter(lambda s: "?" not in s and "S" not in s), st.text(max_size=100))
def test_fallback_name_never_contains_the_query(before: str, after: str) -> None:
    assert "SECRET" not in fallback_request_name(f"{before}?SECRET{after}")


@given(
    st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#?"),
        max_size=50,
    ),
    st.text(max_size=50),
)
def test_default_name_never_contains_the_query(path: str, query: str) -> None:
    name = _name(f"/x{path}?SECRET{query}")
    assert "SECRET" not in name
