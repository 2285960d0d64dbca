"""How a link is secured: CURVE (the default) or the explicit plaintext development mode.

These are plain immutable values built at the edge (CLI, tests) and passed to
:class:`~phalanx.transport.master.MasterSocket` /
:class:`~phalanx.transport.worker.WorkerSocket`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from phalanx.transport.keyfiles import KeyPair


@dataclass(frozen=True, slots=True)
class CurveServer:
    """Master side: its keypair and the allow-list file of worker public keys."""

    keypair: KeyPair
    allow_list: Path


@dataclass(frozen=True, slots=True)
class CurveClient:
    """Worker side: its keypair and the master's public key it pins (Z85)."""

    keypair: KeyPair
    master_public: bytes


@dataclass(frozen=True, slots=True)
class PlaintextDev:
    """No encryption, no authentication: development only, ``ipc://`` or loopback only."""


MasterSecurity = CurveServer | PlaintextDev
WorkerSecurity = CurveClient | PlaintextDev
