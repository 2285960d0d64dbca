"""Small file primitives the modules that keep private files share.

The key files, the user store, the audit log and file-mounted secrets each
open their files in their own way (who may follow a link, what a missing
file means, which error names the fix), but read and persist them the same
way: a bounded read that never loads more than the caller's limit plus one
byte, and an fsync of the directory after a file in it was created or
replaced, so the new name survives a crash.
"""

from __future__ import annotations

import os
from pathlib import Path


def read_at_most(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes from ``fd`` (fewer only at the end of the file).

    Callers pass their maximum plus one, so a longer file shows as too long
    without being read whole.
    """
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def fsync_dir(directory: Path) -> None:
    """Flush ``directory``'s entries to disk; best effort (some filesystems refuse)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # pragma: no cover - a directory we just wrote into is readable
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)
