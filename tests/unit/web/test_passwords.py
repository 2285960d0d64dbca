"""Passwords: argon2id hashing, never-raising verification, the dummy check, policy, files."""

from __future__ import annotations

import os
from pathlib import Path

import argon2
import pytest

from phalanx.web.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    PRODUCTION_PARAMETERS,
    PasswordError,
    Passwords,
    check_new_password,
    generate_password,
    read_password_file,
)

CHEAP = argon2.Parameters(type=argon2.Type.ID, version=19, salt_len=16, hash_len=16,
                          time_cost=1, memory_cost=8, parallelism=1)
GOOD = "correct horse battery"


@pytest.fixture
def passwords() -> Passwords:
    return Passwords(CHEAP)


class SpyPasswords(Passwords):
    """Records every (hash, password) verification."""

    __slots__ = ("checked",)

    def __init__(self) -> None:
        super().__init__(CHEAP)
        self.checked: list[tuple[str, str]] = []

    def verify_password(self, stored_hash: str, password: str) -> bool:
        self.checked.append((stored_hash, password))
        return super().verify_password(stored_hash, password)


def test_hash_is_argon2id_and_verifies_the_right_password_only(passwords: Passwords) -> None:
    stored = passwords.hash_password(GOOD)
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert passwords.verify_password(stored, GOOD)
    assert not passwords.verify_password(stored, GOOD + "!")
    assert not passwords.verify_password(stored, "")


def test_two_hashes_of_one_password_differ_by_salt(passwords: Passwords) -> None:
    assert passwords.hash_password(GOOD) != passwords.hash_password(GOOD)


@pytest.mark.parametrize("stored", [
    "", "not a hash", "$argon2id$", "$argon2id$v=19$m=8,t=1,p=1$AAAA$BBBB",
    "$2b$12$abcdefghijklmnopqrstuuJ4H9b5h1q6O1uVnqRzH1hUe2b8dE6",
    "5f4dcc3b5aa765d61d8327deb882cf99",
])
def test_verify_returns_false_for_a_malformed_or_foreign_hash(passwords: Passwords,
                                                              stored: str) -> None:
    assert passwords.verify_password(stored, GOOD) is False


def test_verify_refuses_an_overlong_password_without_raising(passwords: Passwords) -> None:
    stored = passwords.hash_password(GOOD)
    assert passwords.verify_password(stored, "x" * (MAX_PASSWORD_LENGTH + 1)) is False


def test_passwords_are_nfkc_normalised_so_equivalent_text_matches(passwords: Passwords) -> None:
    stored = passwords.hash_password("ｃｏｒｒｅｃｔ ｈｏｒｓｅ")  # full-width forms
    assert passwords.verify_password(stored, "correct horse")


async def test_verify_password_async_gives_the_sync_answer(passwords: Passwords) -> None:
    stored = passwords.hash_password(GOOD)
    assert await passwords.verify_password_async(stored, GOOD) is True
    assert await passwords.verify_password_async(stored, "wrong password!") is False


def test_production_parameters_are_rfc9106_low_memory_argon2id() -> None:
    assert PRODUCTION_PARAMETERS.type is argon2.Type.ID
    assert PRODUCTION_PARAMETERS.memory_cost == 65536  # KiB: 64 MiB
    assert PRODUCTION_PARAMETERS.time_cost == 3
    assert PRODUCTION_PARAMETERS.parallelism == 4
    assert PRODUCTION_PARAMETERS.salt_len == 16
    assert PRODUCTION_PARAMETERS.hash_len == 32
    assert Passwords().parameters == PRODUCTION_PARAMETERS


def test_default_passwords_hash_with_production_parameters() -> None:
    stored = Passwords().hash_password(GOOD)  # one real-cost hash
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_argon2i_or_argon2d_parameters_are_refused() -> None:
    for kind in (argon2.Type.I, argon2.Type.D):
        with pytest.raises(ValueError, match="argon2id"):
            Passwords(argon2.Parameters(type=kind, version=19, salt_len=16, hash_len=16,
                                        time_cost=1, memory_cost=8, parallelism=1))


def test_needs_rehash_when_parameters_differ_or_the_hash_is_unreadable(
        passwords: Passwords) -> None:
    cheap_hash = passwords.hash_password(GOOD)
    assert not passwords.needs_rehash(cheap_hash)
    assert Passwords().needs_rehash(cheap_hash)
    assert passwords.needs_rehash("garbage")


def test_verify_unknown_user_verifies_against_a_dummy_with_the_same_parameters() -> None:
    spy = SpyPasswords()
    assert spy.verify_unknown_user(GOOD) is False
    assert spy.verify_unknown_user("another password") is False
    assert [password for _hash, password in spy.checked] == [GOOD, "another password"]
    first_dummy, second_dummy = (stored for stored, _password in spy.checked)
    assert first_dummy == second_dummy  # made once per Passwords
    assert argon2.extract_parameters(first_dummy) == CHEAP


async def test_verify_unknown_user_async_verifies_and_returns_false() -> None:
    spy = SpyPasswords()
    assert await spy.verify_unknown_user_async(GOOD) is False
    assert len(spy.checked) == 1


def test_repr_shows_parameters_only(passwords: Passwords) -> None:
    assert repr(passwords) == "Passwords(argon2id t=1 m=8KiB p=1)"


@pytest.mark.parametrize(("password", "reason"), [
    ("a" * (MIN_PASSWORD_LENGTH - 1), "too short"),
    ("tiny!", "too short"),
    ("x" * (MAX_PASSWORD_LENGTH + 1), "too long"),
    ("aaaaaaaaaaaaaaaa", "repeated"),
    ("line one\nline two", "control character"),
    ("tab\there-and-more", "control character"),
    ("alice.example1", "user name"),
    ("ALICE.Example1", "user name"),
])
def test_check_new_password_refuses_weak_passwords(password: str, reason: str) -> None:
    with pytest.raises(PasswordError, match=reason) as caught:
        check_new_password(password, user_name="alice.example1")
    assert password not in str(caught.value)


@pytest.mark.parametrize("password", [
    "a" * (MIN_PASSWORD_LENGTH - 1) + "b", GOOD, "pässwörd-ünïcode",
    "xy" * (MAX_PASSWORD_LENGTH // 2),
])
def test_check_new_password_accepts_long_enough_passwords(password: str) -> None:
    check_new_password(password, user_name="alice")


def test_generated_passwords_are_random_and_meet_the_policy() -> None:
    generated = {generate_password() for _ in range(20)}
    assert len(generated) == 20
    for password in generated:
        assert len(password) == 24
        check_new_password(password, user_name="admin")


def write(path: Path, data: bytes, mode: int) -> Path:
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


def test_read_password_file_removes_one_trailing_newline(tmp_path: Path) -> None:
    assert read_password_file(write(tmp_path / "a", b"secret pass word\n", 0o600)) == \
        "secret pass word"
    assert read_password_file(write(tmp_path / "b", b"secret pass word\r\n", 0o400)) == \
        "secret pass word"
    assert read_password_file(write(tmp_path / "c", b"two newlines kept\n\n", 0o600)) == \
        "two newlines kept\n"
    assert read_password_file(write(tmp_path / "d", "pässwörd".encode(), 0o600)) == "pässwörd"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660])
def test_read_password_file_refuses_a_file_others_may_read_or_write(tmp_path: Path,
                                                                   mode: int) -> None:
    path = write(tmp_path / "pw", b"secret pass word\n", mode)
    with pytest.raises(PasswordError, match="chmod 600") as caught:
        read_password_file(path)
    assert "secret pass word" not in str(caught.value)


def test_read_password_file_refuses_missing_big_empty_binary_and_directories(
        tmp_path: Path) -> None:
    cases = {
        tmp_path / "missing": "does not exist",
        write(tmp_path / "big", b"x" * 5000, 0o600): "larger than",
        write(tmp_path / "empty", b"\n", 0o600): "empty",
        write(tmp_path / "binary", b"\xff\xfe\x00secret", 0o600): "UTF-8",
        tmp_path: "directory",
    }
    for path, message in cases.items():
        with pytest.raises(PasswordError, match=message):
            read_password_file(path)
