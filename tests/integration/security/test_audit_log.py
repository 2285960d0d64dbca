"""Audit log file: private (0600) and locked, a damaged file refused at open, each
append one redacted line made durable, a failed write undone, the reader verifies."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from phalanx.core.clock import ManualClock
from phalanx.security.audit import AuditError, AuditLog, read_log
from phalanx.security.audit_chain import MAX_LINE_BYTES, ZERO_HASH, AuditAction, Problem
from phalanx.security.redaction import MASK, Redactor

SECRET = "tok-3f9a8b7c6d5e"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_entries(path: Path, count: int) -> None:
    with AuditLog(path, clock=ManualClock()) as log:
        for index in range(count):
            log.append(f"user{index}", "127.0.0.1", AuditAction.LOGIN, {"n": index})


def test_a_new_log_is_created_private_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    old = os.umask(0o277)  # would leave the file read-only for its owner
    try:
        log = AuditLog(path)
    finally:
        os.umask(old)
    with log:
        log.append("alice", "cli", "login")
    assert mode(path) == 0o600
    assert read_log(path).entries == 1


def test_appends_continue_the_chain_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    clock = ManualClock(wall=1_714_564_800.0)
    with AuditLog(path, clock=clock) as log:
        assert log.head.count == 0
        assert log.head.hash == ZERO_HASH
        first = log.append("alice", "127.0.0.1", "login")
        clock.advance(1.5)
        second = log.append("alice", "127.0.0.1", "run_start", {"users": 10})
    assert first.time == "2024-05-01T12:00:00.000Z"
    assert second.time == "2024-05-01T12:00:01.500Z"
    with AuditLog(path, clock=clock, keep_recent=1) as log:
        assert (log.head.count, log.head.hash) == (2, second.hash)
        assert log.recent == (second,)
        third = log.append("alice", "127.0.0.1", "logout")
        assert log.recent == (third,)
    assert (third.seq, third.prev) == (3, second.hash)
    result = read_log(path, expect_head=second.hash)
    assert result.ok
    assert (result.entries, result.head, result.anchor_seq) == (3, third.hash, 2)


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o620, 0o602])
def test_an_existing_log_open_to_group_or_others_is_refused(tmp_path: Path, loose: int) -> None:
    path = tmp_path / "audit.log"
    write_entries(path, 1)
    path.chmod(loose)
    before = path.read_bytes()
    with pytest.raises(AuditError, match=r"group or others.*chmod 600"):
        AuditLog(path)
    assert path.read_bytes() == before


def test_a_symbolic_link_a_directory_and_a_fifo_are_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.log"
    write_entries(real, 1)
    link = tmp_path / "link.log"
    link.symlink_to(real)
    with pytest.raises(AuditError, match="symbolic link"):
        AuditLog(link)
    with pytest.raises(AuditError, match="symbolic link"):
        read_log(link)
    with pytest.raises(AuditError, match="cannot open"):
        AuditLog(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(AuditError, match="not a regular file"):
        AuditLog(fifo)
    with pytest.raises(AuditError, match="not a regular file"):
        read_log(fifo)


def test_a_damaged_log_is_refused_at_open_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    write_entries(path, 3)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[2])  # entry 2 removed
    with pytest.raises(AuditError, match=r"damaged \(line 2: reordered or removed"):
        AuditLog(path)
    path.write_bytes(lines[0] + lines[1].replace(b"user1", b"userX") + lines[2])
    with pytest.raises(AuditError, match=r"line 2: edited"):
        AuditLog(path)
    cut = lines[0] + lines[1] + lines[2][:20]  # a crash in the middle of a write
    path.write_bytes(cut)
    with pytest.raises(AuditError, match=r"line 3: truncated last line"):
        AuditLog(path)
    assert path.read_bytes() == cut


def test_a_second_writer_is_refused_while_the_first_holds_the_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    with AuditLog(path) as log:
        log.append("alice", "cli", "login")
        with pytest.raises(AuditError, match="in use by another process"):
            AuditLog(path)
        assert read_log(path).ok  # readers are never blocked
    with AuditLog(path) as again:
        assert again.head.count == 1


def test_secrets_never_reach_the_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    redactor = Redactor([SECRET])
    with AuditLog(path, redact=redactor.redact_text) as log:
        entry = log.append(f"Bearer {SECRET}", "10.0.0.1", AuditAction.TOKEN_CREATE,
                           {"note": f"created {SECRET}", "header": f"Authorization: {SECRET}",
                            "url": f"https://u:{SECRET}@h.test/"})
    data = path.read_bytes()
    assert SECRET.encode() not in data
    assert entry.details["note"] == f"created {MASK}"
    assert json.loads(data)["actor"] == f"Bearer {MASK}"


def test_huge_and_odd_values_are_bounded_and_read_back_intact(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    odd = "\x1b[2J\u202eevil\r\n\x00"
    with AuditLog(path) as log:
        entry = log.append("x" * 1_000_000, odd, "login_failed",
                           {f"k{i}": "\u00e9" * 10_000 for i in range(32)})
    data = path.read_bytes()
    assert len(data) <= MAX_LINE_BYTES
    assert data.count(b"\n") == 1
    result = read_log(path, keep_last=1)
    assert result.ok
    assert result.tail == (entry,)
    assert result.tail[0].source == odd


def test_a_bad_argument_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    with AuditLog(path) as log:
        log.append("alice", "cli", "login")
        before = path.read_bytes()
        with pytest.raises(ValueError, match="unknown action"):
            log.append("alice", "cli", "format_disk")
        with pytest.raises(TypeError):
            log.append("alice", "cli", "login", {"nested": {"a": 1}})  # type: ignore[dict-item]
        assert path.read_bytes() == before
        assert log.append("alice", "cli", "logout").seq == 2


def test_a_failed_fsync_undoes_the_append_and_the_log_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.log"
    real_fsync = os.fsync
    failures = [OSError(5, "Input/output error")]

    def flaky_fsync(fd: int) -> None:
        if failures:
            raise failures.pop()
        real_fsync(fd)

    with AuditLog(path) as log:
        log.append("alice", "cli", "login")
        before = path.read_bytes()
        monkeypatch.setattr(os, "fsync", flaky_fsync)
        with pytest.raises(AuditError, match="Input/output error; the entry was not written"):
            log.append("alice", "cli", "run_start")
        assert path.read_bytes() == before
        assert log.head.count == 1
        log.append("alice", "cli", "run_stop")
    result = read_log(path, keep_last=2)
    assert result.ok
    assert [entry.action for entry in result.tail] == ["login", "run_stop"]


def test_an_append_that_cannot_be_undone_stops_further_appends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.log"

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    with AuditLog(path) as log:
        monkeypatch.setattr(os, "fsync", broken_fsync)
        with pytest.raises(AuditError, match="could not be undone"):
            log.append("alice", "cli", "login")
        monkeypatch.undo()
        with pytest.raises(AuditError, match="refuses appends"):
            log.append("alice", "cli", "logout")


def test_a_closed_log_refuses_appends_and_close_is_idempotent(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log")
    log.close()
    log.close()
    assert log.closed
    with pytest.raises(AuditError, match="closed"):
        log.append("alice", "cli", "login")


def test_verify_through_the_open_log_sees_tampering_done_behind_its_back(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    with AuditLog(path) as log:
        for action in ("login", "run_start", "run_stop"):
            log.append("alice", "cli", action)
        assert log.verify(expect_head=log.head.hash).ok
        data = path.read_bytes()
        path.write_bytes(data.replace(b'"run_start"', b'"run_reset"'))
        result = log.verify()
        assert (result.ok, result.first_bad_line, result.reason) == (False, 2, Problem.EDITED)


def test_appends_from_many_threads_form_one_intact_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    with AuditLog(path) as log, ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(log.append, f"user{i}", "cli", "login", {"i": i})
                   for i in range(40)]
        seqs = sorted(future.result(timeout=30).seq for future in futures)
    assert seqs == list(range(1, 41))
    assert read_log(path, min_entries=40).ok


async def test_the_event_loop_appends_through_a_thread(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    with AuditLog(path) as log:
        entry = await asyncio.wait_for(
            asyncio.to_thread(log.append, "alice", "127.0.0.1", AuditAction.WORKER_JOIN,
                              {"worker": "w1"}), timeout=30)
    assert entry.seq == 1
    assert read_log(path).head == entry.hash


def test_reading_a_missing_file_is_an_audit_error(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="No such file"):
        read_log(tmp_path / "missing.log")
    with pytest.raises(AuditError, match="cannot open"):
        AuditLog(tmp_path / "no-dir" / "audit.log")
