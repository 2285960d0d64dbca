"""Errors of the transport layer, shown to users as one line (exit code 2)."""

from __future__ import annotations

from phalanx.core.errors import PhalanxError


class TransportError(PhalanxError):
    """The master<->worker link cannot be set up as asked (bad endpoint, unsafe mode...)."""


class KeyFileError(TransportError):
    """A key file or the allow-list is missing, malformed, or unsafely readable/writable."""
