"""Audit hash chain: canonical lines, every tampering the issue names is detected
at the right line, truncation only against an anchor, fields bounded and redacted."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phalanx.security.audit_chain import (
    CUT_MARK,
    MAX_DETAIL_KEYS,
    MAX_INT,
    MAX_LINE_BYTES,
    MAX_TEXT_BYTES,
    ZERO_HASH,
    AuditAction,
    AuditEntry,
    DetailValue,
    Problem,
    _char_escaped_len,
    entry_hash,
    entry_line,
    format_time,
    make_entry,
    verify_lines,
)
from phalanx.security.redaction import MASK, Redactor

T0 = "2024-05-01T12:00:00.000Z"
SECRET = "hunter2-very-secret"


def chain(count: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for index in range(count):
        prev = entries[-1] if entries else None
        entries.append(make_entry(prev, f"2024-05-01T12:00:{index:02d}.000Z", f"user{index}",
                                  "127.0.0.1", AuditAction.RUN_START,
                                  {"host": "http://127.0.0.1:8080", "users": index}))
    return entries


def lines_of(entries: list[AuditEntry]) -> list[bytes]:
    return [entry_line(entry) for entry in entries]


def split_lines(data: bytes) -> list[bytes]:
    """Lines as the file reader yields them: split after each b"\\n" only."""
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


def test_first_entry_has_seq_1_and_zero_prev_and_each_entry_links_to_the_previous() -> None:
    first, second, third = chain(3)
    assert (first.seq, first.prev) == (1, ZERO_HASH)
    assert (second.seq, second.prev) == (2, first.hash)
    assert (third.seq, third.prev) == (3, second.hash)
    assert first.hash == entry_hash(first) != second.hash


def test_a_line_is_sorted_compact_ascii_json_with_the_hash_last() -> None:
    entry = make_entry(None, T0, "zoë", "cli", "login", {"b": 1, "a": "é\n"})
    line = entry_line(entry)
    assert line.endswith(b'"}\n')
    assert line.count(b"\n") == 1
    assert line.isascii()
    assert b" " not in line
    decoded = json.loads(line)
    assert list(decoded) == ["action", "actor", "details", "prev", "seq", "source", "time",
                             "hash"]
    assert list(decoded["details"]) == ["a", "b"]
    assert decoded["actor"] == "zoë"
    assert decoded["hash"] == entry.hash


def test_any_tool_can_verify_a_line_by_the_documented_byte_recipe() -> None:
    previous = ZERO_HASH
    for line in lines_of(chain(4)):
        digest = line[-67:-3].decode("ascii")
        body = line[:-76] + b"}"
        assert hashlib.sha256(body).hexdigest() == digest
        assert json.loads(body)["prev"] == previous
        assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=True).encode()
        previous = digest


def test_an_intact_chain_verifies_with_its_count_and_head() -> None:
    entries = chain(5)
    result = verify_lines(lines_of(entries), keep_last=2)
    assert result.ok
    assert result.reason is None
    assert result.first_bad_line is None
    assert (result.entries, result.head, result.last) == (5, entries[-1].hash, entries[-1])
    assert result.tail == tuple(entries[-2:])


def test_an_empty_file_is_an_intact_empty_chain() -> None:
    result = verify_lines([])
    assert result.ok
    assert result.entries == 0
    assert result.head == ZERO_HASH
    assert verify_lines([], expect_head=ZERO_HASH).anchor_seq == 0


def _edit_actor(lines: list[bytes]) -> list[bytes]:
    lines[1] = lines[1].replace(b'"actor":"user1"', b'"actor":"userX"')
    return lines


def _delete_middle(lines: list[bytes]) -> list[bytes]:
    del lines[1]
    return lines


def _swap(lines: list[bytes]) -> list[bytes]:
    lines[1], lines[2] = lines[2], lines[1]
    return lines


def _delete_first(lines: list[bytes]) -> list[bytes]:
    del lines[0]
    return lines


def _duplicate(lines: list[bytes]) -> list[bytes]:
    lines.insert(2, lines[1])
    return lines


def _forged_append(lines: list[bytes]) -> list[bytes]:
    forged = make_entry(chain(2)[0], T0, "mallory", "1.2.3.4", "user_add", {"user": "m"})
    return [*lines, entry_line(forged)]  # seq 2 with entry 1's prev of another chain


def _forged_recomputed(lines: list[bytes]) -> list[bytes]:
    entries = chain(4)
    forged = make_entry(entries[0], T0, "mallory", "1.2.3.4", "run_stop")
    lines[1] = entry_line(forged)  # a self-consistent rewrite of entry 2
    return lines


@pytest.mark.parametrize(
    ("tamper", "line", "reason"),
    [
        (_edit_actor, 2, Problem.EDITED),
        (_delete_middle, 2, Problem.REORDERED_OR_REMOVED),
        (_swap, 2, Problem.REORDERED_OR_REMOVED),
        (_delete_first, 1, Problem.REORDERED_OR_REMOVED),
        (_duplicate, 3, Problem.REORDERED_OR_REMOVED),
        (_forged_append, 5, Problem.REORDERED_OR_REMOVED),
        (_forged_recomputed, 3, Problem.REORDERED_OR_REMOVED),
    ],
    ids=["edited-field", "deleted-middle", "swapped", "deleted-first", "duplicated",
         "forged-append", "rewritten-with-new-hash"],
)
def test_each_named_attack_is_reported_at_its_line(tamper, line: int, reason: Problem) -> None:  # type: ignore[no-untyped-def]
    entries = chain(4)
    result = verify_lines(tamper(lines_of(entries)))
    assert not result.ok
    assert (result.first_bad_line, result.reason) == (line, reason), result.detail
    assert result.entries == line - 1  # the intact prefix
    if line <= 3 and tamper is not _forged_recomputed:
        assert result.head == (entries[line - 2].hash if line > 1 else ZERO_HASH)


def test_a_non_canonical_line_with_a_matching_hash_counts_as_edited() -> None:
    entry = chain(1)[0]
    body = json.dumps(json.loads(entry_line(entry)[:-76] + b"}"), sort_keys=True).encode()
    forged = body[:-1] + b',"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'"}\n'
    result = verify_lines([forged])
    assert (result.reason, result.first_bad_line) == (Problem.EDITED, 1)
    assert "canonical" in result.detail


def test_a_last_line_without_newline_is_a_truncated_line() -> None:
    lines = lines_of(chain(3))
    lines[-1] = lines[-1][:-10]
    result = verify_lines(lines)
    assert (result.reason, result.first_bad_line, result.entries) == (
        Problem.TRUNCATED_LINE, 3, 2)


def test_removing_the_last_entries_is_detected_only_against_an_anchor() -> None:
    entries = chain(5)
    cut = lines_of(entries)[:3]
    assert verify_lines(cut).ok  # undetectable from the file alone
    by_head = verify_lines(cut, expect_head=entries[-1].hash)
    assert (by_head.ok, by_head.reason, by_head.first_bad_line) == (
        False, Problem.HEAD_NOT_FOUND, None)
    by_count = verify_lines(cut, min_entries=5)
    assert (by_count.ok, by_count.reason) == (False, Problem.TOO_FEW)


def test_an_anchor_stays_valid_while_entries_are_appended_after_it() -> None:
    entries = chain(6)
    result = verify_lines(lines_of(entries), expect_head=entries[2].hash, min_entries=3)
    assert result.ok
    assert result.anchor_seq == 3
    assert result.head == entries[-1].hash


def test_a_whole_rewritten_chain_is_detected_only_against_an_earlier_anchor() -> None:
    original = chain(4)
    rewritten = [original[0]]
    for entry in original[1:]:
        actor = "mallory" if entry.seq == 2 else entry.actor
        rewritten.append(make_entry(rewritten[-1], entry.time, actor, entry.source,
                                    entry.action, entry.details))
    assert verify_lines(lines_of(rewritten)).ok  # no secret key: a valid new chain
    assert verify_lines(lines_of(rewritten), expect_head=original[0].hash).ok  # before the edit
    result = verify_lines(lines_of(rewritten), expect_head=original[2].hash)
    assert result.reason == Problem.HEAD_NOT_FOUND


def _replace_body(line: bytes, old: bytes, new: bytes) -> bytes:
    """Edit a line's body and give it the matching hash (a careful forger)."""
    body = (line[:-76] + b"}").replace(old, new)
    return body[:-1] + b',"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'"}\n'


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda line: b"\n", "blank line"),
        (lambda line: b"not json\n", "text"),
        (lambda line: line.replace(b'"hash":"', b'"hash" :"'), "no hash suffix"),
        (lambda line: line[:-4] + b'A"}\n', "upper-case hash"),
        (lambda line: _replace_body(line, b'"users":0', b'"users":NaN'), "NaN"),
        (lambda line: _replace_body(line, b'"users":0', b'"users":[0]'), "nested value"),
        (lambda line: _replace_body(line, b'"seq":1', b'"seq":true'), "bool seq"),
        (lambda line: _replace_body(line, b'"run_start"', b'"rm_rf"'), "unknown action"),
        (lambda line: _replace_body(line, b'{"action"', b'{"extra":1,"action"'), "extra field"),
        (lambda line: _replace_body(line, b"12:00:00.000Z", b"25:00:00.000Z"), "bad time"),
        (lambda line: _replace_body(line, b'"users":0', b'"users":9007199254740993'),
         "big int"),
        (lambda line: _replace_body(line, b'"user0"', '"é"'.encode()), "non-ASCII byte"),
        (lambda line: b"{" + b" " * MAX_LINE_BYTES + b"}\n", "over-long line"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_malformed_lines_are_reported_as_malformed(mutate, why: str) -> None:  # type: ignore[no-untyped-def]
    lines = lines_of(chain(2))
    lines[0] = mutate(lines[0])
    result = verify_lines(lines)
    assert (result.reason, result.first_bad_line) == (Problem.MALFORMED, 1), (why, result.detail)


def test_verification_stops_reading_at_the_first_problem() -> None:
    lines = lines_of(chain(3))
    read: list[int] = []

    def source() -> Iterator[bytes]:
        for index, line in enumerate([lines[0], b"garbage\n", lines[2]]):
            read.append(index)
            yield line

    assert verify_lines(source()).first_bad_line == 2
    assert read == [0, 1]


@pytest.mark.parametrize(
    ("details", "error"),
    [
        ({f"k{i}": i for i in range(MAX_DETAIL_KEYS + 1)}, ValueError),
        ({"bad key": 1}, ValueError),
        ({".hidden": 1}, ValueError),
        ({"k" * 65: 1}, ValueError),
        ({"nested": {"a": 1}}, TypeError),
        ({"list": [1]}, TypeError),
        ({"nan": float("nan")}, ValueError),
        ({"inf": float("inf")}, ValueError),
        ({"big": MAX_INT + 1}, ValueError),
        ({"bytes": b"x"}, TypeError),
    ],
)
def test_make_entry_refuses_details_outside_the_bounds(details, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error):
        make_entry(None, T0, "alice", "cli", "login", details)


def test_make_entry_refuses_an_unknown_action_a_bad_time_and_non_string_fields() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        make_entry(None, T0, "alice", "cli", "drop_tables")
    with pytest.raises(ValueError, match="time"):
        make_entry(None, "2024-05-01 12:00:00", "alice", "cli", "login")
    with pytest.raises(TypeError):
        make_entry(None, T0, 42, "cli", "login")  # type: ignore[arg-type]


def test_entry_line_refuses_an_entry_whose_hash_does_not_match() -> None:
    entry = dataclasses.replace(chain(1)[0], actor="mallory")
    with pytest.raises(ValueError, match="hash"):
        entry_line(entry)


def test_long_strings_are_cut_to_the_text_bound_and_the_line_stays_small() -> None:
    huge = "\U0001f600" * 100_000
    details: dict[str, DetailValue] = {f"k{i:02d}": huge for i in range(MAX_DETAIL_KEYS)}
    entry = make_entry(None, T0, "a" * 5000, huge, "login", details)
    for text in (entry.actor, entry.source, *[str(v) for v in entry.details.values()]):
        assert text.endswith(CUT_MARK)
        assert len(json.dumps(text)) - 2 <= MAX_TEXT_BYTES
    assert len(entry.actor) == MAX_TEXT_BYTES - 6 + 1
    line = entry_line(entry)
    assert len(line) < MAX_LINE_BYTES
    assert verify_lines([line]).ok


def test_strings_within_the_bound_are_kept_exactly() -> None:
    text = "x" * MAX_TEXT_BYTES
    odd = "\x00\x1b[31m\u202e\U0001f600 \t\x7f"
    entry = make_entry(None, T0, text, odd, "login", {"s": odd, "n": None, "f": -0.0,
                                                      "b": True, "i": -MAX_INT})
    assert entry.actor == text
    assert entry.source == odd
    again = verify_lines([entry_line(entry)]).last
    assert again == entry
    assert again is not None
    assert again.details["s"] == odd


def test_lone_surrogates_are_replaced_when_made_and_refused_when_read() -> None:
    entry = make_entry(None, T0, "a\ud800b", "\ud83d\ude00", "login", {"s": "\udfff"})
    assert (entry.actor, entry.source, entry.details["s"]) == ("a\ufffdb", "\U0001f600", "\ufffd")
    line = entry_line(entry)
    forged = _replace_body(line, b"a\\ufffdb", b"a\\ud800b")
    assert verify_lines([forged]).reason == Problem.MALFORMED


def test_every_string_passes_through_redaction_before_it_is_cut() -> None:
    redactor = Redactor([SECRET])
    details: dict[str, DetailValue] = {
        "note": f"password={SECRET}", "url": f"https://bob:{SECRET}@example.test/",
        "tail": "y" * (MAX_TEXT_BYTES - 10) + SECRET, "count": 3,
    }
    entry = make_entry(None, T0, f"Bearer {SECRET}", f"x {SECRET}", "login", details,
                       redact=redactor.redact_text)
    line = entry_line(entry)
    assert SECRET.encode() not in line
    assert SECRET[:8].encode() not in line
    assert entry.actor == f"Bearer {MASK}"
    assert entry.details["tail"] == "y" * 990 + MASK
    assert entry.details["count"] == 3


def test_details_of_an_entry_are_read_only() -> None:
    entry = chain(1)[0]
    with pytest.raises(TypeError):
        entry.details["users"] = 9  # type: ignore[index]
    assert entry.as_dict()["details"] == {"host": "http://127.0.0.1:8080", "users": 0}


def test_times_are_utc_with_milliseconds() -> None:
    assert format_time(1_714_564_800.1239) == "2024-05-01T12:00:00.123Z"
    assert format_time(0) == "1970-01-01T00:00:00.000Z"


def test_expect_head_must_be_a_hash() -> None:
    with pytest.raises(ValueError, match="hex"):
        verify_lines([], expect_head="ABC")


@given(st.characters(exclude_categories=()))
def test_escaped_length_of_a_character_matches_json(char: str) -> None:
    assert _char_escaped_len(char) == len(json.dumps(char, ensure_ascii=True)) - 2


_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-MAX_INT, MAX_INT),
                    st.floats(allow_nan=False, allow_infinity=False), _TEXT)
_ENTRY_ARGS = st.tuples(
    _TEXT, _TEXT, st.sampled_from(list(AuditAction)),
    st.dictionaries(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,10}", fullmatch=True),
                    _VALUES, max_size=5),
)


def _build(args: list[tuple[str, str, AuditAction, dict[str, DetailValue]]]) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for actor, source, action, details in args:
        entries.append(make_entry(entries[-1] if entries else None, T0, actor, source, action,
                                  details))
    return entries


@given(st.lists(_ENTRY_ARGS, min_size=1, max_size=8))
def test_any_chain_of_valid_entries_verifies_and_round_trips(args) -> None:  # type: ignore[no-untyped-def]
    entries = _build(args)
    result = verify_lines(lines_of(entries), keep_last=len(entries))
    assert result.ok
    assert result.entries == len(entries)
    assert result.tail == tuple(entries)


@given(st.lists(_ENTRY_ARGS, min_size=2, max_size=8), st.data())
def test_every_mutation_of_a_line_that_is_not_last_is_detected(args, data) -> None:  # type: ignore[no-untyped-def]
    entries = _build(args)
    lines = lines_of(entries)
    index = data.draw(st.integers(0, len(lines) - 2), label="line")
    kind = data.draw(st.sampled_from(
        ["flip", "delete", "duplicate", "swap", "insert_forged", "rewrite"]), label="kind")
    if kind == "flip":
        line = lines[index]
        position = data.draw(st.integers(0, len(line) - 1), label="position")
        byte = data.draw(st.integers(0, 255).filter(lambda b: b != line[position]))
        lines[index] = line[:position] + bytes([byte]) + line[position + 1:]
    elif kind == "delete":
        del lines[index]
    elif kind == "duplicate":
        lines.insert(index + 1, lines[index])
    elif kind == "swap":
        other = data.draw(st.integers(0, len(lines) - 1).filter(lambda j: j != index))
        lines[index], lines[other] = lines[other], lines[index]
    else:
        actor, source, action, details = data.draw(_ENTRY_ARGS, label="forged")
        prev = entries[index - 1] if index else None
        forged = make_entry(prev, T0, actor + "!", source, action, details)
        if kind == "insert_forged":
            lines.insert(index, entry_line(forged))
        else:
            lines[index] = entry_line(forged)
    as_read = split_lines(b"".join(lines))  # a flip may add or remove a newline
    result = verify_lines(as_read)
    assert not result.ok, kind
    assert result.first_bad_line is not None


@given(st.lists(_ENTRY_ARGS, min_size=1, max_size=6), st.integers(1, 5))
def test_cutting_the_tail_is_caught_by_the_head_anchor(args, removed: int) -> None:  # type: ignore[no-untyped-def]
    entries = _build(args)
    kept = lines_of(entries)[: max(0, len(entries) - removed)]
    assert verify_lines(kept).ok
    result = verify_lines(kept, expect_head=entries[-1].hash)
    assert result.reason == Problem.HEAD_NOT_FOUND
