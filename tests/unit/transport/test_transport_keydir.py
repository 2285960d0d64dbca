"""The keys directory: init, add-worker, revoke, list, and credentials for both ends."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from phalanx.transport import KeyDir, KeyFileError, fingerprint, read_allow_list


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def keys(tmp_path: Path) -> KeyDir:
    keys = KeyDir(tmp_path / "keys")
    keys.init()
    return keys


def test_init_creates_master_and_w1_keys_with_private_modes_and_an_allow_list(
        tmp_path: Path) -> None:
    keys = KeyDir(tmp_path / "keys")
    master_print, w1_print = keys.init()
    assert mode(keys.root) == 0o700
    assert mode(keys.workers) == 0o700
    assert mode(keys.master_key) == 0o600
    assert mode(keys.worker_key("w1")) == 0o600
    assert mode(keys.master_public) == 0o644
    assert mode(keys.worker_public("w1")) == 0o644
    assert mode(keys.allow_list) == 0o644
    [entry] = read_allow_list(keys.allow_list)
    assert entry.name == "w1"
    assert fingerprint(entry.key) == w1_print
    assert keys.curve_server().keypair.public == keys.curve_client("w1").master_public
    assert fingerprint(keys.curve_client("w1").master_public) == master_print


def test_init_refuses_to_overwrite_existing_keys(keys: KeyDir) -> None:
    before = keys.master_key.read_bytes()
    with pytest.raises(KeyFileError, match=r"already exists.*--force"):
        keys.init()
    assert keys.master_key.read_bytes() == before


def test_init_with_force_replaces_the_keys_and_resets_the_allow_list(keys: KeyDir) -> None:
    keys.add_worker("w2")
    before = keys.master_key.read_bytes()
    keys.init(force=True)
    assert keys.master_key.read_bytes() != before
    assert [e.name for e in read_allow_list(keys.allow_list)] == ["w1"]


def test_add_worker_authorizes_a_new_key_and_returns_its_fingerprint(keys: KeyDir) -> None:
    print_ = keys.add_worker("w2")
    client = keys.curve_client("w2")
    assert fingerprint(client.keypair.public) == print_
    assert [e.name for e in read_allow_list(keys.allow_list)] == ["w1", "w2"]
    assert mode(keys.worker_key("w2")) == 0o600


def test_add_worker_refuses_an_existing_name_unless_forced(keys: KeyDir) -> None:
    old = keys.curve_client("w1").keypair.public
    with pytest.raises(KeyFileError, match="already exists"):
        keys.add_worker("w1")
    keys.add_worker("w1", force=True)
    entries = read_allow_list(keys.allow_list)
    assert [e.name for e in entries] == ["w1"]
    assert entries[0].key != old


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x" * 65, "w 1", "w\n1"])
def test_worker_names_that_could_escape_the_directory_are_refused(
        keys: KeyDir, name: str) -> None:
    with pytest.raises(KeyFileError, match="invalid worker name"):
        keys.add_worker(name)


def test_revoke_removes_the_worker_from_the_allow_list_and_keeps_its_files(
        keys: KeyDir) -> None:
    added = keys.add_worker("w2")
    assert keys.revoke("w2") == added
    assert [e.name for e in read_allow_list(keys.allow_list)] == ["w1"]
    assert keys.worker_key("w2").exists()


def test_revoking_an_unknown_worker_is_an_error(keys: KeyDir) -> None:
    with pytest.raises(KeyFileError, match="not on the allow-list"):
        keys.revoke("w9")


def test_listing_shows_the_master_and_authorized_and_revoked_workers(keys: KeyDir) -> None:
    keys.add_worker("w2")
    keys.add_worker("w3")
    keys.revoke("w3")
    listing = keys.listing()
    assert listing.master_fingerprint == fingerprint(keys.curve_client("w1").master_public)
    assert [(w.name, w.authorized, w.has_key_file) for w in listing.workers] == [
        ("w1", True, True), ("w2", True, True), ("w3", False, True),
    ]


def test_listing_flags_secret_key_files_others_may_read(keys: KeyDir) -> None:
    assert keys.listing().problems == ()
    keys.worker_key("w1").chmod(0o644)
    [problem] = keys.listing().problems
    assert f"chmod 600 {keys.worker_key('w1')}" in problem


def test_master_credentials_refuse_a_loose_master_key(keys: KeyDir) -> None:
    keys.master_key.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        keys.curve_server()


def test_worker_credentials_refuse_a_loose_worker_key(keys: KeyDir) -> None:
    keys.worker_key("w1").chmod(0o640)
    with pytest.raises(KeyFileError, match="chmod 600"):
        keys.curve_client("w1")


def test_operations_on_a_missing_directory_are_clear_errors(tmp_path: Path) -> None:
    keys = KeyDir(tmp_path / "nope")
    with pytest.raises(KeyFileError, match="does not exist"):
        keys.add_worker("w2")
    with pytest.raises(KeyFileError, match="does not exist"):
        keys.listing()
