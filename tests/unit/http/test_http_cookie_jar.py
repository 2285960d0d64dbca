"""The cookie jar: parsing, domain/path rules, Secure, expiry (time injected)."""

from __future__ import annotations

import calendar

import pytest

from phalanx.http.cookies import MAX_COOKIES, CookieJar, parse_cookie_date
from phalanx.http.url import parse_absolute_url

NOW = 1_700_000_000.0


def _url(url: str):  # type: ignore[no-untyped-def]
    return parse_absolute_url(url)


def _jar(*set_cookies: str, url: str = "http://www.example.test/a/b") -> CookieJar:
    jar = CookieJar()
    jar.store(set_cookies, _url(url), NOW)
    return jar


def test_host_only_cookie_is_sent_to_the_same_host_only() -> None:
    jar = _jar("id=1")

    assert jar.cookie_header(_url("http://www.example.test/a/x"), NOW) == "id=1"
    assert jar.cookie_header(_url("http://sub.www.example.test/a/x"), NOW) is None
    assert jar.cookie_header(_url("http://example.test/a/x"), NOW) is None


def test_domain_cookie_is_sent_to_subdomains() -> None:
    jar = _jar("id=1; Domain=.example.test; Path=/")

    assert jar.cookie_header(_url("http://example.test/"), NOW) == "id=1"
    assert jar.cookie_header(_url("http://api.example.test/x"), NOW) == "id=1"
    assert jar.cookie_header(_url("http://badexample.test/"), NOW) is None


def test_domain_not_matching_the_host_is_rejected() -> None:
    assert len(_jar("id=1; Domain=other.test")) == 0


def test_single_label_domain_is_rejected() -> None:
    assert len(_jar("id=1; Domain=test")) == 0


def test_default_path_is_the_directory_of_the_request_path() -> None:
    jar = _jar("id=1")  # set from /a/b -> default path /a

    assert jar.cookie_header(_url("http://www.example.test/a"), NOW) == "id=1"
    assert jar.cookie_header(_url("http://www.example.test/a/c/d"), NOW) == "id=1"
    assert jar.cookie_header(_url("http://www.example.test/ab"), NOW) is None
    assert jar.cookie_header(_url("http://www.example.test/"), NOW) is None


def test_explicit_path_is_matched_on_segment_boundaries() -> None:
    jar = _jar("id=1; Path=/api")

    assert jar.cookie_header(_url("http://www.example.test/api/v1"), NOW) == "id=1"
    assert jar.cookie_header(_url("http://www.example.test/apix"), NOW) is None


def test_longer_paths_come_first_then_older_cookies() -> None:
    jar = _jar("a=1; Path=/", "b=2; Path=/x/y", "c=3; Path=/x")

    header = jar.cookie_header(_url("http://www.example.test/x/y/z"), NOW)

    assert header == "b=2; c=3; a=1"


def test_secure_cookie_is_only_sent_over_https() -> None:
    jar = _jar("s=1; Secure; Path=/", url="https://www.example.test/")

    assert jar.cookie_header(_url("https://www.example.test/"), NOW) == "s=1"
    assert jar.cookie_header(_url("http://www.example.test/"), NOW) is None


def test_max_age_expires_the_cookie() -> None:
    jar = _jar("t=1; Max-Age=60; Path=/")
    url = _url("http://www.example.test/")

    assert jar.cookie_header(url, NOW + 59) == "t=1"
    assert jar.cookie_header(url, NOW + 60) is None
    assert len(jar) == 0


def test_max_age_wins_over_expires() -> None:
    jar = _jar("t=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60; Path=/")

    assert jar.cookie_header(_url("http://www.example.test/"), NOW) == "t=1"


def test_past_expires_deletes_a_stored_cookie() -> None:
    jar = _jar("t=1; Path=/")
    jar.store(
        ["t=x; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Path=/"],
        _url("http://www.example.test/"),
        NOW,
    )

    assert len(jar) == 0


def test_zero_max_age_deletes_a_stored_cookie() -> None:
    jar = _jar("t=1; Path=/")
    jar.store(["t=; Max-Age=0; Path=/"], _url("http://www.example.test/"), NOW)

    assert len(jar) == 0


def test_same_name_domain_and_path_replaces_the_value() -> None:
    jar = _jar("t=1; Path=/", "t=2; Path=/")

    assert jar.cookie_header(_url("http://www.example.test/"), NOW) == "t=2"
    assert len(jar) == 1


@pytest.mark.parametrize("header", ["novalue", "=x", "a\x01=b", "a=b\nc"])
def test_invalid_set_cookie_values_are_ignored(header: str) -> None:
    assert len(_jar(header)) == 0


def test_httponly_and_samesite_are_accepted_and_ignored() -> None:
    jar = _jar("h=1; HttpOnly; SameSite=Strict; Path=/")

    assert jar.cookie_header(_url("http://www.example.test/"), NOW) == "h=1"


def test_ip_host_cookies_do_not_domain_match_other_ips() -> None:
    jar = _jar("ip=1; Path=/", url="http://127.0.0.1:8080/")

    assert jar.cookie_header(_url("http://127.0.0.1:9090/"), NOW) == "ip=1"
    assert jar.cookie_header(_url("http://0.127.0.0.1/"), NOW) is None


def test_jar_size_is_bounded() -> None:
    jar = CookieJar()
    url = _url("http://www.example.test/")

    jar.store((f"c{i}=v; Path=/" for i in range(MAX_COOKIES + 10)), url, NOW)

    assert len(jar) == MAX_COOKIES
    assert jar.get("c0") is None
    assert jar.get(f"c{MAX_COOKIES + 9}") == "v"


def test_manual_set_and_get() -> None:
    jar = CookieJar()
    jar.set("k", "v", domain="www.example.test")

    assert "k" in jar
    assert jar.get("k") == "v"
    assert jar.cookie_header(_url("http://www.example.test/any"), NOW) == "k=v"
    with pytest.raises(ValueError, match="cookie"):
        jar.set("bad", "a;b", domain="x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Wed, 21 Oct 2015 07:28:00 GMT", (2015, 10, 21, 7, 28, 0)),
        ("Wednesday, 21-Oct-15 07:28:00 GMT", (2015, 10, 21, 7, 28, 0)),
        ("Sun Nov  6 08:49:37 1994", (1994, 11, 6, 8, 49, 37)),
        ("06 Nov 1994 08:49:37", (1994, 11, 6, 8, 49, 37)),
        ("1 jan 70 00:00:00", (1970, 1, 1, 0, 0, 0)),
    ],
)
def test_cookie_dates_parse(text: str, expected: tuple[int, ...]) -> None:
    assert parse_cookie_date(text) == float(calendar.timegm((*expected, 0, 0, 0)))


@pytest.mark.parametrize(
    "text", ["", "garbage", "31 Feb 2020 00:00:00", "21 Oct 1500 00:00:00", "21 Oct 2015 25:00:00"]
)
def test_invalid_cookie_dates_are_none(text: str) -> None:
    assert parse_cookie_date(text) is None
