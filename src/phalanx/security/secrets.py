"""Secrets for test scripts: from the environment or from mounted files.

``SecretStore.get("api-token")`` looks, in this order (the first hit wins):

1. the environment variable ``PHALANX_SECRET_API_TOKEN`` (the name
   upper-cased, every character other than A-Z and 0-9 turned into ``_``);
2. a file in the secrets directory (a Kubernetes secret mount, a Docker
   secret): ``<dir>/api-token`` (the exact name), then ``<dir>/API_TOKEN``
   and ``<dir>/api_token``.

A file is refused (:class:`SecretError`, not skipped) when it is readable or
writable by group or others (``mode & 0o077``; mount Kubernetes secrets with
``defaultMode: 0400``), is not a regular file, is larger than 64 KiB, or is a
symbolic link that resolves outside the secrets directory (the links a
Kubernetes mount makes, ``name -> ..data/name``, stay inside and are fine).
One trailing newline (``\\n`` or ``\\r\\n``) is removed from a file's content.
An empty value is an error, like a missing one: a missing secret fails at
start, never as ``None`` at request time.

Every value returned is registered with the :class:`Redactor`, so it is
masked in every output from then on. Values are never logged, and error
messages name where the store looked, never what it found.

Unlike the rest of :mod:`phalanx.security` this module reads files: it runs
when a script starts, never on the event loop's hot path.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

from phalanx.core.errors import PhalanxError
from phalanx.security.files import read_at_most
from phalanx.security.redaction import MIN_SECRET_LENGTH, Redactor

__all__ = ["ENV_PREFIX", "SecretError", "SecretStore"]

ENV_PREFIX = "PHALANX_SECRET_"
_MAX_FILE_BYTES = 64 * 1024
_VALID_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}\Z")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


class SecretError(PhalanxError):
    """A secret is missing, unreadable or unsafely stored. The message says
    where the store looked; it never contains the value."""

    exit_code = 2


class SecretStore:
    """Reads named secrets; see the module docstring for the lookup order."""

    __slots__ = ("_dir", "_environ", "_redactor")

    def __init__(
        self, environ: Mapping[str, str], secrets_dir: Path | None, redactor: Redactor
    ) -> None:
        self._environ = environ
        self._dir = secrets_dir
        self._redactor = redactor

    @staticmethod
    def env_name(name: str) -> str:
        """The environment variable holding ``name``: ``PHALANX_SECRET_<NAME>``."""
        return ENV_PREFIX + _NOT_ALNUM.sub("_", name.upper())

    def get(self, name: str) -> str:
        """The value of secret ``name``; raise :class:`SecretError` when it is
        missing, empty or stored unsafely. The value is registered for masking."""
        if _VALID_NAME.match(name) is None:
            raise SecretError(
                f"invalid secret name {name!r}: use letters, digits, '_', '-' and '.'"
                " (not starting with '.' or '-')"
            )
        variable = self.env_name(name)
        value = self._environ.get(variable)
        if value is not None:
            if not value:
                raise SecretError(f"secret {name!r}: environment variable {variable} is empty")
        else:
            value = self._from_files(name, variable)
        if not self._redactor.add_secret(value):
            # Handing out a value that cannot be masked would let it reach every output.
            raise SecretError(
                f"secret {name!r} ({variable} or its file) is shorter than "
                f"{MIN_SECRET_LENGTH} characters (or only whitespace): too short to be masked "
                "safely in outputs, so it is refused"
            )
        return value

    def _from_files(self, name: str, variable: str) -> str:
        directory = self._dir
        if directory is None:
            raise SecretError(
                f"secret {name!r} not found: environment variable {variable} is not set"
                " and no secrets directory is configured"
            )
        candidates = [name, variable.removeprefix(ENV_PREFIX)]
        candidates.append(candidates[1].lower())
        paths = [directory / c for c in dict.fromkeys(candidates)]
        for path in paths:
            if path.is_symlink() or path.exists():
                return _read_file(name, path, directory)
        looked = ", ".join(str(p) for p in paths)
        raise SecretError(
            f"secret {name!r} not found: environment variable {variable} is not set"
            f" and none of these files exists: {looked}"
        )


def _read_file(name: str, path: Path, directory: Path) -> str:
    try:
        real_dir = directory.resolve(strict=True)
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise SecretError(f"secret {name!r}: cannot resolve {path}: {_why(exc)}") from None
    if not real.is_relative_to(real_dir):
        raise SecretError(
            f"secret {name!r}: {path} is a link to a file outside {directory}; refused"
        )
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise SecretError(f"secret {name!r}: cannot open {path}: {_why(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretError(f"secret {name!r}: {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise SecretError(
                f"secret {name!r}: {path} is accessible by group or others"
                f" (mode {mode:04o}); run chmod 600 on it (Kubernetes: defaultMode 0400)"
            )
        data = read_at_most(fd, _MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > _MAX_FILE_BYTES:
        raise SecretError(f"secret {name!r}: {path} is larger than {_MAX_FILE_BYTES} bytes")
    try:
        value = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"secret {name!r}: {path} is not UTF-8 text") from None
    value = value.removesuffix("\n").removesuffix("\r") if value.endswith("\n") else value
    if not value:
        raise SecretError(f"secret {name!r}: {path} is empty")
    return value


def _why(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
