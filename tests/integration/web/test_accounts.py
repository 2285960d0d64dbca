"""The user store on real files: modes, atomic writes, corrupt files, epochs, login, tokens."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path
from typing import Any

import argon2
import pytest

from phalanx.web import accounts
from phalanx.web.accounts import (
    ADMIN_PASSWORD_ENV,
    AccountError,
    UserStore,
    add_user,
    authenticate_password,
    authenticate_password_async,
    create_token,
    current_session_epoch,
    ensure_admin,
    parse_token_lifetime,
    reset_password,
    resolve_store_path,
    revoke_token,
    validate_user_name,
    verify_token,
)
from phalanx.web.passwords import PasswordError, Passwords
from phalanx.web.rbac import Role

CHEAP = argon2.Parameters(type=argon2.Type.ID, version=19, salt_len=16, hash_len=16,
                          time_cost=1, memory_cost=8, parallelism=1)
NOW = 1_700_000_000.0
DAY = 86400.0
PASSWORD = "correct horse battery"


class SpyPasswords(Passwords):
    """Cheap parameters; records real and dummy verifications."""

    __slots__ = ("dummy_checks", "real_checks")

    def __init__(self) -> None:
        super().__init__(CHEAP)
        self.real_checks: list[str] = []
        self.dummy_checks: list[str] = []

    def verify_password(self, stored_hash: str, password: str) -> bool:
        self.real_checks.append(password)
        return super().verify_password(stored_hash, password)

    def verify_unknown_user(self, password: str) -> bool:
        self.dummy_checks.append(password)
        return super().verify_unknown_user(password)


@pytest.fixture
def passwords() -> SpyPasswords:
    return SpyPasswords()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "users.json"


@pytest.fixture
def store(path: Path) -> UserStore:
    return UserStore.open(path, create=True)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def add(store: UserStore, name: str, role: Role, passwords: Passwords,
        password: str = PASSWORD, now: float = NOW) -> accounts.User:
    return add_user(store, name, role, password, passwords=passwords, now=now)


def write_json(path: Path, document: dict[str, Any], file_mode: int = 0o600) -> None:
    path.write_text(json.dumps(document))
    os.chmod(path, file_mode)


def valid_document(passwords: Passwords) -> dict[str, Any]:
    return {
        "format": "phalanx-users", "version": 1, "epoch_counter": 1,
        "users": [{"name": "admin", "role": "admin",
                   "password_hash": passwords.hash_password(PASSWORD), "created": NOW,
                   "password_changed": NOW, "disabled": False, "session_epoch": 1}],
        "tokens": [],
    }


# ---------------------------------------------------------------- the file


def test_missing_store_is_an_error_unless_created(path: Path) -> None:
    with pytest.raises(AccountError, match=r"no user store at .*phalanx users add"):
        UserStore.open(path)
    store = UserStore.open(path, create=True)
    assert store.users() == ()
    assert not store.exists
    assert not path.exists()  # written by the first change only


def test_create_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AccountError, match="not a directory"):
        UserStore.open(tmp_path / "nowhere" / "users.json", create=True)


def test_first_change_writes_a_0600_file_whatever_the_umask(
        path: Path, store: UserStore, passwords: Passwords) -> None:
    old = os.umask(0o000)
    try:
        add(store, "admin", Role.ADMIN, passwords)
    finally:
        os.umask(old)
    assert store.exists
    assert mode(path) == 0o600


def test_store_round_trips_users_and_tokens_through_the_file(
        path: Path, store: UserStore, passwords: Passwords) -> None:
    admin = add(store, "admin", Role.ADMIN, passwords)
    add(store, "bob", Role.OPERATOR, passwords)
    token_id, _token = create_token(store, Role.VIEWER, DAY, "ci", NOW)
    reopened = UserStore.open(path)
    assert reopened.users() == store.users()
    assert reopened.user("admin") == admin
    assert reopened.tokens() == store.tokens()
    assert reopened.token(token_id) is not None
    document = json.loads(path.read_text())
    assert document["format"] == "phalanx-users"
    assert document["version"] == 1


def test_repr_of_a_user_never_shows_the_password_hash(store: UserStore,
                                                      passwords: Passwords) -> None:
    user = add(store, "admin", Role.ADMIN, passwords)
    assert "argon2" not in repr(user)
    assert "argon2" not in repr(store)


@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666])
def test_a_store_group_or_others_may_read_or_write_is_refused(
        path: Path, passwords: Passwords, file_mode: int) -> None:
    write_json(path, valid_document(passwords), file_mode)
    with pytest.raises(AccountError, match="chmod 600"):
        UserStore.open(path)


def test_a_symbolic_link_or_a_directory_is_refused(tmp_path: Path, path: Path,
                                                   passwords: Passwords) -> None:
    write_json(path, valid_document(passwords))
    link = tmp_path / "link.json"
    link.symlink_to(path)
    with pytest.raises(AccountError, match="symbolic link"):
        UserStore.open(link)
    with pytest.raises(AccountError, match="not a regular file"):
        UserStore.open(tmp_path)


def test_an_oversized_store_is_refused(path: Path) -> None:
    path.write_bytes(b" " * (accounts.MAX_STORE_BYTES + 1))
    os.chmod(path, 0o600)
    with pytest.raises(AccountError, match="larger than"):
        UserStore.open(path)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: "{not json", "not a valid phalanx user store"),
    (lambda d: [], "not a valid phalanx user store"),
    (lambda d: {**d, "format": "something-else"}, "format is 'something-else'"),
    (lambda d: {**d, "version": 2}, "version 2; this phalanx reads version 1"),
    (lambda d: {**d, "extra": 1}, "not a valid phalanx user store"),
    (lambda d: {**d, "users": [{**d["users"][0], "role": "root"}]}, "valid"),
    (lambda d: {**d, "users": [{**d["users"][0], "name": "Bad Name"}]}, "invalid user name"),
    (lambda d: {**d, "users": [{**d["users"][0], "password_hash": "plain"}]}, "argon2id"),
    (lambda d: {**d, "users": [{**d["users"][0], "session_epoch": 5}]}, "session_epoch"),
    (lambda d: {**d, "users": d["users"] * 2}, "appears twice"),
    (lambda d: {**d, "users": [{**d["users"][0], "created": -1}]}, "epoch seconds"),
    (lambda d: {**d, "tokens": [{"id": "zz", "sha256": "0" * 64, "role": "viewer",
                                 "label": "", "created": NOW, "expires": NOW,
                                 "last_used": None}]}, "12 hex digits"),
])
def test_a_corrupt_store_is_refused_with_one_clear_line(
        path: Path, passwords: Passwords, change: Any, message: str) -> None:
    document = change(valid_document(passwords))
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    os.chmod(path, 0o600)
    with pytest.raises(AccountError, match=message) as caught:
        UserStore.open(path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_failed_write_leaves_file_and_memory_unchanged(
        monkeypatch: pytest.MonkeyPatch, path: Path, store: UserStore,
        passwords: Passwords) -> None:
    add(store, "admin", Role.ADMIN, passwords)
    before = path.read_bytes()

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(AccountError, match="No space left on device"):
        add(store, "bob", Role.VIEWER, passwords)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert store.user("bob") is None
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left


def test_a_store_changed_by_another_process_is_not_overwritten(
        path: Path, store: UserStore, passwords: Passwords) -> None:
    add(store, "admin", Role.ADMIN, passwords)
    other = UserStore.open(path)
    add(other, "bob", Role.VIEWER, passwords)
    with pytest.raises(AccountError, match="changed by another process"):
        add(store, "carol", Role.VIEWER, passwords)
    reopened = UserStore.open(path)
    assert [user.name for user in reopened.users()] == ["admin", "bob"]
    add(reopened, "carol", Role.VIEWER, passwords)


def test_a_store_created_meanwhile_by_another_process_is_not_overwritten(
        path: Path, passwords: Passwords) -> None:
    first = UserStore.open(path, create=True)
    second = UserStore.open(path, create=True)
    add(first, "admin", Role.ADMIN, passwords)
    with pytest.raises(AccountError, match="changed by another process"):
        add(second, "root", Role.ADMIN, passwords)


def test_user_and_token_counts_are_bounded(monkeypatch: pytest.MonkeyPatch,
                                           store: UserStore, passwords: Passwords) -> None:
    monkeypatch.setattr(accounts, "MAX_USERS", 2)
    monkeypatch.setattr(accounts, "MAX_TOKENS", 1)
    add(store, "a1", Role.ADMIN, passwords)
    add(store, "a2", Role.ADMIN, passwords)
    with pytest.raises(AccountError, match="maximum of 2 users"):
        add(store, "a3", Role.ADMIN, passwords)
    create_token(store, Role.VIEWER, DAY, "", NOW)
    with pytest.raises(AccountError, match="maximum of 1 tokens"):
        create_token(store, Role.VIEWER, DAY, "", NOW)


# ---------------------------------------------------------------- users


@pytest.mark.parametrize("name", ["a", "admin", "alice.smith", "ci_bot-2", "_svc", "9" * 64])
def test_valid_user_names_are_accepted(name: str) -> None:
    assert validate_user_name(name) == name


@pytest.mark.parametrize("name", ["", "Alice", "a b", "-dash", ".dot", "a" * 65, "ä", "a/b",
                                  "a\n", "a;b"])
def test_invalid_user_names_are_refused(name: str) -> None:
    with pytest.raises(AccountError, match="invalid user name"):
        validate_user_name(name)


def test_adding_an_existing_user_is_refused(store: UserStore, passwords: Passwords) -> None:
    add(store, "admin", Role.ADMIN, passwords)
    with pytest.raises(AccountError, match="already exists"):
        add(store, "admin", Role.VIEWER, passwords)


def test_weak_passwords_are_refused_before_anything_is_written(
        path: Path, store: UserStore, passwords: Passwords) -> None:
    for weak in ("short", "alice.smith1"):
        with pytest.raises(PasswordError):
            add(store, "alice.smith1", Role.ADMIN, passwords, password=weak)
    assert not path.exists()


def test_each_user_gets_a_new_session_epoch_that_is_never_reused(
        path: Path, store: UserStore, passwords: Passwords) -> None:
    admin = add(store, "admin", Role.ADMIN, passwords)
    bob = add(store, "bob", Role.VIEWER, passwords)
    assert bob.session_epoch > admin.session_epoch
    store.remove_user("bob")
    bob_again = add(store, "bob", Role.VIEWER, passwords)
    assert bob_again.session_epoch > bob.session_epoch
    assert UserStore.open(path).user("bob") == bob_again


def test_password_reset_role_change_and_disabling_change_the_session_epoch(
        store: UserStore, passwords: Passwords) -> None:
    add(store, "admin", Role.ADMIN, passwords)
    bob = add(store, "bob", Role.VIEWER, passwords)
    seen = {bob.session_epoch}

    changed = reset_password(store, "bob", "a brand new password", passwords=passwords,
                             now=NOW + 5)
    assert changed.password_changed == NOW + 5
    assert changed.created == NOW
    seen.add(changed.session_epoch)
    seen.add(store.set_role("bob", Role.OPERATOR).session_epoch)
    seen.add(store.set_disabled("bob", True).session_epoch)
    assert current_session_epoch(store, "bob") is None  # disabled: no session is valid
    enabled = store.set_disabled("bob", False)
    seen.add(enabled.session_epoch)
    assert len(seen) == 5
    assert current_session_epoch(store, "bob") == enabled.session_epoch
    store.remove_user("bob")
    assert current_session_epoch(store, "bob") is None


def test_changes_that_change_nothing_keep_the_session_epoch(store: UserStore,
                                                            passwords: Passwords) -> None:
    add(store, "admin", Role.ADMIN, passwords)
    bob = add(store, "bob", Role.VIEWER, passwords)
    assert store.set_role("bob", Role.VIEWER) == bob
    assert store.set_disabled("bob", False) == bob


def test_the_last_enabled_admin_cannot_be_removed_demoted_or_disabled(
        store: UserStore, passwords: Passwords) -> None:
    add(store, "admin", Role.ADMIN, passwords)
    add(store, "viewer", Role.VIEWER, passwords)
    for change in (lambda: store.remove_user("admin"),
                   lambda: store.set_role("admin", Role.OPERATOR),
                   lambda: store.set_disabled("admin", True)):
        with pytest.raises(AccountError, match="last enabled admin"):
            change()
    add(store, "second", Role.ADMIN, passwords)
    store.set_disabled("second", True)
    with pytest.raises(AccountError, match="last enabled admin"):
        store.remove_user("admin")  # a disabled admin does not count
    store.set_disabled("second", False)
    store.set_role("admin", Role.OPERATOR)
    store.remove_user("admin")
    store.remove_user("viewer")
    assert [user.name for user in store.users()] == ["second"]


def test_unknown_users_are_reported_by_name(store: UserStore, passwords: Passwords) -> None:
    for change in (lambda: store.remove_user("ghost"),
                   lambda: store.set_role("ghost", Role.ADMIN),
                   lambda: store.set_disabled("ghost", True),
                   lambda: reset_password(store, "ghost", PASSWORD, passwords=passwords,
                                          now=NOW)):
        with pytest.raises(AccountError, match="no user 'ghost'"):
            change()


# ---------------------------------------------------------------- authentication


def test_authenticate_accepts_the_right_password_only(store: UserStore,
                                                      passwords: SpyPasswords) -> None:
    admin = add(store, "admin", Role.ADMIN, passwords)
    assert authenticate_password(store, "admin", PASSWORD, passwords=passwords) == admin
    assert authenticate_password(store, "Admin", PASSWORD, passwords=passwords) == admin
    assert authenticate_password(store, "admin", "wrong password!", passwords=passwords) is None
    assert passwords.dummy_checks == []


def test_authenticate_an_unknown_user_still_verifies_against_the_dummy(
        store: UserStore, passwords: SpyPasswords) -> None:
    add(store, "admin", Role.ADMIN, passwords)
    for name in ("ghost", "", "ADMIN\n", "x" * 10_000):
        assert authenticate_password(store, name, PASSWORD, passwords=passwords) is None
    assert passwords.dummy_checks == [PASSWORD] * 4


def test_authenticate_a_disabled_user_verifies_then_refuses(store: UserStore,
                                                           passwords: SpyPasswords) -> None:
    add(store, "admin", Role.ADMIN, passwords)
    add(store, "bob", Role.VIEWER, passwords)
    store.set_disabled("bob", True)
    passwords.real_checks.clear()
    assert authenticate_password(store, "bob", PASSWORD, passwords=passwords) is None
    assert passwords.real_checks == [PASSWORD]


async def test_authenticate_async_gives_the_sync_answer(store: UserStore,
                                                        passwords: SpyPasswords) -> None:
    admin = add(store, "admin", Role.ADMIN, passwords)
    assert await authenticate_password_async(store, "admin", PASSWORD,
                                             passwords=passwords) == admin
    assert await authenticate_password_async(store, "ghost", PASSWORD,
                                             passwords=passwords) is None
    assert passwords.dummy_checks == [PASSWORD]


def test_reset_password_makes_only_the_new_password_work(store: UserStore,
                                                         passwords: Passwords) -> None:
    add(store, "admin", Role.ADMIN, passwords)
    reset_password(store, "admin", "a brand new password", passwords=passwords, now=NOW)
    assert authenticate_password(store, "admin", PASSWORD, passwords=passwords) is None
    assert authenticate_password(store, "admin", "a brand new password",
                                 passwords=passwords) is not None


# ---------------------------------------------------------------- the first admin


def test_ensure_admin_generates_a_password_on_an_empty_store(
        path: Path, store: UserStore, passwords: Passwords) -> None:
    generated = ensure_admin(store, passwords=passwords, now=NOW, environ={})
    assert generated is not None
    assert len(generated) >= 24
    admin = authenticate_password(UserStore.open(path), "admin", generated, passwords=passwords)
    assert admin is not None
    assert admin.role is Role.ADMIN
    assert mode(path) == 0o600
    assert generated not in path.read_text()


def test_ensure_admin_does_nothing_when_users_exist(store: UserStore,
                                                    passwords: Passwords) -> None:
    add(store, "alice", Role.ADMIN, passwords)
    environ = {ADMIN_PASSWORD_ENV: "weak"}  # not even read
    assert ensure_admin(store, passwords=passwords, now=NOW, environ=environ) is None
    assert [user.name for user in store.users()] == ["alice"]


def test_ensure_admin_takes_the_password_from_the_environment(store: UserStore,
                                                              passwords: Passwords) -> None:
    environ = {ADMIN_PASSWORD_ENV: "from the environment"}
    assert ensure_admin(store, passwords=passwords, now=NOW, environ=environ) is None
    assert authenticate_password(store, "admin", "from the environment",
                                 passwords=passwords) is not None


def test_ensure_admin_takes_the_password_from_a_private_file(
        tmp_path: Path, store: UserStore, passwords: Passwords) -> None:
    secret = tmp_path / "admin-password"
    secret.write_text("from a mounted file\n")
    secret.chmod(0o600)
    assert ensure_admin(store, passwords=passwords, now=NOW, environ={},
                        password_file=secret) is None
    assert authenticate_password(store, "admin", "from a mounted file",
                                 passwords=passwords) is not None


def test_ensure_admin_refuses_ambiguous_weak_or_unsafe_sources(
        tmp_path: Path, path: Path, store: UserStore, passwords: Passwords) -> None:
    secret = tmp_path / "admin-password"
    secret.write_text("from a mounted file\n")
    secret.chmod(0o644)
    with pytest.raises(AccountError, match="both"):
        ensure_admin(store, passwords=passwords, now=NOW,
                     environ={ADMIN_PASSWORD_ENV: "from the environment"}, password_file=secret)
    with pytest.raises(PasswordError, match="chmod 600"):
        ensure_admin(store, passwords=passwords, now=NOW, environ={}, password_file=secret)
    with pytest.raises(PasswordError, match=f"{ADMIN_PASSWORD_ENV}: password too short"):
        ensure_admin(store, passwords=passwords, now=NOW, environ={ADMIN_PASSWORD_ENV: "short"})
    assert not path.exists()


# ---------------------------------------------------------------- tokens


def test_a_token_is_stored_only_as_its_sha256(path: Path, store: UserStore) -> None:
    token_id, token = create_token(store, Role.OPERATOR, 30 * DAY, "ci", NOW)
    prefix, presented_id, secret = token.split("_", 2)
    assert (prefix, presented_id) == ("phx", token_id)
    assert len(secret) >= 43
    text = path.read_text()
    assert secret not in text
    assert hashlib.sha256(token.encode()).hexdigest() in text
    assert store.token_digest(token_id) == hashlib.sha256(token.encode()).hexdigest()
    assert mode(path) == 0o600


def test_verify_token_accepts_it_until_it_expires(store: UserStore) -> None:
    token_id, token = create_token(store, Role.OPERATOR, DAY, "ci", NOW)
    info = verify_token(store, token, NOW + 10)
    assert info is not None
    assert (info.token_id, info.role, info.label) == (token_id, Role.OPERATOR, "ci")
    assert info.expires == NOW + DAY
    assert info.last_used == NOW + 10
    assert verify_token(store, token, NOW + DAY - 1) is not None
    assert verify_token(store, token, NOW + DAY) is None


def test_last_used_is_kept_in_memory_until_saved(path: Path, store: UserStore) -> None:
    token_id, token = create_token(store, Role.VIEWER, DAY, "", NOW)
    assert verify_token(store, token, NOW + 60) is not None
    assert UserStore.open(path).token(token_id).last_used is None  # type: ignore[union-attr]
    store.save()
    assert UserStore.open(path).token(token_id).last_used == NOW + 60  # type: ignore[union-attr]


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
    lambda t: "phx_000000000000_" + t.split("_", 2)[2],  # unknown id
    lambda t: t.replace("phx_", "pat_", 1),
    lambda t: t.split("_", 2)[0] + "_" + t.split("_", 2)[1],
    lambda t: "",
    lambda t: t + "é",
    lambda t: t + "x" * 500,
    lambda t: "Bearer " + t,
])
def test_verify_token_refuses_anything_but_the_exact_token(store: UserStore,
                                                           mangle: Any) -> None:
    _token_id, token = create_token(store, Role.OPERATOR, DAY, "", NOW)
    assert verify_token(store, mangle(token), NOW) is None


def test_verify_token_compares_digests_in_constant_time_for_unknown_ids_too(
        monkeypatch: pytest.MonkeyPatch, store: UserStore) -> None:
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    _token_id, token = create_token(store, Role.OPERATOR, DAY, "", NOW)
    assert verify_token(store, token, NOW) is not None
    assert verify_token(store, "phx_000000000000_" + token.split("_", 2)[2], NOW) is None
    assert len(compared) == 2
    assert all(len(a) == len(b) == 64 for a, b in compared)


def test_a_revoked_token_stops_working_and_stays_revoked(path: Path, store: UserStore) -> None:
    token_id, token = create_token(store, Role.OPERATOR, DAY, "", NOW)
    assert revoke_token(store, token_id).token_id == token_id
    assert verify_token(store, token, NOW) is None
    assert verify_token(UserStore.open(path), token, NOW) is None
    with pytest.raises(AccountError, match="no token with id"):
        revoke_token(store, token_id)


def test_tokens_cannot_be_admin_nor_live_too_long_nor_carry_bad_labels(
        store: UserStore) -> None:
    with pytest.raises(AccountError, match="cannot have the role admin"):
        create_token(store, Role.ADMIN, DAY, "", NOW)
    for lifetime in (0.0, -1.0, 367 * DAY, float("nan")):
        with pytest.raises(AccountError, match="lifetime"):
            create_token(store, Role.VIEWER, lifetime, "", NOW)
    for label in ("a\nb", "x" * 101, "\x1b[31m"):
        with pytest.raises(AccountError, match="label"):
            create_token(store, Role.VIEWER, DAY, label, NOW)
    assert store.tokens() == ()


def test_expired_tokens_are_pruned_when_a_token_is_created(store: UserStore) -> None:
    old_id, _old = create_token(store, Role.VIEWER, DAY, "old", NOW)
    new_id, _new = create_token(store, Role.VIEWER, DAY, "new", NOW + 2 * DAY)
    assert [info.token_id for info in store.tokens()] == [new_id]
    assert store.token(old_id) is None


def test_token_list_never_holds_a_secret_or_digest(store: UserStore) -> None:
    _token_id, token = create_token(store, Role.VIEWER, DAY, "dash", NOW)
    for info in store.tokens():
        assert token.split("_", 2)[2] not in repr(info)
        assert store.token_digest(info.token_id) not in repr(info)  # type: ignore[operator]


@pytest.mark.parametrize(("text", "seconds"), [
    ("30d", 30 * DAY), ("12h", 12 * 3600.0), ("1d12h", 1.5 * DAY), ("366d", 366 * DAY),
    ("90", 90.0),
])
def test_token_lifetimes_are_parsed_as_durations(text: str, seconds: float) -> None:
    assert parse_token_lifetime(text) == seconds


@pytest.mark.parametrize("text", ["0", "0d", "367d", "abc", "", "-1d", "nan"])
def test_token_lifetimes_outside_the_bounds_are_refused(text: str) -> None:
    with pytest.raises(AccountError, match="token lifetime"):
        parse_token_lifetime(text)


def test_store_path_comes_from_the_flag_then_the_environment_then_the_default(
        tmp_path: Path) -> None:
    flag = tmp_path / "flag.json"
    environ = {accounts.STORE_ENV: str(tmp_path / "env.json")}
    assert resolve_store_path(flag, environ) == flag
    assert resolve_store_path(None, environ) == tmp_path / "env.json"
    assert resolve_store_path(None, {}) == Path("phalanx-users.json")
    assert resolve_store_path(None, {accounts.STORE_ENV: ""}) == Path("phalanx-users.json")
