"""Passwords: argon2id hashing, the policy for new passwords, password files.

Hashing (:class:`Passwords`)
    argon2id through argon2-cffi. The production parameters are RFC 9106's
    second recommended option ("low memory"): 3 passes over 64 MiB with 4
    lanes, a 16-byte random salt and a 32-byte tag. One hash or verification
    costs about 100–200 ms of CPU and 64 MiB of memory, so it never runs on
    the event loop: use the ``*_async`` methods there (``asyncio.to_thread``),
    and bound how many run at once in the web layer (memory = 64 MiB each).
    Parameters are injectable so tests can use cheap ones; a hash records its
    own parameters, so a stored hash stays verifiable after they change, and
    :meth:`Passwords.needs_rehash` says when to re-hash at the next login.
Verification
    :meth:`Passwords.verify_password` returns ``False`` for a wrong password
    and for a malformed or non-argon2 hash: it never raises for what a caller
    types. argon2 compares the tags in constant time.
Unknown users
    A login for a name that does not exist must cost what a real one costs,
    or the response time tells which names exist. :meth:`verify_unknown_user`
    verifies the password against a dummy hash made with the same parameters
    (from a random password, once per :class:`Passwords`) and returns
    ``False``. Callers use it whenever there is no real hash to check.
Policy (:func:`check_new_password`)
    A new password has 12 to 1024 characters, no control characters
    (newlines included: a two-line file is a mistake, not a password), is
    not made of one repeated character and is not the user name (ignoring
    case). Text is NFKC-normalised before hashing and before verification,
    so the same password typed on two keyboards matches.
Files (:func:`read_password_file`)
    A password file is refused when group or others may read or write it
    (``chmod 600``), when it is not a regular file or over 4 KiB; one
    trailing newline is removed. Error messages never contain the password.
"""

from __future__ import annotations

import asyncio
import secrets
import unicodedata
from pathlib import Path
from typing import Final

import argon2
from argon2 import profiles
from argon2.exceptions import InvalidHashError, VerificationError

from phalanx.core.errors import ConfigError
from phalanx.transport.errors import KeyFileError
from phalanx.transport.keyfiles import read_limited

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "PRODUCTION_PARAMETERS",
    "PasswordError",
    "Passwords",
    "check_new_password",
    "generate_password",
    "read_password_file",
]

PRODUCTION_PARAMETERS: Final[argon2.Parameters] = profiles.RFC_9106_LOW_MEMORY
"""argon2id, time_cost=3, memory_cost=65536 KiB (64 MiB), parallelism=4, salt 16, hash 32."""
MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024
MAX_PASSWORD_FILE_BYTES: Final = 4096
GENERATED_PASSWORD_BYTES: Final = 18  # 144 random bits, 24 URL-safe characters


class PasswordError(ConfigError):
    """A new password breaks the policy, or a password cannot be read. Never holds the password."""


class Passwords:
    """argon2id hashing with one set of parameters (production ones unless told otherwise)."""

    __slots__ = ("_dummy_hash", "_hasher", "_parameters")

    def __init__(self, parameters: argon2.Parameters = PRODUCTION_PARAMETERS) -> None:
        if parameters.type is not argon2.Type.ID:
            raise ValueError("phalanx hashes passwords with argon2id only")
        self._parameters = parameters
        self._hasher = argon2.PasswordHasher.from_parameters(parameters)
        self._dummy_hash: str | None = None

    @property
    def parameters(self) -> argon2.Parameters:
        """The parameters new hashes are made with."""
        return self._parameters

    def hash_password(self, password: str) -> str:
        """A new argon2id hash (PHC string, ``$argon2id$v=19$m=...``) of ``password``."""
        return self._hasher.hash(_normalise(password))

    def verify_password(self, stored_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``stored_hash``; ``False`` (never an error) otherwise."""
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        try:
            return self._hasher.verify(stored_hash, _normalise(password))
        except (VerificationError, InvalidHashError):
            return False

    async def verify_password_async(self, stored_hash: str, password: str) -> bool:
        """:meth:`verify_password` in a worker thread: for use on the event loop."""
        return await asyncio.to_thread(self.verify_password, stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` was made with other parameters (or cannot be read)."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True

    def verify_unknown_user(self, password: str) -> bool:
        """Spend what a real verification costs, then return ``False`` (no such user)."""
        self.verify_password(self._dummy(), password)
        return False

    async def verify_unknown_user_async(self, password: str) -> bool:
        """:meth:`verify_unknown_user` in a worker thread."""
        return await asyncio.to_thread(self.verify_unknown_user, password)

    def _dummy(self) -> str:
        dummy = self._dummy_hash
        if dummy is None:  # two threads may both compute one: either hash serves
            dummy = self._hasher.hash(secrets.token_urlsafe(32))
            self._dummy_hash = dummy
        return dummy

    def __repr__(self) -> str:
        params = self._parameters
        return (f"Passwords(argon2id t={params.time_cost} m={params.memory_cost}KiB "
                f"p={params.parallelism})")


def check_new_password(password: str, *, user_name: str) -> None:
    """Raise :class:`PasswordError` unless ``password`` may become ``user_name``'s password."""
    text = _normalise(password)
    if len(text) < MIN_PASSWORD_LENGTH:
        raise PasswordError(f"password too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(text) > MAX_PASSWORD_LENGTH:
        raise PasswordError(f"password too long: use at most {MAX_PASSWORD_LENGTH} characters")
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise PasswordError("password contains a control character (a newline, a tab...)")
    if len(set(text)) == 1:
        raise PasswordError("password is one character repeated")
    if text.casefold() == _normalise(user_name).casefold():
        raise PasswordError("password is the user name")


def generate_password() -> str:
    """A random password of 24 URL-safe characters (144 bits), shown once to its owner."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def read_password_file(path: Path) -> str:
    """The password in ``path`` (one trailing newline removed); only from a private file."""
    try:
        data, mode = read_limited(path, MAX_PASSWORD_FILE_BYTES)
    except KeyFileError as exc:
        raise PasswordError(f"password file: {exc}") from None
    if mode & 0o077:
        raise PasswordError(
            f"{path} is readable or writable by group or others (mode {mode & 0o777:04o}); "
            f"a password file must be private: run 'chmod 600 {path}'"
        )
    return decode_password(data, source=str(path))


def decode_password(data: bytes, *, source: str) -> str:
    """``data`` (a file's or stdin's bytes) as a password: UTF-8, one trailing newline removed."""
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PasswordError(f"{source}: the password is not valid UTF-8") from None
    if not text:
        raise PasswordError(f"{source}: the password is empty")
    return text


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text)
