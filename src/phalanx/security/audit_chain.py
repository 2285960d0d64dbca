"""The audit log's hash chain: entries, their one canonical encoding, verification.

Pure: no I/O, no clock (the caller passes the time). The file appender and
reader live in :mod:`phalanx.security.audit`.

An entry
--------
``seq`` (1, 2, 3, ...), ``time`` (UTC, ``YYYY-MM-DDTHH:MM:SS.mmmZ``), ``actor``
(who), ``source`` (from where: a client address, ``cli`` or ``local``),
``action`` (one of :class:`AuditAction`), ``details`` (what: a flat mapping of
at most :data:`MAX_DETAIL_KEYS` keys to ``str | int | float | bool | None``),
``prev`` (the previous entry's ``hash``; :data:`ZERO_HASH` for entry 1) and
``hash``.

Encoding (what an external tool needs to re-verify a file)
----------------------------------------------------------
The *body* of an entry is the JSON object of every field except ``hash``,
encoded canonically: keys sorted (recursively), no whitespace, ASCII only
(every other character as ``\\uXXXX``; surrogate pairs above U+FFFF), floats
as Python's shortest round-trip ``repr``, no NaN or infinities. In Python::

    json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
               allow_nan=False)

``hash`` is the lower-case hex SHA-256 of the body's bytes. A line of the file
is the body with ``,"hash":"<64 hex>"`` inserted before its final ``}``,
then ``\\n``. So any tool verifies a line ``L`` (bytes, newline included)
without re-encoding anything::

    digest = L[-67:-3]                  # the 64 hex digits
    body = L[:-76] + b"}"               # strip ',"hash":"<64>"}\\n', close the object
    sha256(body).hexdigest() == digest  # the entry is intact
    # and the next line's "prev" equals digest, entry 1's "prev" is 64 zeros

The line is an ordinary JSON object too (``jq`` reads the file as is).
:func:`verify_lines` also requires every line to be exactly the canonical
encoding of what it decodes to, so each entry has one byte representation.

Strings are Unicode text: :func:`make_entry` replaces a lone surrogate
code point with U+FFFD; :func:`verify_lines` refuses one.

Bounds (so a line is always far below :data:`MAX_LINE_BYTES`, 64 KiB): a
string (``actor``, ``source``, each detail value) is at most
:data:`MAX_TEXT_BYTES` bytes once JSON-escaped: 1000 plain ASCII characters,
fewer when characters need escaping. :func:`make_entry` cuts a longer string
(after redaction, so a cut never splits a secret out of the redactor's
reach) and ends it with ``…``; :func:`verify_lines` refuses one. Integers
stay within +/-(2**53 - 1), the range every JSON reader keeps exactly.

What verification detects, and what it cannot
---------------------------------------------
Detected, at the first line concerned: an edited entry (its hash no longer
matches its content: :attr:`Problem.EDITED`), a removed, inserted, duplicated
or reordered entry (``prev`` or ``seq`` does not follow:
:attr:`Problem.REORDERED_OR_REMOVED`), the first entries removed (the file
does not start at seq 1 with ``prev`` zeros: same reason), a line that is not
an entry (:attr:`Problem.MALFORMED`) and a last line without its newline (an
interrupted write: :attr:`Problem.TRUNCATED_LINE`).

Not detectable from the file alone, by construction:

- removing the *last* entries (the shorter file is a valid chain). Keep an
  anchor elsewhere: a head hash (``expect_head``: the chain must still
  contain that entry) or a count (``min_entries``);
- rewriting the file from some entry onward with recomputed hashes: the chain
  has no secret key, so whoever can write the file can write a new valid
  chain. Again only an anchor recorded outside the file (the head hash shown
  in the UI, printed by ``phalanx audit verify``, copied to another system)
  exposes it, for every entry up to the anchor;
- the truth of the content: the chain proves the entries were not changed
  after they were written, not that the clock or the caller was right.
  Times are not required to increase (wall clocks step back).

Verification stops at the first problem; lines after it are not examined.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import hashlib
import json
import math
import re
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "MAX_DETAIL_KEYS",
    "MAX_INT",
    "MAX_LINE_BYTES",
    "MAX_TEXT_BYTES",
    "ZERO_HASH",
    "AuditAction",
    "AuditEntry",
    "AuditHead",
    "DetailValue",
    "Problem",
    "VerifyResult",
    "entry_hash",
    "entry_line",
    "format_time",
    "is_hash",
    "make_entry",
    "verify_lines",
]

DetailValue = str | int | float | bool | None

ZERO_HASH: Final = "0" * 64
MAX_LINE_BYTES: Final = 64 * 1024
MAX_TEXT_BYTES: Final = 1000
MAX_DETAIL_KEYS: Final = 32
MAX_INT: Final = 2**53 - 1
CUT_MARK: Final = "…"

_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}\Z")
_HASH = re.compile(r"[0-9a-f]{64}\Z")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")
_FIELDS: Final = frozenset({"action", "actor", "details", "prev", "seq", "source", "time"})
_SUFFIX_HEAD: Final = b',"hash":"'
_SUFFIX_LEN: Final = len(_SUFFIX_HEAD) + 64 + len(b'"}\n')  # 76
_SHORT_ESCAPES: Final = frozenset('"\\\b\f\n\r\t')


class AuditAction(enum.StrEnum):
    """The closed set of audited actions."""

    LOGIN = "login"
    LOGOUT = "logout"
    LOGIN_FAILED = "login_failed"
    RUN_START = "run_start"
    RUN_CHANGE = "run_change"
    RUN_STOP = "run_stop"
    RUN_RESET = "run_reset"
    USER_ADD = "user_add"
    USER_REMOVE = "user_remove"
    USER_PASSWORD = "user_password"  # noqa: S105 - an action name, not a credential
    TOKEN_CREATE = "token_create"  # noqa: S105 - an action name, not a credential
    TOKEN_REVOKE = "token_revoke"  # noqa: S105 - an action name, not a credential
    WORKER_JOIN = "worker_join"
    WORKER_REFUSED = "worker_refused"
    SETTINGS_CHANGE = "settings_change"


_ACTIONS: Final = frozenset(action.value for action in AuditAction)


class Problem(enum.StrEnum):
    """Why a file is not an intact chain (the first problem found)."""

    MALFORMED = "malformed"
    EDITED = "edited"
    REORDERED_OR_REMOVED = "reordered or removed"
    TRUNCATED_LINE = "truncated last line"
    HEAD_NOT_FOUND = "expected head not found"
    TOO_FEW = "fewer entries than expected"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry. Construction checks every field's type, format and bound
    (``ValueError``/``TypeError``) but not that ``hash`` matches the content:
    that is a property of a chain, checked by :func:`verify_lines`.
    ``details`` is stored as a read-only copy."""

    seq: int
    time: str
    actor: str
    source: str
    action: str
    details: Mapping[str, DetailValue]
    prev: str
    hash: str

    def __post_init__(self) -> None:
        if type(self.seq) is not int or not 1 <= self.seq <= MAX_INT:
            raise ValueError(f"seq must be an integer from 1 to {MAX_INT}")
        _check_time(self.time)
        _check_text("actor", self.actor)
        _check_text("source", self.source)
        if not isinstance(self.action, str) or self.action not in _ACTIONS:
            raise ValueError(f"unknown action {_short(self.action)}")
        if not isinstance(self.details, Mapping):
            raise TypeError("details must be a mapping")
        details = dict(self.details)
        _check_details(details)
        object.__setattr__(self, "action", str(self.action))
        object.__setattr__(self, "details", types.MappingProxyType(details))
        for name in ("prev", "hash"):
            value = getattr(self, name)
            if not isinstance(value, str) or _HASH.match(value) is None:
                raise ValueError(f"{name} must be 64 lower-case hex digits")

    def as_dict(self) -> dict[str, object]:
        """A plain JSON-ready copy, ``hash`` included (for the UI and exports)."""
        return {
            "seq": self.seq, "time": self.time, "actor": self.actor, "source": self.source,
            "action": self.action, "details": dict(self.details), "prev": self.prev,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class AuditHead:
    """Where a chain ends: its entry count and last hash (:data:`ZERO_HASH` when empty).
    Record it outside the file to detect later truncation or rewriting."""

    count: int
    hash: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of :func:`verify_lines`.

    ``entries``, ``head`` and ``last`` describe the intact prefix: the whole
    chain when ``ok``, the entries before ``first_bad_line`` otherwise.
    ``first_bad_line`` (1-based) is ``None`` when the chain is intact or when
    the problem is about the file as a whole (:attr:`Problem.HEAD_NOT_FOUND`,
    :attr:`Problem.TOO_FEW`). ``detail`` is one human sentence (``""`` when ok).
    ``anchor_seq`` is the seq of the entry whose hash is ``expect_head`` (0 for
    :data:`ZERO_HASH`), ``None`` when not asked or not found. ``tail`` holds up
    to ``keep_last`` of the last intact entries, oldest first.
    """

    ok: bool
    entries: int
    head: str
    first_bad_line: int | None = None
    reason: Problem | None = None
    detail: str = ""
    last: AuditEntry | None = None
    anchor_seq: int | None = None
    tail: tuple[AuditEntry, ...] = field(default=())


def is_hash(text: str) -> bool:
    """Whether ``text`` is a hash as written in the log: 64 lower-case hex digits."""
    return _HASH.match(text) is not None


def format_time(epoch_seconds: float) -> str:
    """``epoch_seconds`` as the log writes times: ``2024-05-01T12:00:00.123Z`` (UTC)."""
    if not math.isfinite(epoch_seconds):
        raise ValueError("time must be finite")
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def make_entry(
    prev: AuditEntry | None,
    now_iso: str,
    actor: str,
    source: str,
    action: AuditAction | str,
    details: Mapping[str, DetailValue] | None = None,
    *,
    redact: Callable[[str], str] | None = None,
) -> AuditEntry:
    """The entry that follows ``prev`` (entry 1 when ``None``).

    Every string (``actor``, ``source``, detail values; not detail keys, which
    are restricted to ``[A-Za-z0-9_.-]``) has lone surrogates replaced, goes
    through ``redact``, then is cut to :data:`MAX_TEXT_BYTES`. A wrong type,
    an unknown action, a bad key, more than :data:`MAX_DETAIL_KEYS` keys, a
    non-finite float or an integer beyond :data:`MAX_INT` is a bug in the
    caller: ``ValueError`` or ``TypeError``, nothing is made.
    """
    if details is None:
        details = {}
    if not isinstance(details, Mapping):
        raise TypeError("details must be a mapping")
    if len(details) > MAX_DETAIL_KEYS:
        raise ValueError(f"details has {len(details)} keys; at most {MAX_DETAIL_KEYS}")
    clean: dict[str, DetailValue] = {}
    for key, value in details.items():
        clean[key] = _clean_text(f"details[{_short(key)}]", value, redact) if isinstance(
            value, str) else value
    seq, prev_hash = (1, ZERO_HASH) if prev is None else (prev.seq + 1, prev.hash)
    draft = AuditEntry(
        seq=seq, time=now_iso, actor=_clean_text("actor", actor, redact),
        source=_clean_text("source", source, redact), action=action, details=clean,
        prev=prev_hash, hash=ZERO_HASH,
    )
    return dataclasses.replace(draft, hash=entry_hash(draft))


def entry_hash(entry: AuditEntry) -> str:
    """The hash ``entry`` must carry: SHA-256 hex of its canonical body."""
    return hashlib.sha256(_encode_body(entry)).hexdigest()


def entry_line(entry: AuditEntry) -> bytes:
    """The file line of ``entry`` (newline included); ``ValueError`` when its
    ``hash`` does not match its content (such a line would read as edited)."""
    body = _encode_body(entry)
    if hashlib.sha256(body).hexdigest() != entry.hash:
        raise ValueError(f"entry {entry.seq}: hash does not match its content")
    return body[:-1] + _SUFFIX_HEAD + entry.hash.encode("ascii") + b'"}\n'


def verify_lines(
    lines: Iterable[bytes],
    *,
    expect_head: str | None = None,
    min_entries: int | None = None,
    keep_last: int = 0,
) -> VerifyResult:
    """Check that ``lines`` (each with its ``\\n``) form an intact chain from entry 1.

    ``expect_head`` (an earlier head hash) must be the hash of some entry of
    the chain: entries appended after it are fine, entries removed from the
    end up to it, or a chain rewritten before it, are reported. ``min_entries``
    requires at least that many entries. Reads ``lines`` lazily and stops at
    the first problem; keeps at most ``keep_last`` entries in memory.
    """
    if expect_head is not None and not is_hash(expect_head):
        raise ValueError("expect_head must be 64 lower-case hex digits")
    if keep_last < 0:
        raise ValueError("keep_last must be >= 0")
    tail: collections.deque[AuditEntry] = collections.deque(maxlen=keep_last)
    last: AuditEntry | None = None
    anchor_seq = 0 if expect_head == ZERO_HASH else None

    def failed(line: int | None, reason: Problem, detail: str) -> VerifyResult:
        return VerifyResult(
            ok=False, entries=last.seq if last else 0, head=last.hash if last else ZERO_HASH,
            first_bad_line=line, reason=reason, detail=detail, last=last,
            anchor_seq=anchor_seq, tail=tuple(tail),
        )

    for number, line in enumerate(lines, start=1):
        outcome = _read_line(line)
        if isinstance(outcome, tuple):
            return failed(number, *outcome)
        link = _link_problem(last, outcome)
        if link:
            return failed(number, Problem.REORDERED_OR_REMOVED, link)
        last = outcome
        if keep_last:
            tail.append(outcome)
        if outcome.hash == expect_head:
            anchor_seq = outcome.seq
    count = last.seq if last else 0
    if expect_head is not None and anchor_seq is None:
        return failed(None, Problem.HEAD_NOT_FOUND,
                      f"no entry has hash {expect_head}: entries were removed from the end "
                      "or rewritten, or this is another log")
    if min_entries is not None and count < min_entries:
        return failed(None, Problem.TOO_FEW,
                      f"{count} entries, expected at least {min_entries}: entries were removed "
                      "from the end")
    return VerifyResult(ok=True, entries=count, head=last.hash if last else ZERO_HASH,
                        last=last, anchor_seq=anchor_seq, tail=tuple(tail))


def _read_line(line: bytes) -> AuditEntry | tuple[Problem, str]:
    """One line as an entry whose hash matches, or why it is not one."""
    if len(line) > MAX_LINE_BYTES:
        return Problem.MALFORMED, f"line longer than {MAX_LINE_BYTES} bytes"
    if not line.endswith(b"\n"):
        return Problem.TRUNCATED_LINE, "the line has no newline: an interrupted write or a cut"
    digest = line[-67:-3]
    if (len(line) < _SUFFIX_LEN + 2 or line[:1] != b"{" or line[-_SUFFIX_LEN:-67] != _SUFFIX_HEAD
            or line[-3:] != b'"}\n' or _HASH.match(digest.decode("latin-1")) is None):
        return Problem.MALFORMED, 'not an audit entry (no trailing "hash" field)'
    body = line[:-_SUFFIX_LEN] + b"}"
    try:
        fields = json.loads(body.decode("ascii"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return Problem.MALFORMED, f"not canonical ASCII JSON ({type(exc).__name__})"
    if not isinstance(fields, dict) or set(fields) != _FIELDS:
        return Problem.MALFORMED, f"an entry has exactly the fields {', '.join(sorted(_FIELDS))}"
    try:
        entry = AuditEntry(hash=digest.decode("ascii"), **fields)
    except (TypeError, ValueError) as exc:
        return Problem.MALFORMED, str(exc)
    if hashlib.sha256(body).hexdigest() != entry.hash:
        return Problem.EDITED, "the entry's hash does not match its content"
    if _encode_body(entry) != body:
        return Problem.EDITED, "the entry is not in canonical form (rewritten by hand)"
    return entry


def _link_problem(last: AuditEntry | None, entry: AuditEntry) -> str:
    if last is None:
        if entry.seq != 1 or entry.prev != ZERO_HASH:
            return (f"the file starts at entry {entry.seq}, not at entry 1 with prev 0...0: "
                    "the first entries were removed")
        return ""
    if entry.prev != last.hash:
        return (f"entry {entry.seq} does not follow entry {last.seq} (prev mismatch): an entry "
                "was removed, inserted, reordered or rewritten")
    if entry.seq != last.seq + 1:
        return f"entry {entry.seq} follows entry {last.seq} (seq gap)"
    return ""


def _short(value: object) -> str:
    """``repr(value)``, at most 60 characters (errors quote what they refuse)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not allowed")


def _encode_body(entry: AuditEntry) -> bytes:
    body = {
        "action": entry.action, "actor": entry.actor, "details": dict(entry.details),
        "prev": entry.prev, "seq": entry.seq, "source": entry.source, "time": entry.time,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def _escaped_len(text: str) -> int:
    """Bytes of ``text`` inside a JSON string written with ``ensure_ascii``."""
    return len(json.dumps(text, ensure_ascii=True)) - 2


def _char_escaped_len(char: str) -> int:
    code = ord(char)
    if char in _SHORT_ESCAPES:
        return 2
    if 0x20 <= code <= 0x7E:
        return 1
    return 12 if code > 0xFFFF else 6


def _clean_text(name: str, value: object, redact: Callable[[str], str] | None) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not _is_unicode(value):  # lone surrogates: not text, and not portable JSON
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if redact is not None:
        value = redact(value)
        if not isinstance(value, str):
            raise TypeError("redact must return a str")
    if len(value) * 12 <= MAX_TEXT_BYTES or _escaped_len(value) <= MAX_TEXT_BYTES:
        return value
    budget = MAX_TEXT_BYTES - _escaped_len(CUT_MARK)
    used = 0
    for index, char in enumerate(value):
        used += _char_escaped_len(char)
        if used > budget:
            return value[:index] + CUT_MARK
    return value  # pragma: no cover - unreachable: the whole text was too long


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not _is_unicode(value):
        raise ValueError(f"{name} holds a lone surrogate (not valid Unicode)")
    if len(value) * 12 > MAX_TEXT_BYTES and _escaped_len(value) > MAX_TEXT_BYTES:
        raise ValueError(f"{name} is longer than {MAX_TEXT_BYTES} bytes once JSON-escaped")


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_time(value: object) -> None:
    if not isinstance(value, str) or _TIME.match(value) is None:
        raise ValueError("time must be UTC as YYYY-MM-DDTHH:MM:SS.mmmZ")
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")  # validates the calendar date
    except ValueError:
        raise ValueError(f"time {value!r} is not a real date and time") from None


def _check_details(details: Mapping[Any, object]) -> None:
    if len(details) > MAX_DETAIL_KEYS:
        raise ValueError(f"details has {len(details)} keys; at most {MAX_DETAIL_KEYS}")
    for key, value in details.items():
        if not isinstance(key, str) or _KEY.match(key) is None:
            raise ValueError(f"detail key {_short(key)}: 1 to 64 of A-Z a-z 0-9 _ . - "
                             "(not starting with . or -)")
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, int):
            if not -MAX_INT <= value <= MAX_INT:
                raise ValueError(f"details[{key!r}]: integer beyond +/-{MAX_INT}")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"details[{key!r}]: a float must be finite")
        elif isinstance(value, str):
            _check_text(f"details[{key!r}]", value)
        else:
            raise TypeError(f"details[{key!r}]: {type(value).__name__} is not "
                            "str, int, float, bool or None")
