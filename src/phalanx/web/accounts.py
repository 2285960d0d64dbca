"""Accounts: the users and API tokens of the web UI, in one private JSON file.

The store file
--------------
Where: ``--store FILE``, else ``$PHALANX_USER_STORE``, else
``phalanx-users.json`` in the current directory (:func:`resolve_store_path`).
It holds no secret in clear, only argon2id password hashes and SHA-256 token
digests, but those allow offline guessing: keep it out of version control.
::

    {"format": "phalanx-users", "version": 1, "epoch_counter": 7,
     "users":  [{"name": "admin", "role": "admin", "password_hash": "$argon2id$...",
                 "created": 1700000000.0, "password_changed": 1700000000.0,
                 "disabled": false, "session_epoch": 1}],
     "tokens": [{"id": "3f9a0c1b2d4e", "sha256": "<64 hex>", "role": "operator",
                 "label": "ci", "created": ..., "expires": ..., "last_used": null}]}

Times are epoch seconds (wall clock), always passed in as ``now``.

Invariants
----------
- Every change is written through at once, atomically (temporary file,
  fsync, rename) with mode 0600; memory changes only after the write
  succeeded, so memory and file never disagree on users or tokens.
- Reading refuses a file that group or others may read or write (``chmod
  600``), a symbolic link, anything but a regular file, a file over 4 MiB,
  an unknown format or a newer version, and any invalid entry, each with a
  one-line :class:`AccountError` (exit code 2) naming the file.
- At most 1000 users and 1000 tokens. User names match
  ``[a-z0-9_][a-z0-9_.-]{0,63}``.
- The last enabled admin cannot be removed, demoted or disabled.
- ``session_epoch``: every user has one, drawn from a store-wide counter
  that only grows, so a value is never reused, even for a removed user's
  name given to a new user. It changes when the password is reset, the role
  changes or the user is disabled/enabled. The web layer keeps the
  ``(name, session_epoch)`` of a login in the session and accepts the
  session only while the user exists, is enabled and has the same epoch.

One writer at a time
--------------------
A :class:`UserStore` is an in-memory copy of the file. Two processes (the
CLI and a running master) may both hold one, but should not both change
accounts: before writing, the store checks that the file is still the one it
read (inode, size, times) and refuses to write otherwise ("changed by another
process"); the loser reopens the store and tries again. The check narrows the
window for a lost update; it is not a lock.

Tokens
------
``phx_<id>_<secret>``: ``id`` is 12 random hex digits (it names the token in
lists and revocation), ``secret`` 32 random bytes in URL-safe base64. The
token is shown once; the store keeps the SHA-256 of the whole token. A fast
hash is right here: a token carries 256 bits from ``secrets``, so no
guessing attack exists for a slow hash to slow down, and each API request
would otherwise pay argon2's 100 ms and 64 MiB. The digest is compared with
``hmac.compare_digest``, against a dummy digest when the id is unknown.
Tokens expire (30 days by default, at most 366 days) and cannot hold the
admin role: a leaked CI token must not be able to manage users. ``last_used``
is updated in memory on each successful verification and written with the
next change or :meth:`UserStore.save`.

Passwords
---------
:func:`authenticate_password` verifies the password of an unknown or
disabled user too (against a dummy hash for an unknown one), so the time a
login takes does not tell which names exist. :func:`ensure_admin` creates the
first admin when the store has no user at all.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import os
import re
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

import msgspec

from phalanx.config.durations import parse_duration
from phalanx.core.errors import ConfigError
from phalanx.security.files import read_at_most
from phalanx.transport.keyfiles import write_atomic
from phalanx.web.passwords import (
    PasswordError,
    Passwords,
    check_new_password,
    generate_password,
    read_password_file,
)
from phalanx.web.rbac import Role

__all__ = [
    "ADMIN_NAME",
    "ADMIN_PASSWORD_ENV",
    "DEFAULT_STORE_NAME",
    "STORE_ENV",
    "AccountError",
    "TokenInfo",
    "User",
    "UserStore",
    "add_user",
    "authenticate_password",
    "authenticate_password_async",
    "create_token",
    "current_session_epoch",
    "ensure_admin",
    "parse_token_lifetime",
    "reset_password",
    "resolve_store_path",
    "revoke_token",
    "validate_user_name",
    "verify_token",
]

STORE_FORMAT: Final = "phalanx-users"
SCHEMA_VERSION: Final = 1
DEFAULT_STORE_NAME: Final = "phalanx-users.json"
STORE_ENV: Final = "PHALANX_USER_STORE"
ADMIN_PASSWORD_ENV: Final = "PHALANX_ADMIN_PASSWORD"  # noqa: S105 - a variable's name
ADMIN_NAME: Final = "admin"
STORE_MODE: Final = 0o600
MAX_STORE_BYTES: Final = 4 * 1024 * 1024
MAX_USERS: Final = 1000
MAX_TOKENS: Final = 1000
TOKEN_PREFIX: Final = "phx"  # noqa: S105 - the visible prefix of every token
TOKEN_ROLES: Final = frozenset({Role.VIEWER, Role.OPERATOR})
DEFAULT_TOKEN_LIFETIME: Final = 30 * 86400.0
MAX_TOKEN_LIFETIME: Final = 366 * 86400.0
MAX_LABEL_LENGTH: Final = 100
_MAX_TOKEN_LENGTH: Final = 200
_USER_NAME: Final = re.compile(r"[a-z0-9_][a-z0-9_.\-]{0,63}\Z")
_TOKEN_ID: Final = re.compile(r"[0-9a-f]{12}\Z")
_DIGEST: Final = re.compile(r"[0-9a-f]{64}\Z")
_NO_DIGEST: Final = "0" * 64


class AccountError(ConfigError):
    """The user store cannot be read or written, or a change to it is refused."""


@dataclass(frozen=True, slots=True)
class User:
    """A web user as stored; ``password_hash`` is never shown in its repr."""

    name: str
    role: Role
    password_hash: str = field(repr=False)
    created: float
    password_changed: float
    disabled: bool
    session_epoch: int


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is known about an API token; never its secret, never its digest."""

    token_id: str
    role: Role
    label: str
    created: float
    expires: float
    last_used: float | None

    def expired(self, now: float) -> bool:
        """Whether the token is past its expiry at ``now``."""
        return now >= self.expires


# ---------------------------------------------------------------- file format


class _Header(msgspec.Struct):
    format: str
    version: int


class _UserRecord(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    role: Role
    password_hash: str
    created: float
    password_changed: float
    disabled: bool
    session_epoch: int


class _TokenRecord(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    sha256: str
    role: Role
    label: str
    created: float
    expires: float
    last_used: float | None


class _StoreFile(msgspec.Struct, forbid_unknown_fields=True):
    format: str
    version: int
    epoch_counter: int
    users: list[_UserRecord]
    tokens: list[_TokenRecord]


@dataclass(frozen=True, slots=True)
class _State:
    users: Mapping[str, User]
    tokens: Mapping[str, tuple[TokenInfo, str]]  # id -> (info, sha256 hex)
    epoch_counter: int


_Stamp = tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns


# ---------------------------------------------------------------- the store


class UserStore:
    """The users and tokens of one store file; see the module docstring for the invariants."""

    __slots__ = ("_path", "_stamp", "_state")

    def __init__(self, path: Path, state: _State, stamp: _Stamp | None) -> None:
        self._path = path
        self._state = state
        self._stamp = stamp

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> UserStore:
        """Read the store at ``path``; with ``create``, a missing file is an empty store.

        An empty store's file is written by its first change.
        """
        loaded = _read_store_file(path)
        if loaded is None:
            if not create:
                raise AccountError(f"no user store at {path} (create one with "
                                   "'phalanx users add NAME --role admin')")
            if not path.parent.is_dir():
                raise AccountError(f"cannot create the user store {path}: "
                                   f"{path.parent} is not a directory")
            return cls(path, _State(users={}, tokens={}, epoch_counter=0), None)
        data, stamp = loaded
        return cls(path, _decode(path, data), stamp)

    @property
    def path(self) -> Path:
        """The store file."""
        return self._path

    @property
    def exists(self) -> bool:
        """Whether the store has been written to its file (an empty new store has not)."""
        return self._stamp is not None

    def users(self) -> tuple[User, ...]:
        """Every user, by name."""
        return tuple(sorted(self._state.users.values(), key=lambda user: user.name))

    def user(self, name: str) -> User | None:
        """The user called ``name``, or None."""
        return self._state.users.get(name)

    def tokens(self) -> tuple[TokenInfo, ...]:
        """Every token (expired ones too), oldest first; never a secret."""
        infos = (info for info, _digest in self._state.tokens.values())
        return tuple(sorted(infos, key=lambda info: (info.created, info.token_id)))

    def token(self, token_id: str) -> TokenInfo | None:
        """The token with id ``token_id``, or None."""
        entry = self._state.tokens.get(token_id)
        return None if entry is None else entry[0]

    def token_digest(self, token_id: str) -> str | None:
        """The SHA-256 (hex) stored for ``token_id``, or None."""
        entry = self._state.tokens.get(token_id)
        return None if entry is None else entry[1]

    # ---- changes (each one written through)

    def add_user(self, name: str, role: Role, password_hash: str, *, now: float) -> User:
        """Add a user with an argon2id ``password_hash``; refused if the name is taken."""
        validate_user_name(name)
        _check_hash(password_hash)
        state = self._state
        if name in state.users:
            raise AccountError(f"user {name!r} already exists")
        if len(state.users) >= MAX_USERS:
            raise AccountError(f"the user store holds its maximum of {MAX_USERS} users")
        epoch = state.epoch_counter + 1
        user = User(name=name, role=Role(role), password_hash=password_hash, created=now,
                    password_changed=now, disabled=False, session_epoch=epoch)
        self._commit(replace(state, users={**state.users, name: user}, epoch_counter=epoch))
        return user

    def remove_user(self, name: str) -> User:
        """Remove a user (ending its sessions); refused for the last enabled admin."""
        user = self._existing(name)
        self._check_admins_remain(name, role=None, disabled=True)
        users = {key: value for key, value in self._state.users.items() if key != name}
        self._commit(replace(self._state, users=users,
                             epoch_counter=self._state.epoch_counter + 1))
        return user

    def set_password_hash(self, name: str, password_hash: str, *, now: float) -> User:
        """Replace a user's password hash; ends the user's sessions (new epoch)."""
        _check_hash(password_hash)
        user = self._existing(name)
        return self._update(replace(user, password_hash=password_hash, password_changed=now))

    def set_role(self, name: str, role: Role) -> User:
        """Change a user's role (a new epoch if it changed); never the last enabled admin's."""
        user = self._existing(name)
        role = Role(role)
        if role is user.role:
            return user
        self._check_admins_remain(name, role=role, disabled=user.disabled)
        return self._update(replace(user, role=role))

    def set_disabled(self, name: str, disabled: bool) -> User:
        """Disable or enable a user (a new epoch if it changed); never the last enabled admin."""
        user = self._existing(name)
        if disabled == user.disabled:
            return user
        self._check_admins_remain(name, role=user.role, disabled=disabled)
        return self._update(replace(user, disabled=disabled))

    def add_token(self, info: TokenInfo, digest: str) -> None:
        """Store a new token's ``info`` and SHA-256 ``digest`` (hex); expired tokens are pruned."""
        if not _TOKEN_ID.match(info.token_id) or not _DIGEST.match(digest):
            raise ValueError("a token id is 12 hex digits and a digest 64")
        state = self._state
        if info.token_id in state.tokens:
            raise AccountError(f"token {info.token_id} already exists")
        tokens = {key: entry for key, entry in state.tokens.items()
                  if not entry[0].expired(info.created)}
        if len(tokens) >= MAX_TOKENS:
            raise AccountError(f"the user store holds its maximum of {MAX_TOKENS} tokens")
        tokens[info.token_id] = (info, digest)
        self._commit(replace(state, tokens=tokens))

    def remove_token(self, token_id: str) -> TokenInfo:
        """Revoke a token: it stops working at once in this process."""
        info = self.token(token_id)
        if info is None:
            raise AccountError(f"no token with id {token_id!r} (see 'phalanx tokens list')")
        tokens = {key: entry for key, entry in self._state.tokens.items() if key != token_id}
        self._commit(replace(self._state, tokens=tokens))
        return info

    def record_token_use(self, token_id: str, now: float) -> TokenInfo | None:
        """Set a token's ``last_used`` in memory only (no I/O: safe on the event loop)."""
        entry = self._state.tokens.get(token_id)
        if entry is None:
            return None
        info = replace(entry[0], last_used=now)
        state = self._state
        self._state = replace(state, tokens={**state.tokens, token_id: (info, entry[1])})
        return info

    def save(self) -> None:
        """Write what is only in memory (tokens' ``last_used``) to the file."""
        self._commit(self._state)

    # ---- internals

    def _existing(self, name: str) -> User:
        user = self._state.users.get(name)
        if user is None:
            raise AccountError(f"no user {name!r} in {self._path}")
        return user

    def _update(self, user: User) -> User:
        state = self._state
        epoch = state.epoch_counter + 1
        user = replace(user, session_epoch=epoch)
        self._commit(replace(state, users={**state.users, user.name: user}, epoch_counter=epoch))
        return user

    def _check_admins_remain(self, name: str, *, role: Role | None, disabled: bool) -> None:
        """Refuse a change to ``name`` that would leave no enabled admin."""
        if role is Role.ADMIN and not disabled:
            return
        others = [user for user in self._state.users.values()
                  if user.name != name and user.role is Role.ADMIN and not user.disabled]
        current = self._state.users[name]
        if not others and current.role is Role.ADMIN and not current.disabled:
            raise AccountError(f"{name!r} is the last enabled admin; add another admin first")

    def _commit(self, state: _State) -> None:
        if _stat_stamp(self._path) != self._stamp:
            raise AccountError(f"the user store {self._path} was changed by another process "
                               "since it was read; nothing was written (run it again)")
        try:
            write_atomic(self._path, _encode(state), STORE_MODE)
        except OSError as exc:
            raise AccountError(f"cannot write {self._path}: {exc.strerror or exc}") from None
        self._stamp = _stat_stamp(self._path)
        self._state = state

    def __repr__(self) -> str:
        return (f"UserStore({str(self._path)!r}, users={len(self._state.users)}, "
                f"tokens={len(self._state.tokens)})")


# ---------------------------------------------------------------- reading and writing


def _read_store_file(path: Path) -> tuple[bytes, _Stamp] | None:
    """The bytes and stamp of the store file; None if there is none. Refuses unsafe files."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AccountError(f"{path} is a symbolic link; give the real file") from None
        raise AccountError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AccountError(f"{path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise AccountError(
                f"{path} is readable or writable by group or others (mode {mode & 0o777:04o}); "
                f"the user store must be private: run 'chmod 600 {path}'"
            )
        data = read_at_most(fd, MAX_STORE_BYTES + 1)
    except OSError as exc:
        raise AccountError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_STORE_BYTES:
        raise AccountError(f"{path} is larger than {MAX_STORE_BYTES} bytes")
    return data, _stamp_of(info)


def _stat_stamp(path: Path) -> _Stamp | None:
    try:
        return _stamp_of(os.stat(path, follow_symlinks=False))
    except FileNotFoundError:
        return None


def _stamp_of(info: os.stat_result) -> _Stamp:
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _decode(path: Path, data: bytes) -> _State:
    corrupt = f"{path} is not a valid phalanx user store"
    try:
        header = msgspec.json.decode(data, type=_Header)
    except msgspec.DecodeError as exc:
        raise AccountError(f"{corrupt}: {exc}") from None
    if header.format != STORE_FORMAT:
        raise AccountError(f"{corrupt}: format is {header.format!r}, not {STORE_FORMAT!r}")
    if header.version != SCHEMA_VERSION:
        raise AccountError(f"{path} has user store version {header.version}; this phalanx "
                           f"reads version {SCHEMA_VERSION}")
    try:
        raw = msgspec.json.decode(data, type=_StoreFile)
        return _state_from_file(raw)
    except (msgspec.DecodeError, ValueError) as exc:
        raise AccountError(f"{corrupt}: {exc}") from None


def _state_from_file(raw: _StoreFile) -> _State:
    if len(raw.users) > MAX_USERS or len(raw.tokens) > MAX_TOKENS:
        raise ValueError(f"more than {MAX_USERS} users or {MAX_TOKENS} tokens")
    users: dict[str, User] = {}
    for record in raw.users:
        if not _USER_NAME.match(record.name):
            raise ValueError(f"invalid user name {record.name[:80]!r}")
        _check_hash(record.password_hash)
        if record.name in users:
            raise ValueError(f"user {record.name!r} appears twice")
        if not 0 < record.session_epoch <= raw.epoch_counter:
            raise ValueError(f"user {record.name!r} has an invalid session_epoch")
        users[record.name] = User(
            name=record.name, role=record.role, password_hash=record.password_hash,
            created=_time(record.created), password_changed=_time(record.password_changed),
            disabled=record.disabled, session_epoch=record.session_epoch,
        )
    tokens: dict[str, tuple[TokenInfo, str]] = {}
    for token in raw.tokens:
        if not _TOKEN_ID.match(token.id) or not _DIGEST.match(token.sha256):
            raise ValueError("a token id is 12 hex digits and its sha256 64 hex digits")
        if token.id in tokens:
            raise ValueError(f"token {token.id} appears twice")
        info = TokenInfo(
            token_id=token.id, role=token.role, label=_label(token.label),
            created=_time(token.created), expires=_time(token.expires),
            last_used=None if token.last_used is None else _time(token.last_used),
        )
        tokens[token.id] = (info, token.sha256)
    return _State(users=users, tokens=tokens, epoch_counter=raw.epoch_counter)


def _encode(state: _State) -> bytes:
    users = [
        _UserRecord(name=user.name, role=user.role, password_hash=user.password_hash,
                    created=user.created, password_changed=user.password_changed,
                    disabled=user.disabled, session_epoch=user.session_epoch)
        for user in sorted(state.users.values(), key=lambda user: user.name)
    ]
    tokens = [
        _TokenRecord(id=info.token_id, sha256=digest, role=info.role, label=info.label,
                     created=info.created, expires=info.expires, last_used=info.last_used)
        for info, digest in sorted(state.tokens.values(), key=lambda entry: entry[0].token_id)
    ]
    document = _StoreFile(format=STORE_FORMAT, version=SCHEMA_VERSION,
                          epoch_counter=state.epoch_counter, users=users, tokens=tokens)
    return msgspec.json.format(msgspec.json.encode(document), indent=2) + b"\n"


def _check_hash(password_hash: str) -> None:
    if not password_hash.startswith("$argon2id$") or len(password_hash) > 512:
        raise ValueError("a password hash must be an argon2id PHC string")


def _time(value: float) -> float:
    if not 0 <= value < 1e11:
        raise ValueError(f"{value!r} is not a time in epoch seconds")
    return value


def _label(label: str) -> str:
    if len(label) > MAX_LABEL_LENGTH or not label.isprintable():
        raise ValueError(f"a token label has at most {MAX_LABEL_LENGTH} printable characters")
    return label


# ---------------------------------------------------------------- users


def resolve_store_path(store: Path | None, environ: Mapping[str, str]) -> Path:
    """The store file: ``store``, else ``$PHALANX_USER_STORE``, else ``./phalanx-users.json``."""
    if store is not None:
        return store
    from_env = environ.get(STORE_ENV, "")
    return Path(from_env) if from_env else Path(DEFAULT_STORE_NAME)


def validate_user_name(name: str) -> str:
    """``name`` if it is a valid user name; :class:`AccountError` otherwise."""
    if not _USER_NAME.match(name):
        raise AccountError(
            f"invalid user name {name[:80]!r}: use 1 to 64 of a-z 0-9 _ . - "
            "(starting with a letter, a digit or _)"
        )
    return name


def add_user(store: UserStore, name: str, role: Role, password: str, *,
             passwords: Passwords, now: float) -> User:
    """Check ``password`` against the policy, hash it and add the user."""
    validate_user_name(name)
    if store.user(name) is not None:
        raise AccountError(f"user {name!r} already exists")
    check_new_password(password, user_name=name)
    return store.add_user(name, role, passwords.hash_password(password), now=now)


def reset_password(store: UserStore, name: str, password: str, *,
                   passwords: Passwords, now: float) -> User:
    """Give ``name`` a new password (policy-checked); the user's sessions end."""
    user = store.user(name)
    if user is None:
        raise AccountError(f"no user {name!r} in {store.path}")
    check_new_password(password, user_name=name)
    return store.set_password_hash(name, passwords.hash_password(password), now=now)


def authenticate_password(store: UserStore, name: str, password: str, *,
                          passwords: Passwords) -> User | None:
    """The user if ``name`` and ``password`` match an enabled user, else None.

    Costs one argon2 verification in every case (a dummy one for an unknown
    name), so the time taken does not tell which names exist. Blocking: on
    the event loop use :func:`authenticate_password_async`.
    """
    user = store.user(name.lower() if name.isascii() else name)
    if user is None:
        passwords.verify_unknown_user(password)
        return None
    if not passwords.verify_password(user.password_hash, password) or user.disabled:
        return None
    return user


def current_session_epoch(store: UserStore, name: str) -> int | None:
    """The epoch a session of ``name`` must carry to stay valid; None: user gone or disabled."""
    user = store.user(name)
    return None if user is None or user.disabled else user.session_epoch


async def authenticate_password_async(store: UserStore, name: str, password: str, *,
                                      passwords: Passwords) -> User | None:
    """:func:`authenticate_password` in a worker thread (it only reads the store)."""
    return await asyncio.to_thread(authenticate_password, store, name, password,
                                   passwords=passwords)


def ensure_admin(store: UserStore, *, passwords: Passwords, now: float,
                 environ: Mapping[str, str], password_file: Path | None = None) -> str | None:
    """Create the user ``admin`` when the store has no user; return a generated password.

    The password comes from ``password_file`` or ``$PHALANX_ADMIN_PASSWORD``
    (both set is an error; either must meet the policy), and then None is
    returned. Otherwise a random one is generated and returned: the caller
    shows it once on the terminal and never logs it. None too when the store
    already has users (the sources are not read then).
    """
    if store.users():
        return None
    from_env = environ.get(ADMIN_PASSWORD_ENV, "")
    if from_env and password_file is not None:
        raise AccountError(f"both {ADMIN_PASSWORD_ENV} and an admin password file are set; "
                           "give one")
    generated: str | None = None
    if password_file is not None:
        password = read_password_file(password_file)
    elif from_env:
        password = from_env
    else:
        password = generated = generate_password()
    try:
        add_user(store, ADMIN_NAME, Role.ADMIN, password, passwords=passwords, now=now)
    except PasswordError as exc:
        source = password_file if password_file is not None else ADMIN_PASSWORD_ENV
        raise PasswordError(f"initial admin password from {source}: {exc}") from None
    return generated


# ---------------------------------------------------------------- tokens


def parse_token_lifetime(text: str) -> float:
    """Seconds from a duration such as ``30d`` or ``12h``: more than 0, at most 366 days."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise AccountError(f"token lifetime: {exc}") from None
    if not 0 < seconds <= MAX_TOKEN_LIFETIME:
        raise AccountError(f"token lifetime must be more than 0 and at most 366d, not {text!r}")
    return seconds


def create_token(store: UserStore, role: Role, expires_in: float, label: str,
                 now: float) -> tuple[str, str]:
    """A new token: ``(token_id, token)``; the token is shown once and stored only hashed."""
    role = Role(role)
    if role not in TOKEN_ROLES:
        allowed = ", ".join(sorted(r.value for r in TOKEN_ROLES))
        raise AccountError(f"a token cannot have the role {role.value} (choose: {allowed})")
    if not 0 < expires_in <= MAX_TOKEN_LIFETIME:
        raise AccountError("token lifetime must be more than 0 and at most 366 days")
    try:
        label = _label(label)
    except ValueError as exc:
        raise AccountError(str(exc)) from None
    for _attempt in range(16):
        token_id = secrets.token_hex(6)
        if store.token(token_id) is None:
            break
    else:  # pragma: no cover - 16 collisions among 2**48 ids
        raise AccountError("could not draw an unused token id")
    token = f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
    info = TokenInfo(token_id=token_id, role=role, label=label, created=now,
                     expires=now + expires_in, last_used=None)
    store.add_token(info, _digest(token))
    return token_id, token


def verify_token(store: UserStore, presented: str, now: float) -> TokenInfo | None:
    """The token's info if ``presented`` is a known, unexpired token, else None.

    The digest comparison is constant-time and happens for an unknown id too.
    On success ``last_used`` is set in memory (no I/O: safe on the event loop).
    """
    if len(presented) > _MAX_TOKEN_LENGTH or not presented.isascii():
        return None
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not _TOKEN_ID.match(parts[1]):
        return None
    token_id = parts[1]
    stored = store.token_digest(token_id)
    matches = hmac.compare_digest(_digest(presented), stored or _NO_DIGEST)
    info = store.token(token_id)
    if not matches or stored is None or info is None or info.expired(now):
        return None
    return store.record_token_use(token_id, now)


def revoke_token(store: UserStore, token_id: str) -> TokenInfo:
    """Remove a token by id; it stops working at once for this store."""
    return store.remove_token(token_id)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()
