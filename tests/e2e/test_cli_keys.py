"""``phalanx keys``: the real command creates private key files and reports errors in one line."""

from __future__ import annotations

import stat
from pathlib import Path

from phalanx.transport import KeyDir, fingerprint


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_init_add_revoke_and_list_work_end_to_end(phalanx_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    init = phalanx_cli("keys", "init", "--dir", "keys/")
    assert init.returncode == 0, init.stderr
    keys = KeyDir(tmp_path / "keys")
    assert mode(keys.master_key) == 0o600
    assert mode(keys.worker_key("w1")) == 0o600
    master_print = fingerprint(keys.curve_client("w1").master_public)
    assert master_print in init.stdout

    add = phalanx_cli("keys", "add-worker", "--dir", "keys/", "w2")
    assert add.returncode == 0, add.stderr
    w2_print = fingerprint(keys.curve_client("w2").keypair.public)
    assert f"fingerprint {w2_print}" in add.stdout
    assert mode(keys.worker_key("w2")) == 0o600

    revoke = phalanx_cli("keys", "revoke", "--dir", "keys/", "w2")
    assert revoke.returncode == 0, revoke.stderr
    listing = phalanx_cli("keys", "list", "--dir", "keys/")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0] == f"master  {master_print}"
    assert any(w2_print in line and "revoked" in line for line in lines)
    assert any(" w1 " in line and "authorized" in line for line in lines)


def test_keys_errors_are_one_line_with_exit_code_2(phalanx_cli) -> None:  # type: ignore[no-untyped-def]
    assert phalanx_cli("keys", "init", "--dir", "keys").returncode == 0
    cases = [
        ("keys", "init", "--dir", "keys"),  # would overwrite
        ("keys", "add-worker", "--dir", "keys", "../escape"),
        ("keys", "revoke", "--dir", "keys", "w9"),
        ("keys", "list", "--dir", "missing"),
    ]
    for args in cases:
        result = phalanx_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("phalanx: error: ")
        assert "Traceback" not in result.stderr


def test_keys_without_an_action_is_a_usage_error(phalanx_cli) -> None:  # type: ignore[no-untyped-def]
    result = phalanx_cli("keys")
    assert result.returncode == 2
    assert "ACTION" in result.stderr
