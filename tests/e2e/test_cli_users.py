"""``phalanx users`` / ``phalanx tokens`` as real processes: passwords never as arguments.

The commands run as ``python -m phalanx ...`` in a subprocess whose working
directory is ``tmp_path``, so the default store ``./phalanx-users.json`` lands
there. Hashing uses the production argon2id parameters (~0.1 s each).
"""

from __future__ import annotations

import getpass
import io
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from phalanx.cli.main import main as phalanx_main
from phalanx.web.accounts import UserStore, authenticate_password, verify_token
from phalanx.web.passwords import Passwords

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Run:
    def call(*args: str, stdin: str | None = None, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PHALANX_")}
        environ.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "phalanx", *args], cwd=tmp_path, env=environ,
            input=stdin if stdin is not None else "", capture_output=True, text=True,
            timeout=60, check=False,
        )

    return call


def private_file(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def store_at(tmp_path: Path) -> UserStore:
    return UserStore.open(tmp_path / "phalanx-users.json")


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, result
    assert result.stderr.startswith("phalanx: error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_add_list_reset_and_remove_users_end_to_end(cli: Run, tmp_path: Path) -> None:
    private_file(tmp_path / "admin.pw", "first admin password\n")
    add = cli("users", "add", "root", "--role", "admin", "--password-file", "admin.pw")
    assert add.returncode == 0, add.stderr
    assert "created the user store phalanx-users.json" in add.stdout
    store_file = tmp_path / "phalanx-users.json"
    assert stat.S_IMODE(store_file.stat().st_mode) == 0o600

    stdin_add = cli("users", "add", "bob", "--role", "operator", "--password-stdin",
                    stdin="bob's long password\n")
    assert stdin_add.returncode == 0, stdin_add.stderr

    listing = cli("users", "list")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "CREATED", "DISABLED"]
    assert lines[1].split()[:2] == ["bob", "operator"]
    assert lines[2].split()[:2] == ["root", "admin"]
    assert lines[1].split()[-1] == "no"
    assert "argon2" not in listing.stdout

    before = store_at(tmp_path).user("bob")
    reset = cli("users", "reset-password", "bob", "--password-stdin",
                stdin="bob's newer password")
    assert reset.returncode == 0, reset.stderr
    store = store_at(tmp_path)
    passwords = Passwords()
    assert authenticate_password(store, "bob", "bob's newer password", passwords=passwords)
    assert not authenticate_password(store, "bob", "bob's long password", passwords=passwords)
    assert before is not None
    assert store.user("bob").session_epoch > before.session_epoch  # type: ignore[union-attr]

    remove = cli("users", "remove", "bob")
    assert remove.returncode == 0, remove.stderr
    assert [user.name for user in store_at(tmp_path).users()] == ["root"]


def test_store_location_comes_from_store_flag_or_environment(cli: Run, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    by_flag = cli("users", "add", "one", "--role", "admin", "--generate", "--store", "a/s.json")
    assert by_flag.returncode == 0, by_flag.stderr
    by_env = cli("users", "list", env={"PHALANX_USER_STORE": str(tmp_path / "a" / "s.json")})
    assert by_env.returncode == 0, by_env.stderr
    assert "one" in by_env.stdout
    assert not (tmp_path / "phalanx-users.json").exists()


def test_a_password_cannot_be_given_as_an_argument(cli: Run, tmp_path: Path) -> None:
    for flag in ("--password", "--pass", "--passw", "-p"):
        result = cli("users", "add", "bob", flag, "a long enough password")
        assert result.returncode == 2, (flag, result)
        assert "unrecognized arguments" in result.stderr
    assert not (tmp_path / "phalanx-users.json").exists()


def test_weak_passwords_are_refused_in_one_line(cli: Run, tmp_path: Path) -> None:
    assert_one_line_error(
        cli("users", "add", "bob", "--password-stdin", stdin="too short\n"), "too short")
    assert_one_line_error(
        cli("users", "add", "bob.the.builder", "--password-stdin", stdin="Bob.The.Builder"),
        "password is the user name")
    private_file(tmp_path / "bad.pw", "long but\nmultiline")
    assert_one_line_error(cli("users", "add", "bob", "--password-file", "bad.pw"),
                          "control character")
    assert not (tmp_path / "phalanx-users.json").exists()


def test_a_password_file_others_can_read_is_refused(cli: Run, tmp_path: Path) -> None:
    loose = tmp_path / "loose.pw"
    loose.write_text("a long enough password\n")
    loose.chmod(0o644)
    assert_one_line_error(cli("users", "add", "bob", "--password-file", "loose.pw"),
                          "chmod 600")


def test_without_a_terminal_or_a_source_the_password_is_not_read(cli: Run) -> None:
    assert_one_line_error(cli("users", "add", "bob"), "--password-stdin")


def test_generated_password_is_printed_once_and_works(cli: Run, tmp_path: Path) -> None:
    result = cli("users", "add", "carol", "--role", "admin", "--generate")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "shown only now" in line)
    password = line.rsplit(" ", 1)[-1]
    assert len(password) == 24
    assert authenticate_password(store_at(tmp_path), "carol", password, passwords=Passwords())


def test_user_errors_are_one_line_with_exit_code_2(cli: Run, tmp_path: Path) -> None:
    assert_one_line_error(cli("users", "list"), "no user store at")
    assert cli("users", "add", "root", "--role", "admin", "--generate").returncode == 0
    assert_one_line_error(cli("users", "remove", "ghost"), "no user 'ghost'")
    assert_one_line_error(cli("users", "reset-password", "ghost", "--generate"), "no user")
    assert_one_line_error(cli("users", "remove", "root"), "last enabled admin")
    assert_one_line_error(cli("users", "add", "Bad Name", "--generate"), "invalid user name")
    assert_one_line_error(cli("users", "add", "root", "--generate"), "already exists")
    (tmp_path / "phalanx-users.json").chmod(0o644)
    assert_one_line_error(cli("users", "list"), "chmod 600")


def test_set_role_disable_and_enable(cli: Run, tmp_path: Path) -> None:
    assert cli("users", "add", "root", "--role", "admin", "--generate").returncode == 0
    assert cli("users", "add", "dan", "--generate").returncode == 0
    assert store_at(tmp_path).user("dan").role.value == "viewer"  # type: ignore[union-attr]
    assert cli("users", "set-role", "dan", "--role", "operator").returncode == 0
    assert cli("users", "disable", "dan").returncode == 0
    listing = cli("users", "list").stdout
    assert any(line.split()[:2] == ["dan", "operator"] and line.split()[-1] == "yes"
               for line in listing.splitlines())
    assert cli("users", "enable", "dan").returncode == 0
    assert not store_at(tmp_path).user("dan").disabled  # type: ignore[union-attr]


def test_tokens_are_shown_once_listed_without_secrets_and_revocable(cli: Run,
                                                                   tmp_path: Path) -> None:
    created = cli("tokens", "create", "--role", "operator", "--expires", "30d", "--label", "ci")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("phx_")
    assert created.stdout.count("\n") == 1  # the token alone on stdout
    assert "only time the token is shown" in created.stderr
    token_id = token.split("_", 2)[1]
    info = verify_token(store_at(tmp_path), token, time.time())
    assert info is not None
    assert info.role.value == "operator"

    listing = cli("tokens", "list")
    assert listing.returncode == 0, listing.stderr
    assert token_id in listing.stdout
    assert token.split("_", 2)[2] not in listing.stdout
    assert " ci " in listing.stdout
    assert "active" in listing.stdout

    revoked = cli("tokens", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    assert store_at(tmp_path).tokens() == ()
    assert_one_line_error(cli("tokens", "revoke", token_id), "no token with id")


def test_tokens_refuse_admin_role_and_bad_lifetimes(cli: Run) -> None:
    admin = cli("tokens", "create", "--role", "admin")
    assert admin.returncode == 2
    assert "invalid choice" in admin.stderr
    assert_one_line_error(cli("tokens", "create", "--role", "viewer", "--expires", "400d"),
                          "366d")
    assert_one_line_error(cli("tokens", "create", "--role", "viewer", "--expires", "soon"),
                          "token lifetime")
    missing = cli("tokens", "create")
    assert missing.returncode == 2
    assert "--role" in missing.stderr


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_prompt_asks_twice_and_refuses_a_mismatch(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PHALANX_USER_STORE", raising=False)
    monkeypatch.setattr(sys, "stdin", FakeTty())
    answers = iter(["typed at the prompt", "typed at the prompt",
                    "first attempt here", "second attempt here"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    assert phalanx_main(["users", "add", "erin", "--role", "admin"]) == 0
    assert prompts == ["new password for erin: ", "again: "]
    assert authenticate_password(store_at(tmp_path), "erin", "typed at the prompt",
                                 passwords=Passwords())
    assert phalanx_main(["users", "reset-password", "erin"]) == 2
    assert "the two passwords differ" in capsys.readouterr().err
