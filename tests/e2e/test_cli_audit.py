"""``phalanx audit``: the real command says OK or TAMPERED with the line for every
attack the issue names, exit codes 0/1/2, and prints entries safely.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from phalanx.core.clock import ManualClock
from phalanx.security.audit import AuditLog
from phalanx.security.audit_chain import AuditEntry, entry_line, make_entry

AuditCli = Callable[..., subprocess.CompletedProcess[str]]

@pytest.fixture
def audit_cli(tmp_path: Path, phalanx_cli) -> AuditCli:  # type: ignore[no-untyped-def]
    def call(*args: str) -> subprocess.CompletedProcess[str]:
        result: subprocess.CompletedProcess[str] = phalanx_cli("audit", *args)
        return result

    return call


@pytest.fixture
def log_file(tmp_path: Path) -> tuple[Path, list[AuditEntry]]:
    path = tmp_path / "audit.log"
    with AuditLog(path, clock=ManualClock()) as log:
        entries = [
            log.append("admin", "127.0.0.1", "login"),
            log.append("admin", "127.0.0.1", "run_start",
                       {"host": "http://127.0.0.1:8080", "users": 50, "script_sha256": "ab" * 32}),
            log.append("admin", "127.0.0.1", "run_stop"),
            log.append("admin", "127.0.0.1", "logout"),
        ]
    return path, entries


def test_an_intact_log_verifies_with_its_head(audit_cli: AuditCli, log_file) -> None:  # type: ignore[no-untyped-def]
    path, entries = log_file
    result = audit_cli("verify", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"OK: 4 entries, head {entries[-1].hash}\n"
    anchored = audit_cli("verify", str(path), "--expect-head", entries[1].hash.upper())
    assert anchored.returncode == 0, anchored.stderr
    assert "contains the expected head (entry 2)" in anchored.stdout


def _forged_append(lines: list[bytes], entries: list[AuditEntry]) -> list[bytes]:
    forged = make_entry(entries[1], entries[1].time, "mallory", "6.6.6.6", "user_add")
    return [*lines, entry_line(forged)]


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (lambda lines, e: [lines[0], lines[1].replace(b'"users":50', b'"users":5'), *lines[2:]],
         "TAMPERED: line 2: edited"),
        (lambda lines, e: [lines[0], *lines[2:]], "TAMPERED: line 2: reordered or removed"),
        (lambda lines, e: [lines[0], lines[2], lines[1], lines[3]],
         "TAMPERED: line 2: reordered or removed"),
        (_forged_append, "TAMPERED: line 5: reordered or removed"),
        (lambda lines, e: [*lines[:3], lines[3][:-30]], "TAMPERED: line 4: truncated last line"),
    ],
    ids=["edited", "deleted", "swapped", "forged-append", "cut-line"],
)
def test_each_tampering_is_reported_with_its_line_and_exit_code_1(  # type: ignore[no-untyped-def]
        audit_cli: AuditCli, log_file, tamper, expected: str) -> None:
    path, entries = log_file
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(tamper(lines, entries)))
    result = audit_cli("verify", str(path))
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith(expected), result.stdout
    assert result.stdout.count("\n") == 1


def test_removed_last_entries_are_caught_only_with_expect_head(  # type: ignore[no-untyped-def]
        audit_cli: AuditCli, log_file) -> None:
    path, entries = log_file
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]))
    assert audit_cli("verify", str(path)).returncode == 0  # a valid shorter chain
    result = audit_cli("verify", str(path), "--expect-head", entries[-1].hash)
    assert result.returncode == 1
    assert result.stdout.startswith("TAMPERED: expected head not found")
    counted = audit_cli("verify", str(path), "--min-entries", "4")
    assert counted.returncode == 1
    assert counted.stdout.startswith("TAMPERED: fewer entries than expected")


def test_show_prints_entries_with_control_characters_escaped(  # type: ignore[no-untyped-def]
        audit_cli: AuditCli, tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    with AuditLog(path, clock=ManualClock()) as log:
        log.append("admin", "cli", "login")
        log.append("\x1b[2Jroot\u202e", "10.0.0.9", "login_failed", {"reason": "bad password"})
    result = audit_cli("show", str(path), "--last", "1")
    assert result.returncode == 0, result.stderr
    shown, status = result.stdout.splitlines()
    assert shown == ('#2 2023-11-14T22:13:20.000Z "\\u001b[2Jroot\\u202e"@10.0.0.9 '
                     'login_failed reason="bad password"')
    assert "\x1b" not in result.stdout
    assert status.startswith("OK: 2 entries, head ")


def test_unreadable_files_and_bad_arguments_exit_2_with_one_line(  # type: ignore[no-untyped-def]
        audit_cli: AuditCli, tmp_path: Path) -> None:
    for args in (("verify", "missing.log"), ("verify", str(tmp_path)),
                 ("show", "missing.log")):
        result = audit_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("phalanx: error: ")
        assert "audit log" in result.stderr
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr
    bad_head = audit_cli("verify", "x.log", "--expect-head", "abc")
    assert bad_head.returncode == 2
    assert "64 hex digits" in bad_head.stderr
