"""The audit log file: an append-only JSON-lines file holding a hash chain.

:class:`AuditLog` is the writer (one per file and process), :func:`read_log`
the reader used by ``phalanx audit verify``. The format, what verification
detects and what it cannot are in :mod:`phalanx.security.audit_chain`.

Opening (:class:`AuditLog`)
---------------------------
- The file is opened ``O_RDWR | O_APPEND | O_NOFOLLOW`` and created with mode
  0600 (set explicitly, whatever the umask). A symbolic link, a non-regular
  file, or a file that the group or others may read or write (``mode &
  0o077``: who did what is private, like a key file) is refused.
- An exclusive ``flock`` is held while the log is open: a second writer (a
  second master on the same file) is refused instead of forking the chain.
- The whole existing file is read and verified. A damaged file (an edited,
  removed or reordered entry, a malformed line, a last line cut by a crash)
  is refused with the line and the reason: the log is never continued past
  a break. Keep the file as evidence and point the server at a new one.

Appending (:meth:`AuditLog.append`)
-----------------------------------
Each entry is one line written by a single ``os.write`` (``O_APPEND``: at the
end, never interleaved with another write to the file) and then ``fsync``:
when ``append`` returns, the entry is on stable storage as far as the
filesystem honours ``fsync``. If the write or the ``fsync`` fails the file is
cut back to its previous length and ``append`` raises :class:`AuditError`;
if even that fails, the log refuses every later append (reopening shows the
damage). Strings pass through the ``redact`` callable first
(:meth:`phalanx.security.Redactor.redact_text` in the product).

``append`` blocks for a write and an ``fsync`` (milliseconds on a local
disk): from the event loop call it as ``await asyncio.to_thread(log.append,
...)``. It is thread-safe (one lock), so entries are whole and in order.

Reading a log that a server is appending to at that moment may, rarely,
catch the line being written and report a truncated last line: run it again.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import os
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Final

from phalanx.core.clock import Clock, SystemClock
from phalanx.core.errors import PhalanxError
from phalanx.security.audit_chain import (
    MAX_LINE_BYTES,
    ZERO_HASH,
    AuditAction,
    AuditEntry,
    AuditHead,
    DetailValue,
    VerifyResult,
    entry_line,
    format_time,
    make_entry,
    verify_lines,
)
from phalanx.security.files import fsync_dir

__all__ = ["LOG_MODE", "AuditError", "AuditLog", "read_log"]

LOG_MODE: Final = 0o600
_CHUNK: Final = 64 * 1024
_FLAGS: Final = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW


class AuditError(PhalanxError):
    """The audit log cannot be opened, read or appended to; the message names
    the file and the reason (never an entry's content)."""

    exit_code = 2


class AuditLog:
    """The writer of one audit log file; see the module docstring.

    ``redact`` masks secrets in every string before it is written. ``clock``
    gives the wall time of each entry. ``keep_recent`` entries (the last ones,
    read at open and appended since) stay in memory for :attr:`recent`.
    Use as a context manager or call :meth:`close`.
    """

    __slots__ = ("_broken", "_clock", "_fd", "_last", "_lock", "_path", "_recent", "_redact")

    def __init__(
        self,
        path: Path | str,
        *,
        redact: Callable[[str], str] | None = None,
        clock: Clock | None = None,
        keep_recent: int = 100,
    ) -> None:
        if keep_recent < 0:
            raise ValueError("keep_recent must be >= 0")
        self._path = Path(path)
        self._redact = redact
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        self._broken = ""
        self._fd = _open_private(self._path)
        try:
            result = verify_lines(_lines(self._fd), keep_last=keep_recent)
        except OSError as exc:
            os.close(self._fd)
            raise AuditError(f"cannot read audit log {self._path}: {_why(exc)}") from None
        except BaseException:
            os.close(self._fd)
            raise
        if not result.ok:
            os.close(self._fd)
            where = f"line {result.first_bad_line}: " if result.first_bad_line else ""
            raise AuditError(
                f"audit log {self._path} is damaged ({where}{result.reason}: {result.detail}); "
                "refusing to append to it. Keep it as evidence, check it with 'phalanx audit "
                "verify', and start a new log file"
            )
        self._last: AuditEntry | None = result.last
        self._recent: collections.deque[AuditEntry] = collections.deque(
            result.tail, maxlen=keep_recent)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def head(self) -> AuditHead:
        """Entry count and last hash; record them elsewhere to detect truncation later."""
        last = self._last
        if last is None:
            return AuditHead(count=0, hash=ZERO_HASH)
        return AuditHead(count=last.seq, hash=last.hash)

    @property
    def recent(self) -> tuple[AuditEntry, ...]:
        """The last ``keep_recent`` entries, oldest first."""
        return tuple(self._recent)

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def append(
        self,
        actor: str,
        source: str,
        action: AuditAction | str,
        details: Mapping[str, DetailValue] | None = None,
    ) -> AuditEntry:
        """Write one entry (redacted, bounded) durably and return it.

        A bad argument (unknown action, a detail of the wrong type...) raises
        ``ValueError``/``TypeError`` and writes nothing; a failed write raises
        :class:`AuditError`.
        """
        with self._lock:
            if self._fd < 0:
                raise AuditError(f"audit log {self._path} is closed")
            if self._broken:
                raise AuditError(f"audit log {self._path} refuses appends: {self._broken}")
            entry = make_entry(self._last, format_time(self._clock.wall()), actor, source,
                               action, details, redact=self._redact)
            line = entry_line(entry)
            if len(line) > MAX_LINE_BYTES:  # pragma: no cover - the field bounds prevent it
                raise AuditError(f"audit entry of {len(line)} bytes is over {MAX_LINE_BYTES}")
            self._write(line)
            self._last = entry
            self._recent.append(entry)
            return entry

    def verify(self, *, expect_head: str | None = None) -> VerifyResult:
        """Re-read and verify the whole file now (through the open file)."""
        with self._lock:
            if self._fd < 0:
                raise AuditError(f"audit log {self._path} is closed")
            try:
                return verify_lines(_lines(self._fd), expect_head=expect_head)
            except OSError as exc:
                raise AuditError(f"cannot read audit log {self._path}: {_why(exc)}") from None

    def close(self) -> None:
        """Release the lock and close the file (idempotent)."""
        with self._lock:
            if self._fd >= 0:
                fd, self._fd = self._fd, -1
                os.close(fd)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _write(self, line: bytes) -> None:
        fd = self._fd
        try:
            size = os.fstat(fd).st_size
        except OSError as exc:
            raise AuditError(f"cannot append to audit log {self._path}: {_why(exc)}") from None
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(errno.EIO, f"short write ({written} of {len(line)} bytes)")
            os.fsync(fd)
        except OSError as exc:
            why = _why(exc)
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            except OSError as undo:
                self._broken = (f"a failed append ({why}) could not be undone "
                                f"({_why(undo)}); the file may end with a partial line")
                raise AuditError(f"cannot append to audit log {self._path}: "
                                 f"{self._broken}") from None
            raise AuditError(f"cannot append to audit log {self._path}: {why}; "
                             "the entry was not written") from None


def read_log(
    path: Path | str,
    *,
    expect_head: str | None = None,
    min_entries: int | None = None,
    keep_last: int = 0,
) -> VerifyResult:
    """Verify the log at ``path`` (see :func:`~phalanx.security.audit_chain.verify_lines`).

    Reads only (any mode is accepted: an auditor's copy may be 0644); an
    unreadable path, a symbolic link or a non-regular file is an
    :class:`AuditError`.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise AuditError(f"cannot open audit log {path}: {_why(exc)}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise AuditError(f"audit log {path} is not a regular file")
        return verify_lines(_lines(fd), expect_head=expect_head, min_entries=min_entries,
                            keep_last=keep_last)
    except OSError as exc:
        raise AuditError(f"cannot read audit log {path}: {_why(exc)}") from None
    finally:
        os.close(fd)


def _open_private(path: Path) -> int:
    """``path`` opened for appending: created 0600, or an existing private regular file."""
    try:
        try:
            fd = os.open(path, _FLAGS | os.O_CREAT | os.O_EXCL, LOG_MODE)
            created = True
        except FileExistsError:
            fd = os.open(path, _FLAGS | os.O_NONBLOCK)
            created = False
    except OSError as exc:
        raise AuditError(f"cannot open audit log {path}: {_why(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AuditError(f"audit log {path} is not a regular file")
        if created:
            os.fchmod(fd, LOG_MODE)
            fsync_dir(path.parent)
        else:
            mode = stat.S_IMODE(info.st_mode)
            if mode & 0o077:
                raise AuditError(
                    f"audit log {path} is accessible by group or others (mode {mode:04o}); "
                    f"it records who did what and must be private: run 'chmod 600 {path}'"
                )
            os.set_blocking(fd, True)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AuditError(f"audit log {path} is in use by another process "
                             "(each log has one writer)") from None
    except OSError as exc:
        os.close(fd)
        raise AuditError(f"cannot open audit log {path}: {_why(exc)}") from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _lines(fd: int) -> Iterator[bytes]:
    """The lines of the file open at ``fd``, from offset 0, each with its
    newline (the last may lack it). A line over :data:`MAX_LINE_BYTES` is
    yielded cut to one byte over the limit and ends the iteration."""
    offset = 0
    pending = b""
    while True:
        chunk = os.pread(fd, _CHUNK, offset)
        if not chunk:
            break
        offset += len(chunk)
        data = pending + chunk if pending else chunk
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            yield data[start:end + 1]
            start = end + 1
        pending = data[start:]
        if len(pending) > MAX_LINE_BYTES:
            yield pending[:MAX_LINE_BYTES + 1]
            return
    if pending:
        yield pending


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link (refused)"
    return exc.strerror or str(exc)
