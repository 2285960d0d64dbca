"""The allow-list file: strict parsing, safe modes, and the master's live (fail-closed) view."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from phalanx.transport import AllowEntry, AllowList, KeyFileError, generate_keypair
from phalanx.transport.allowlist import (
    format_allow_list,
    parse_allow_list,
    read_allow_list,
    write_allow_list,
)
from phalanx.transport.keyfiles import write_atomic


def key() -> bytes:
    return generate_keypair().public


def test_allow_list_round_trips_through_its_file(tmp_path: Path) -> None:
    entries = [AllowEntry(key(), "w1"), AllowEntry(key(), "w2")]
    path = tmp_path / "authorized_workers"
    write_allow_list(path, entries)
    assert read_allow_list(path) == tuple(entries)
    assert path.stat().st_mode & 0o777 == 0o644


def test_comments_and_blank_lines_are_skipped_and_the_name_is_optional() -> None:
    a, b = key(), key()
    text = b"# a comment\n#\n\n   \n" + a + b" w1\n" + b + b"\n"
    assert parse_allow_list(text, source="f") == (AllowEntry(a, "w1"), AllowEntry(b, ""))


@pytest.mark.parametrize(
    "line",
    [b"tooshort w1", b"a" * 40 + b" w1 extra", b"a" * 40 + b" ../etc", b"a" * 41 + b" w1",
     b"#comment-without-space"],
)
def test_an_invalid_line_makes_the_file_invalid_naming_the_line(line: bytes) -> None:
    text = format_allow_list([AllowEntry(key(), "ok")]) + line + b"\n"
    with pytest.raises(KeyFileError, match=r"f:4: invalid allow-list line"):
        parse_allow_list(text, source="f")


@pytest.mark.parametrize("loose", [0o664, 0o646, 0o666])
def test_allow_list_writable_by_group_or_others_is_refused(tmp_path: Path, loose: int) -> None:
    path = tmp_path / "authorized_workers"
    write_allow_list(path, [AllowEntry(key(), "w1")])
    path.chmod(loose)
    with pytest.raises(KeyFileError, match="chmod 644"):
        read_allow_list(path)


def test_live_view_rereads_the_file_on_a_fresh_lookup(tmp_path: Path) -> None:
    a, b = key(), key()
    path = tmp_path / "authorized_workers"
    write_allow_list(path, [AllowEntry(a, "w1")])
    view = AllowList(path, recheck_interval=1000.0)
    assert view.lookup(a, now=0.0, fresh=True) == AllowEntry(a, "w1")
    assert view.lookup(b, now=0.0, fresh=True) is None
    write_allow_list(path, [AllowEntry(b, "w2")])
    assert view.lookup(a, now=0.0, fresh=True) is None
    assert view.lookup(b, now=0.0, fresh=True) == AllowEntry(b, "w2")


def test_live_view_rechecks_at_most_once_per_interval_when_not_fresh(tmp_path: Path) -> None:
    a = key()
    path = tmp_path / "authorized_workers"
    write_allow_list(path, [AllowEntry(a, "w1")])
    view = AllowList(path, recheck_interval=5.0)
    assert view.lookup(a, now=100.0, fresh=False) is not None
    write_allow_list(path, [])
    assert view.lookup(a, now=104.0, fresh=False) is not None  # not re-read yet
    assert view.lookup(a, now=105.0, fresh=False) is None


def test_live_view_fails_closed_and_logs_once_when_the_file_breaks(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a = key()
    path = tmp_path / "authorized_workers"
    write_allow_list(path, [AllowEntry(a, "w1")])
    view = AllowList(path)
    assert view.lookup(a, now=0.0, fresh=True) is not None
    write_atomic(path, format_allow_list([AllowEntry(a, "w1")]) + b"garbage\n", 0o644)
    with caplog.at_level(logging.ERROR, logger="phalanx.transport"):
        for _ in range(3):
            assert view.lookup(a, now=0.0, fresh=True) is None
    assert len(caplog.records) == 1
    assert "refusing every worker" in caplog.records[0].getMessage()
    write_allow_list(path, [AllowEntry(a, "w1")])
    assert view.lookup(a, now=0.0, fresh=True) is not None


def test_live_view_of_a_missing_file_admits_nobody(tmp_path: Path) -> None:
    view = AllowList(tmp_path / "nope")
    assert view.lookup(key(), now=0.0, fresh=True) is None
    assert len(view) == 0
