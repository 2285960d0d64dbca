"""Secrets for scripts: ``from phalanx import secrets`` then ``secrets.get("api-token")``.

A script asks for a secret by name; the run's
:class:`~phalanx.security.secrets.SecretStore` reads it from the environment
(``PHALANX_SECRET_API_TOKEN``) or from the secrets directory
(``--secrets-dir``, e.g. a Kubernetes secret mount). A missing secret is an
error when it is asked for (at import or in ``on_start``: before load, with
exit code 2 when asked at import), never ``None`` later. Every value handed
out is registered with the run's redactor and masked (``***``) in logs,
stats names, error messages, exceptions and every output.

The store of the current run lives in a context variable set by the CLI (or
a worker) around loading the script and running it; tasks inherit it. Outside
a run, :func:`get` raises a clear error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from phalanx.security.secrets import SecretError, SecretStore

__all__ = ["SecretError", "get"]

_current_store: ContextVar[SecretStore | None] = ContextVar("phalanx_secret_store", default=None)


def get(name: str) -> str:
    """The secret ``name``; :class:`SecretError` if it is missing or unsafely stored."""
    store = _current_store.get()
    if store is None:
        raise SecretError(
            f"phalanx.secrets.get({name!r}) was called outside a phalanx run; "
            "secrets are available to scripts run by `phalanx run` (or a worker)"
        )
    return store.get(name)


@contextlib.contextmanager
def using(store: SecretStore) -> Iterator[None]:
    """Make ``store`` the one :func:`get` reads, for the duration of the block."""
    token = _current_store.set(store)
    try:
        yield
    finally:
        _current_store.reset(token)
