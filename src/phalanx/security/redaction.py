"""Redaction: the one place that decides what is masked before anything is shown.

Every output (log lines, stats names, error messages and tracebacks, CSV/JSON
exports, the web UI, the audit log) passes its text through one
:class:`Redactor`. Pure: no I/O.

What is masked (replaced by :data:`MASK`, ``***``):

- known secret values, registered with :meth:`Redactor.add_secret` (the
  secrets reader registers every value it returns), together with their
  percent-encoded (``quote``, ``quote_plus``) and JSON-escaped forms. Values
  shorter than :data:`MIN_SECRET_LENGTH` characters (or only whitespace) are
  not registered: masking every ``a`` or ``42`` would destroy all output.
  Longer values are matched first, so a secret containing another is masked
  whole;
- values of sensitive names (:func:`is_sensitive_name`): headers such as
  ``Authorization``, ``Cookie``, ``X-Api-Key``; query parameters and JSON
  fields such as ``token``, ``password``, ``api_key``, ``client_secret``,
  ``sig``; in text as ``name=value``, ``"name": "value"`` (or single quotes,
  as in a Python ``repr``), and ``Header-Name: value`` lines;
- ``Bearer <token>`` and ``Basic <base64 user:pass>`` credentials, and the
  password in ``scheme://user:password@`` URLs.

Invariants: redaction is idempotent (redacting twice gives the same text),
it never raises on any ``str``, and text without secrets or sensitive names
comes back unchanged. Cost: one precompiled regex for the known values
(rebuilt only when a value is added), a few fixed regexes for the rest; fast
enough for every error message, not meant for every successful request.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from typing import cast
from urllib.parse import quote, quote_plus, urlsplit

__all__ = ["MASK", "MIN_SECRET_LENGTH", "Redactor", "is_sensitive_name"]

MASK = "***"
MIN_SECRET_LENGTH = 4

# Names are compared lower-cased with '-', '_', '.' and spaces removed.
_SENSITIVE_PARTS = (
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "authorization",
    "cookie",
    "session",
    "signature",
    "credential",
    "privatekey",
    "accesskey",
    "secretkey",
)
# "key" alone is Google's ?key= API key.
_SENSITIVE_EXACT = frozenset({"auth", "sig", "pwd", "pass", "xauth", "key"})
_NAME_NOISE = re.compile(r"[-_. ]")

_NAME = r"[A-Za-z0-9_.\-]+"
_QUOTED_FIELD = re.compile(
    r"""(?P<q>["'])(?P<name>[^"'\\\r\n]{1,100})(?P=q)(?P<sep>\s*:\s*)"""
    r"""(?:(?P<vq>["'])(?P<value>(?:\\.|(?!(?P=vq))[^\\\r\n])*)(?P=vq)"""
    r"""|(?P<bare>[^\s,}\]'"]+))"""
)
_PAIR = re.compile(rf"(?<![\w.\-])(?P<name>{_NAME})=(?P<value>[^&\s#;,\"'<>]*)")
_HEADER_LINE = re.compile(
    r"(?im)(?<![\w\-])(?P<name>(?:proxy-)?authorization|cookie|set-cookie|x-[\w\-]+)"
    r"(?P<sep>[ \t]*:[ \t]*)(?P<value>[^\r\n]*)"
)
_BEARER = re.compile(r"(?i)\b(?P<scheme>bearer)(?P<sep>\s+)(?P<value>[A-Za-z0-9\-._~+/]{8,}=*)")
_BASIC = re.compile(r"(?i)\b(?P<scheme>basic)(?P<sep>\s+)(?P<value>[A-Za-z0-9+/]{4,}=*)")
_URL_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@?#]*):(?P<value>[^/\s@?#]*)@"
)


def is_sensitive_name(name: str) -> bool:
    """Whether a header, query parameter or JSON field name holds a credential.

    Case-insensitive; ``-``, ``_`` and ``.`` are ignored, so ``X-Api-Key``,
    ``api_key`` and ``apiKey`` all match. Over-masking is preferred to leaking:
    any name containing token, secret, password, passwd, apikey,
    authorization, cookie, session, signature, credential, privatekey,
    accesskey or secretkey, and the exact names auth, sig, pwd, pass, key.
    """
    key = _NAME_NOISE.sub("", name.lower())
    return key in _SENSITIVE_EXACT or any(part in key for part in _SENSITIVE_PARTS)


class Redactor:
    """Masks known secret values and sensitive fields. Safe to share: adding a
    value swaps in a new precompiled pattern in one assignment."""

    __slots__ = ("_pattern", "_values")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._values: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        for value in secrets:
            self.add_secret(value)

    def add_secret(self, value: str) -> bool:
        """Register a secret value (and its encoded forms); ``False`` when it is
        too short to register (see :data:`MIN_SECRET_LENGTH`)."""
        if len(value) < MIN_SECRET_LENGTH or value.isspace():
            return False
        forms = {value, quote(value), quote(value, safe=""), quote_plus(value)}
        forms.add(json.dumps(value)[1:-1])
        forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
        values = self._values | {form for form in forms if len(form) >= MIN_SECRET_LENGTH}
        if values != self._values:
            ordered = sorted(values, key=lambda v: (-len(v), v))
            pattern = re.compile("|".join(re.escape(v) for v in ordered))
            self._values, self._pattern = values, pattern
        return True

    def redact_text(self, text: str) -> str:
        """Mask known values, sensitive ``name=value`` / ``"name": value`` /
        header lines, ``Bearer``/``Basic`` credentials and URL passwords."""
        if not text:
            return text
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        text = _URL_USERINFO.sub(_mask_userinfo, text)
        text = _QUOTED_FIELD.sub(_mask_quoted_field, text)
        text = _HEADER_LINE.sub(_mask_header_line, text)
        text = _PAIR.sub(_mask_pair, text)
        text = _BEARER.sub(_mask_credential, text)
        return _BASIC.sub(_mask_basic, text)

    def redact_header(self, name: str, value: str) -> str:
        """One header value: fully masked for a sensitive name (the auth scheme
        of ``Authorization: Bearer x`` is kept), otherwise :meth:`redact_text`."""
        if not is_sensitive_name(name):
            return self.redact_text(value)
        scheme, space, _credential = value.strip().partition(" ")
        if space and name.lower() in ("authorization", "proxy-authorization") and scheme.isalpha():
            return f"{scheme} {MASK}"
        return MASK

    def redact_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """A copy of ``headers`` (same keys, same order) with values redacted."""
        return {name: self.redact_header(name, value) for name, value in headers.items()}

    def redact_url(self, url: str) -> str:
        """Mask the user-info password (the user name too when it stands alone,
        as tokens often do), sensitive query and fragment values and known
        values; everything else is kept as written."""
        try:
            netloc = urlsplit(url).netloc
        except ValueError:
            netloc = ""
        userinfo, at, _host = netloc.rpartition("@")
        if at and userinfo and ":" not in userinfo and userinfo != MASK:
            url = url.replace(f"{userinfo}@", f"{MASK}@", 1)
        return self.redact_text(url)

    def redact_mapping(self, obj: Mapping[str, object]) -> dict[str, object]:
        """A redacted deep copy of JSON-like data: values under sensitive keys
        become ``***`` (``None`` and booleans are kept), strings (keys included)
        go through :meth:`redact_text`, lists and tuples are walked."""
        return cast("dict[str, object]", self._redact_value(obj))

    def _redact_key(self, key: object) -> object:
        return self.redact_text(key) if isinstance(key, str) else key

    def _redact_field(self, key: object, value: object) -> object:
        if isinstance(key, str) and is_sensitive_name(key):
            if value is None or isinstance(value, bool):
                return value
            return MASK
        return self._redact_value(value)

    def _redact_value(self, value: object) -> object:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, Mapping):
            return {self._redact_key(k): self._redact_field(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redact_value(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self._redact_value(item) for item in value)
        return value


def _mask_userinfo(match: re.Match[str]) -> str:
    return f"{match['head']}:{MASK}@"


def _mask_quoted_field(match: re.Match[str]) -> str:
    if not is_sensitive_name(match["name"]):
        return match[0]
    q = match["q"]
    head = f"{q}{match['name']}{q}{match['sep']}"
    if match["vq"] is not None:
        return f"{head}{match['vq']}{MASK}{match['vq']}"
    if match["bare"] in ("null", "None", "true", "false", "True", "False"):
        return match[0]
    return f"{head}{MASK}"


def _mask_header_line(match: re.Match[str]) -> str:
    if not is_sensitive_name(match["name"]) or not match["value"]:
        return match[0]
    scheme, space, _credential = match["value"].partition(" ")
    value = MASK
    if space and "authorization" in match["name"].lower() and scheme.isalpha():
        value = f"{scheme} {MASK}"
    return f"{match['name']}{match['sep']}{value}"


def _mask_pair(match: re.Match[str]) -> str:
    if not match["value"] or not is_sensitive_name(match["name"]):
        return match[0]
    return f"{match['name']}={MASK}"


def _mask_credential(match: re.Match[str]) -> str:
    return f"{match['scheme']}{match['sep']}{MASK}"


def _mask_basic(match: re.Match[str]) -> str:
    try:
        decoded = base64.b64decode(match["value"], validate=True)
    except (binascii.Error, ValueError):
        return match[0]
    if b":" not in decoded:
        return match[0]
    return _mask_credential(match)
