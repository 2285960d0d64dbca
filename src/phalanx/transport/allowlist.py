"""The allow-list of worker public keys (``authorized_workers``), and its live view.

File format: one worker per line, ``<Z85 public key> <name>``; the name is a
label for people (the key is the identity). A line is a comment when it
starts with ``#`` followed by a space or nothing (``#`` followed by anything
else is an invalid line, never silently a comment). Blank lines are ignored. Any other line that is
not a valid entry makes the whole file invalid (the error names the line):
a typo must not silently drop or admit a worker.

The file holds public keys only, so it may be world-readable; it must not be
writable by group or others (whoever can write it can admit a worker).

:class:`AllowList` is the master's live view: :meth:`AllowList.lookup` re-reads
the file whenever its identity (inode, size, mtime) changes, so an edit (a
revoked key) applies to the next connection attempt. While the file is
missing or invalid the view is empty: every worker is refused (fail closed),
and the error is logged once per change of the file.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from phalanx.transport.errors import KeyFileError
from phalanx.transport.keyfiles import PUBLIC_MODE, parse_z85_key, read_limited, write_atomic

MAX_ALLOW_LIST_BYTES: Final = 4 * 1024 * 1024
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
HEADER: Final = (
    "# phalanx authorized_workers: one worker per line, '<Z85 public key> <name>'.\n"
    "# The key is the worker's identity; remove a line to revoke that worker.\n"
)

log = logging.getLogger("phalanx.transport")


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """One authorized worker: its Z85 public key and a display name."""

    key: bytes
    name: str


def check_name(name: str) -> str:
    """``name`` if it is a valid worker name (letters, digits, ``_.-``, at most 64)."""
    if not NAME_PATTERN.fullmatch(name):
        raise KeyFileError(
            f"invalid worker name {name!r}: use letters, digits, '_', '.', '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


def parse_allow_list(data: bytes, *, source: str) -> tuple[AllowEntry, ...]:
    """The entries of an allow-list file; :class:`KeyFileError` names a bad line."""
    entries: list[AllowEntry] = []
    for number, line in enumerate(data.splitlines(), start=1):
        text = line.strip()
        if not text or text == b"#" or text.startswith((b"# ", b"#\t")):
            continue
        parts = text.split()
        try:
            key = parse_z85_key(parts[0])
            name = parts[1].decode("ascii") if len(parts) > 1 else ""
            if len(parts) > 2 or (name and not NAME_PATTERN.fullmatch(name)):
                raise ValueError("expected '<Z85 public key> <name>'")
        except (ValueError, UnicodeDecodeError) as exc:
            raise KeyFileError(f"{source}:{number}: invalid allow-list line ({exc})") from None
        entries.append(AllowEntry(key=key, name=name))
    return tuple(entries)


def format_allow_list(entries: Iterable[AllowEntry]) -> bytes:
    """The file text for ``entries`` (header comment included)."""
    lines = [f"{e.key.decode('ascii')} {e.name}".rstrip() for e in entries]
    return (HEADER + "".join(line + "\n" for line in lines)).encode("ascii")


def read_allow_list(path: Path) -> tuple[AllowEntry, ...]:
    """Read and parse the allow-list; refuse it if group or others may write it."""
    data, mode = read_limited(path, MAX_ALLOW_LIST_BYTES)
    if mode & 0o022:
        raise KeyFileError(
            f"{path} is writable by group or others (mode {mode:04o}); anyone who can write "
            f"it can admit a worker: run 'chmod 644 {path}'"
        )
    return parse_allow_list(data, source=str(path))


def write_allow_list(path: Path, entries: Iterable[AllowEntry]) -> None:
    """Replace the allow-list atomically (mode 0644)."""
    write_atomic(path, format_allow_list(entries), PUBLIC_MODE)


class AllowList:
    """The master's live view of an allow-list file (see the module docstring).

    ``recheck_interval`` bounds how often :meth:`lookup` with ``fresh=False``
    looks at the file (per-message checks); ``fresh=True`` always does
    (connection attempts).
    """

    def __init__(self, path: Path, *, recheck_interval: float = 1.0) -> None:
        self.path = path
        self._recheck_interval = recheck_interval
        self._signature: tuple[int, int, int] | None = None
        self._entries: dict[bytes, AllowEntry] = {}
        self._checked_at: float | None = None
        self._logged_error: tuple[int, int, int] | None = None

    def lookup(self, key: bytes, *, now: float, fresh: bool) -> AllowEntry | None:
        """The entry for Z85 ``key``, or None if the key is not (or no longer) allowed."""
        if fresh or self._checked_at is None or now - self._checked_at >= self._recheck_interval:
            self.reload(now=now)
        return self._entries.get(key)

    def reload(self, *, now: float) -> None:
        """Re-read the file if it changed since the last look (fail closed on errors)."""
        self._checked_at = now
        try:
            info = os.stat(self.path)
        except OSError:
            signature = (-1, -1, -1)
        else:
            signature = (info.st_ino, info.st_size, info.st_mtime_ns)
        if signature == self._signature:
            return
        self._signature = signature
        try:
            entries = read_allow_list(self.path)
        except KeyFileError as exc:
            self._entries = {}
            if self._logged_error != signature:
                self._logged_error = signature
                log.error("allow-list unusable, refusing every worker until it is fixed: %s", exc)
            return
        self._entries = {entry.key: entry for entry in entries}

    def __len__(self) -> int:
        return len(self._entries)
