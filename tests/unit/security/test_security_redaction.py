"""Redaction: known secret values, sensitive names, credentials, idempotence."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phalanx.security.redaction import MASK, MIN_SECRET_LENGTH, Redactor, is_sensitive_name

SECRET = "s3cr3t-V4lue"


@pytest.fixture
def redactor() -> Redactor:
    return Redactor([SECRET])


# --- sensitive names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "Proxy-Authorization",
        "Cookie",
        "Set-Cookie",
        "X-Api-Key",
        "X-Auth-Token",
        "X-CSRF-Token",
        "X-Amz-Security-Token",
        "X-Session-Id",
        "X-My-Secret",
        "X-Password",
        "token",
        "password",
        "passwd",
        "secret",
        "api_key",
        "apikey",
        "apiKey",
        "API-KEY",
        "access_token",
        "refresh_token",
        "client_secret",
        "auth",
        "session",
        "sig",
        "signature",
        "X-Hub-Signature",
        "id_token",
        "oauth_token",
        "pwd",
        "db.password",
        "aws_credentials",
    ],
)
def test_sensitive_names_are_recognised(name: str) -> None:
    assert is_sensitive_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "Accept",
        "Content-Type",
        "User-Agent",
        "Host",
        "page",
        "q",
        "author",
        "authors",
        "signal",
        "design",
        "id",
        "name",
        "status",
        "passenger",
        "X-Request-Id",
        "sort",
    ],
)
def test_ordinary_names_are_not_sensitive(name: str) -> None:
    assert not is_sensitive_name(name)


# --- known values ---------------------------------------------------------------------------


def test_known_value_is_masked_everywhere_in_text(redactor: Redactor) -> None:
    text = f"failed with {SECRET}; again:{SECRET}!"
    assert redactor.redact_text(text) == f"failed with {MASK}; again:{MASK}!"


def test_values_shorter_than_the_minimum_are_not_registered() -> None:
    redactor = Redactor()
    assert not redactor.add_secret("abc")
    assert not redactor.add_secret("")
    assert not redactor.add_secret("    ")
    assert redactor.redact_text("abc abc") == "abc abc"
    assert redactor.add_secret("abcd")
    assert redactor.redact_text("abcd abc") == f"{MASK} abc"
    assert MIN_SECRET_LENGTH == 4


def test_overlapping_secrets_mask_the_longest_first() -> None:
    redactor = Redactor(["abcd", "abcdefgh", "efghijkl"])
    assert redactor.redact_text("xx abcdefghijkl yy") == f"xx {MASK}ijkl yy"
    assert redactor.redact_text("abcdefgh") == MASK
    assert "abcd" not in redactor.redact_text("zabcdz")


@pytest.mark.parametrize(
    "secret", ["a.b*c+d?", "(x|y)[z]", "^$\\d{3}", "p@ss w0rd/%", "ü-geheim-ß", "日本語のパス"]
)
def test_secrets_with_metacharacters_and_unicode_are_masked_literally(secret: str) -> None:
    redactor = Redactor([secret])
    assert redactor.redact_text(f"<{secret}>") == f"<{MASK}>"
    assert (
        redactor.redact_text("ordinary text with a.b and x|y") == "ordinary text with a.b and x|y"
    )


@pytest.mark.parametrize("encode", [quote, quote_plus, lambda v: quote(v, safe="")])
def test_percent_encoded_forms_of_a_secret_are_masked(encode: object) -> None:
    secret = "p@ss w0rd/ü"
    redactor = Redactor([secret])
    encoded = encode(secret)  # type: ignore[operator]
    url = f"https://api.example.test/items/{encoded}/x"
    assert redactor.redact_text(url) == f"https://api.example.test/items/{MASK}/x"


def test_json_escaped_form_of_a_secret_is_masked() -> None:
    secret = 'quo"te\\ü'
    redactor = Redactor([secret])
    dumped = json.dumps({"note": secret})
    assert secret not in redactor.redact_text(dumped)
    assert json.dumps(secret)[1:-1] not in redactor.redact_text(dumped)
    assert redactor.redact_text(dumped) == json.dumps({"note": MASK})


def test_secret_in_url_path_segment_is_masked(redactor: Redactor) -> None:
    assert redactor.redact_url(f"http://h.test/users/{SECRET}/x") == f"http://h.test/users/{MASK}/x"


def test_adding_a_secret_later_takes_effect(redactor: Redactor) -> None:
    assert redactor.redact_text("later-secret") == "later-secret"
    redactor.add_secret("later-secret")
    assert redactor.redact_text("later-secret") == MASK
    assert redactor.redact_text(SECRET) == MASK


# --- structural patterns in text ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /x?token=abc&page=2", f"GET /x?token={MASK}&page=2"),
        ("/login?user=bob&password=hunter2", f"/login?user=bob&password={MASK}"),
        ("a?api_key=K1&apikey=K2&sig=S#frag", f"a?api_key={MASK}&apikey={MASK}&sig={MASK}#frag"),
        ("?access_token=a.b.c&refresh_token=r", f"?access_token={MASK}&refresh_token={MASK}"),
        ("client_secret=xyz passwd=p2", f"client_secret={MASK} passwd={MASK}"),
        ("session=deadbeef; theme=dark", f"session={MASK}; theme=dark"),
        ("token=", "token="),
        ('{"password": "hunter2", "user": "bob"}', f'{{"password": "{MASK}", "user": "bob"}}'),
        ('{"token":"a\\"b", "n": 1}', f'{{"token":"{MASK}", "n": 1}}'),
        ('{"api_key": 12345, "x": 1}', f'{{"api_key": {MASK}, "x": 1}}'),
        ('{"secret": null, "auth": true}', '{"secret": null, "auth": true}'),
        ("{'password': 'hunter2', 'n': 1}", f"{{'password': '{MASK}', 'n': 1}}"),
        ("Authorization: Bearer abc.def.ghi", f"Authorization: Bearer {MASK}"),
        ("authorization:Basic dXNlcjpwYXNz", f"authorization:Basic {MASK}"),
        ("Cookie: a=1; b=2\nAccept: */*", f"Cookie: {MASK}\nAccept: */*"),
        ("Set-Cookie: sid=1; HttpOnly", f"Set-Cookie: {MASK}"),
        ("X-Api-Key: k-123\r\nHost: h", f"X-Api-Key: {MASK}\r\nHost: h"),
        ("X-Request-Id: 42", "X-Request-Id: 42"),
        ("sent Bearer eyJhbGciOi.eyJzdWIi.sig in header", f"sent Bearer {MASK} in header"),
        ("sent basic dXNlcjpwYXNz ok", f"sent basic {MASK} ok"),
        ("http://bob:hunter2@h.test/x", f"http://bob:{MASK}@h.test/x"),
        ("see https://u:p%40ss@h.test:8080/?q=1", f"see https://u:{MASK}@h.test:8080/?q=1"),
    ],
)
def test_sensitive_fields_in_text_are_masked(text: str, expected: str) -> None:
    assert Redactor().redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "connection refused by 10.0.0.1:443",
        "GET /items?page=2&sort=name",
        "Basic usage of the API is documented",
        "Basic test passed",
        "the token count was 3; password policy changed",
        "author=alice signal=3 design=x",
        "http://h.test:8080/path@x",
        '{"user": "bob", "items": [1, 2]}',
        'Traceback (most recent call last):\n  File "x.py", line 3, in <module>',
        "ünïcödé text ✓ stays",
    ],
)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert Redactor([SECRET]).redact_text(text) == text


# --- headers, URLs, mappings ----------------------------------------------------------------


def test_redact_headers_masks_sensitive_values_and_keeps_order(redactor: Redactor) -> None:
    headers = {
        "Authorization": "Bearer abc",
        "Cookie": "a=b",
        "X-Custom-Token": "t",
        "Accept": "application/json",
        "X-Trace": f"id {SECRET}",
    }
    assert redactor.redact_headers(headers) == {
        "Authorization": f"Bearer {MASK}",
        "Cookie": MASK,
        "X-Custom-Token": MASK,
        "Accept": "application/json",
        "X-Trace": f"id {MASK}",
    }
    assert list(redactor.redact_headers(headers)) == list(headers)


def test_authorization_without_scheme_is_fully_masked(redactor: Redactor) -> None:
    assert redactor.redact_header("Authorization", "rawtoken") == MASK
    assert redactor.redact_header("Proxy-Authorization", "Basic Zm9vOmJhcg==") == f"Basic {MASK}"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://bob:pw@h.test/x?q=1", f"https://bob:{MASK}@h.test/x?q=1"),
        ("https://ghp_tokenvalue@github.test/r", f"https://{MASK}@github.test/r"),
        (
            "https://h.test/cb?code=1&access_token=abc#id_token=x",
            f"https://h.test/cb?code=1&access_token={MASK}#id_token={MASK}",
        ),
        (
            "https://h.test/a?X-Amz-Signature=abc&X-Amz-Date=1",
            f"https://h.test/a?X-Amz-Signature={MASK}&X-Amz-Date=1",
        ),
        ("https://h.test/plain/path?page=1", "https://h.test/plain/path?page=1"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://[::1/broken?token=1", f"http://[::1/broken?token={MASK}"),
    ],
)
def test_redact_url_masks_credentials_and_keeps_the_rest(url: str, expected: str) -> None:
    assert Redactor().redact_url(url) == expected


def test_redact_mapping_walks_json_like_data(redactor: Redactor) -> None:
    data: dict[str, object] = {
        "name": "GET /x?token=abc",
        "password": "hunter2",
        "api_key": 1234,
        "session": {"id": 3},
        "auth": None,
        "secret": False,
        "nested": {"list": [{"client_secret": "c"}, f"msg {SECRET}", 5, ("x", SECRET)]},
        f"/items/{SECRET}": {"count": 2},
        "ok": 1.5,
    }
    assert redactor.redact_mapping(data) == {
        "name": f"GET /x?token={MASK}",
        "password": MASK,
        "api_key": MASK,
        "session": MASK,
        "auth": None,
        "secret": False,
        "nested": {"list": [{"client_secret": MASK}, f"msg {MASK}", 5, ("x", MASK)]},
        f"/items/{MASK}": {"count": 2},
        "ok": 1.5,
    }
    assert data["password"] == "hunter2"  # the input is not modified


# --- idempotence ----------------------------------------------------------------------------

_TEXTS = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)


@given(
    prefix=_TEXTS,
    suffix=_TEXTS,
    secret=st.text(alphabet="abcXYZ019-_.%@ü", min_size=4, max_size=12),
)
def test_property_redaction_is_idempotent_and_removes_the_secret(
    prefix: str, suffix: str, secret: str
) -> None:
    redactor = Redactor([secret])
    text = f"{prefix}{secret}{suffix}&token={secret}"
    once = redactor.redact_text(text)
    assert redactor.redact_text(once) == once
    assert f"&token={MASK}" in once
    assert secret not in once
    once_url = redactor.redact_url(f"https://u:{secret}@h.test/{quote(secret)}?{prefix}")
    assert redactor.redact_url(once_url) == once_url


@given(text=_TEXTS)
def test_property_redact_text_never_raises_and_is_idempotent(text: str) -> None:
    redactor = Redactor([SECRET])
    once = redactor.redact_text(text)
    assert redactor.redact_text(once) == once


@pytest.mark.parametrize("name", ["key", "access_key", "AWSAccessKeyId", "aws_secret_key"])
def test_common_api_key_names_are_sensitive(name: str) -> None:
    assert is_sensitive_name(name)


def test_a_google_style_key_parameter_is_masked_in_urls() -> None:
    assert "AIzaSyFAKE" not in Redactor().redact_url("https://maps.example/api?key=AIzaSyFAKE&q=1")
