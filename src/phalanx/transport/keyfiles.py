"""CURVE keys and their files: generate, fingerprint, write atomically, read safely.

Keys are handled in Z85 text (40 characters for 32 bytes), the form ZeroMQ's
socket options take. A key file is a few ``name value`` lines; lines starting
with ``#`` are comments::

    # phalanx CURVE secret key (worker w1): keep this file private (mode 0600)
    public-key <40 characters of Z85>
    secret-key <40 characters of Z85>

A public key file (``*.pub``) has the ``public-key`` line only.

Invariants
----------
- Writing is atomic (a temporary file in the same directory, fsync, rename)
  and sets the mode explicitly, regardless of the umask: secret files 0600,
  public files 0644.
- Reading a secret key refuses a file that the group or others may read
  (``mode & 0o077``), naming the file and the fix (``chmod 600``); it also
  refuses a secret whose public half does not match the file's public key.
- A fingerprint is the first 16 hex digits of the SHA-256 of the 32 raw key
  bytes: short enough to read aloud, long enough to tell keys apart.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import zmq
from zmq.utils import z85

from phalanx.security.files import fsync_dir
from phalanx.transport.errors import KeyFileError

SECRET_MODE: Final = 0o600
PUBLIC_MODE: Final = 0o644
MAX_KEY_FILE_BYTES: Final = 4096
_Z85_ALPHABET: Final = frozenset(
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A CURVE keypair in Z85 (``secret`` is None for a public key alone)."""

    public: bytes
    secret: bytes | None = None

    def __repr__(self) -> str:  # never print a secret
        return f"KeyPair(fingerprint={fingerprint(self.public)!r})"


def generate_keypair() -> KeyPair:
    """A fresh CURVE keypair from libsodium."""
    public, secret = zmq.curve_keypair()
    return KeyPair(public=public, secret=secret)


def parse_z85_key(text: bytes | str) -> bytes:
    """``text`` as a Z85 key (bytes); ``ValueError`` unless it is 40 Z85 characters."""
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if len(raw) != 40 or not set(raw) <= _Z85_ALPHABET:
        raise ValueError("a key is 40 characters of Z85")
    try:
        z85.decode(raw)
    except (struct.error, ValueError, KeyError):  # a 5-character group above 2**32
        raise ValueError("not a valid Z85 key") from None
    return raw


def fingerprint(public_key: bytes | str) -> str:
    """Short display form of a Z85 public key: 16 hex digits of SHA-256 of its raw bytes."""
    return hashlib.sha256(z85.decode(parse_z85_key(public_key))).hexdigest()[:16]


def write_secret_key(path: Path, pair: KeyPair, *, label: str) -> None:
    """Write ``pair`` (public and secret) to ``path`` atomically with mode 0600."""
    if pair.secret is None:
        raise ValueError("write_secret_key needs a secret key")
    text = (
        f"# phalanx CURVE secret key ({label}): keep this file private (mode 0600)\n"
        f"public-key {pair.public.decode('ascii')}\n"
        f"secret-key {pair.secret.decode('ascii')}\n"
    )
    write_atomic(path, text.encode("ascii"), SECRET_MODE)


def write_public_key(path: Path, public: bytes, *, label: str) -> None:
    """Write a public key to ``path`` atomically with mode 0644."""
    text = f"# phalanx CURVE public key ({label})\npublic-key {public.decode('ascii')}\n"
    write_atomic(path, text.encode("ascii"), PUBLIC_MODE)


def read_secret_key(path: Path) -> KeyPair:
    """Read a secret key file; refuse it if group/others may read it or it is malformed."""
    data, mode = _read_small(path)
    if mode & 0o077:
        raise KeyFileError(
            f"{path} is readable by group or others (mode {mode & 0o777:04o}); a secret key "
            f"must be private: run 'chmod 600 {path}'"
        )
    fields = _parse_fields(path, data)
    public, secret = fields.get("public-key"), fields.get("secret-key")
    if public is None or secret is None:
        raise KeyFileError(f"{path}: not a secret key file (needs public-key and secret-key)")
    if zmq.curve_public(secret) != public:
        raise KeyFileError(f"{path}: the public key does not belong to the secret key")
    return KeyPair(public=public, secret=secret)


def read_public_key(path: Path) -> bytes:
    """Read a public key file (``public-key`` line); a secret key file is accepted too."""
    data, _mode = _read_small(path)
    public = _parse_fields(path, data).get("public-key")
    if public is None:
        raise KeyFileError(f"{path}: not a key file (no public-key line)")
    return public


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` atomically; the file has exactly ``mode``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def read_limited(path: Path, limit: int) -> tuple[bytes, int]:
    """The bytes of a regular file of at most ``limit`` bytes, and its mode bits."""
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise KeyFileError(f"{path} is not a regular file")
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise KeyFileError(f"{path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise KeyFileError(f"{path} is larger than {limit} bytes")
    return data, stat.S_IMODE(info.st_mode)


def _read_small(path: Path) -> tuple[bytes, int]:
    return read_limited(path, MAX_KEY_FILE_BYTES)


def _parse_fields(path: Path, data: bytes) -> dict[str, bytes]:
    fields: dict[str, bytes] = {}
    for number, line in enumerate(data.splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith(b"#"):
            continue
        name, _, value = text.partition(b" ")
        key = name.decode("ascii", "replace")
        if key not in ("public-key", "secret-key") or key in fields:
            raise KeyFileError(f"{path}:{number}: unexpected line in a key file")
        try:
            fields[key] = parse_z85_key(value.strip())
        except ValueError as exc:
            raise KeyFileError(f"{path}:{number}: {exc}") from None
    return fields
