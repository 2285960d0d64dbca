"""Key files: atomic writes with exact modes, refusal of loose secret files, fingerprints."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from phalanx.core.errors import PhalanxError
from phalanx.transport import KeyFileError, fingerprint, generate_keypair
from phalanx.transport.keyfiles import (
    KeyPair,
    parse_z85_key,
    read_public_key,
    read_secret_key,
    write_atomic,
    write_public_key,
    write_secret_key,
)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would leave new files world-writable: modes must not depend on it."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generated_keypair_is_a_valid_curve_pair() -> None:
    pair = generate_keypair()
    assert pair.secret is not None
    assert len(pair.public) == len(pair.secret) == 40
    assert zmq.curve_public(pair.secret) == pair.public


def test_secret_key_file_is_written_0600_and_public_0644_whatever_the_umask(
        tmp_path: Path, open_umask: None) -> None:
    pair = generate_keypair()
    write_secret_key(tmp_path / "a.key", pair, label="test")
    write_public_key(tmp_path / "a.key.pub", pair.public, label="test")
    assert mode(tmp_path / "a.key") == 0o600
    assert mode(tmp_path / "a.key.pub") == 0o644


def test_secret_key_round_trips_and_public_key_reads_from_either_file(tmp_path: Path) -> None:
    pair = generate_keypair()
    write_secret_key(tmp_path / "a.key", pair, label="test")
    write_public_key(tmp_path / "a.key.pub", pair.public, label="test")
    assert read_secret_key(tmp_path / "a.key") == pair
    assert read_public_key(tmp_path / "a.key.pub") == pair.public
    assert read_public_key(tmp_path / "a.key") == pair.public


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o660])
def test_group_or_world_readable_secret_key_is_refused_naming_file_and_fix(
        tmp_path: Path, loose: int) -> None:
    path = tmp_path / "a.key"
    write_secret_key(path, generate_keypair(), label="test")
    path.chmod(loose)
    with pytest.raises(KeyFileError) as info:
        read_secret_key(path)
    message = str(info.value)
    assert str(path) in message
    assert f"chmod 600 {path}" in message
    assert isinstance(info.value, PhalanxError)
    assert info.value.exit_code == 2


def test_owner_only_secret_key_modes_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    write_secret_key(path, generate_keypair(), label="test")
    path.chmod(0o400)
    read_secret_key(path)


def test_secret_key_whose_public_half_does_not_match_is_refused(tmp_path: Path) -> None:
    a, b = generate_keypair(), generate_keypair()
    path = tmp_path / "a.key"
    write_secret_key(path, KeyPair(public=b.public, secret=a.secret), label="test")
    with pytest.raises(KeyFileError, match="does not belong"):
        read_secret_key(path)


@pytest.mark.parametrize(
    "text",
    [
        b"public-key short\nsecret-key short\n",
        b"nonsense line\n",
        b"public-key " + b"a" * 40 + b"\n",  # no secret-key
        b"",
    ],
)
def test_malformed_secret_key_file_is_refused(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "a.key"
    write_atomic(path, text, 0o600)
    with pytest.raises(KeyFileError, match=str(path)):
        read_secret_key(path)


def test_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        read_secret_key(tmp_path / "nope.key")


def test_oversized_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    write_atomic(path, b"#" * 10_000, 0o600)
    with pytest.raises(KeyFileError, match="larger than"):
        read_secret_key(path)


def test_directory_in_place_of_a_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.key").mkdir()
    with pytest.raises(KeyFileError):
        read_secret_key(tmp_path / "a.key")


def test_atomic_write_replaces_the_file_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "f"
    write_atomic(path, b"one", 0o644)
    write_atomic(path, b"two", 0o600)
    assert path.read_bytes() == b"two"
    assert mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_fingerprint_is_16_hex_digits_stable_and_distinct_per_key() -> None:
    a, b = generate_keypair(), generate_keypair()
    assert len(fingerprint(a.public)) == 16
    int(fingerprint(a.public), 16)
    assert fingerprint(a.public) == fingerprint(a.public.decode())
    assert fingerprint(a.public) != fingerprint(b.public)


def test_keypair_repr_never_shows_the_secret() -> None:
    pair = generate_keypair()
    assert pair.secret is not None
    assert pair.secret.decode() not in repr(pair)
    assert fingerprint(pair.public) in repr(pair)


@pytest.mark.parametrize(
    "text", ["", "a" * 39, "a" * 41, "a" * 39 + " ", "a" * 39 + "\n", "#" * 40, "é" * 40])
def test_z85_key_must_be_exactly_40_valid_z85_characters(text: str) -> None:
    with pytest.raises(ValueError, match="Z85"):
        parse_z85_key(text)
