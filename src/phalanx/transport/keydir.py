"""The keys directory: where the master's and workers' key files live.

Layout (``phalanx keys init --dir keys/`` creates it)::

    keys/                      0700
      master.key               0600  master secret (+ public) key: master host only
      master.key.pub           0644  master public key: every worker pins it
      authorized_workers       0644  allow-list of worker public keys (see allowlist.py)
      workers/                 0700
        <name>.key             0600  a worker's secret key: that worker only
        <name>.key.pub         0644

A worker host needs ``master.key.pub`` and its own ``workers/<name>.key``; the
master needs ``master.key`` and ``authorized_workers``. The operations here
are what the ``phalanx keys`` subcommands do; they never overwrite a secret
key unless asked to (``force``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from phalanx.transport.allowlist import (
    AllowEntry,
    check_name,
    read_allow_list,
    write_allow_list,
)
from phalanx.transport.errors import KeyFileError
from phalanx.transport.keyfiles import (
    KeyPair,
    fingerprint,
    generate_keypair,
    read_public_key,
    read_secret_key,
    write_public_key,
    write_secret_key,
)
from phalanx.transport.modes import CurveClient, CurveServer

FIRST_WORKER = "w1"


@dataclass(frozen=True, slots=True)
class WorkerListing:
    """One worker known to the keys directory."""

    name: str
    fingerprint: str
    authorized: bool
    has_key_file: bool


@dataclass(frozen=True, slots=True)
class KeyListing:
    """What ``phalanx keys list`` shows."""

    master_fingerprint: str
    workers: tuple[WorkerListing, ...]
    problems: tuple[str, ...] = ()
    """Secret key files here that group or others may read (each with its fix)."""


class KeyDir:
    """Paths and operations of one keys directory (no I/O until a method is called)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def master_key(self) -> Path:
        return self.root / "master.key"

    @property
    def master_public(self) -> Path:
        return self.root / "master.key.pub"

    @property
    def allow_list(self) -> Path:
        return self.root / "authorized_workers"

    @property
    def workers(self) -> Path:
        return self.root / "workers"

    def worker_key(self, name: str) -> Path:
        return self.workers / f"{check_name(name)}.key"

    def worker_public(self, name: str) -> Path:
        return self.workers / f"{check_name(name)}.key.pub"

    def init(self, *, force: bool = False) -> tuple[str, str]:
        """Create the master keypair, worker ``w1`` and an allow-list holding only ``w1``.

        Returns the (master, w1) fingerprints. Refuses if keys already exist
        here unless ``force`` (then the allow-list is reset to ``w1`` alone).
        """
        existing = [p for p in (self.master_key, self.allow_list, self.worker_key(FIRST_WORKER))
                    if p.exists()]
        if existing and not force:
            raise KeyFileError(
                f"{existing[0]} already exists; refusing to overwrite keys "
                "(use --force to replace them)"
            )
        self._make_dirs()
        master = generate_keypair()
        write_secret_key(self.master_key, master, label="master")
        write_public_key(self.master_public, master.public, label="master")
        worker = self._write_worker(FIRST_WORKER)
        write_allow_list(self.allow_list, [AllowEntry(worker.public, FIRST_WORKER)])
        return fingerprint(master.public), fingerprint(worker.public)

    def add_worker(self, name: str, *, force: bool = False) -> str:
        """Create worker ``name``'s keypair and authorize it; returns its fingerprint."""
        check_name(name)
        entries = read_allow_list(self.allow_list)
        if not force and (self.worker_key(name).exists() or any(e.name == name for e in entries)):
            raise KeyFileError(
                f"worker {name!r} already exists in {self.root} (use --force to replace its key)"
            )
        self._make_dirs()
        worker = self._write_worker(name)
        kept = [e for e in entries if e.name != name]
        write_allow_list(self.allow_list, [*kept, AllowEntry(worker.public, name)])
        return fingerprint(worker.public)

    def revoke(self, name: str) -> str:
        """Remove worker ``name`` from the allow-list; returns the revoked key's fingerprint.

        Its key files stay (so ``list`` shows it as revoked); the master
        refuses the key at its next connection attempt.
        """
        check_name(name)
        entries = read_allow_list(self.allow_list)
        revoked = [e for e in entries if e.name == name]
        if not revoked:
            raise KeyFileError(f"worker {name!r} is not on the allow-list {self.allow_list}")
        write_allow_list(self.allow_list, [e for e in entries if e.name != name])
        return fingerprint(revoked[0].key)

    def listing(self) -> KeyListing:
        """The master fingerprint and every worker: authorized and/or with a key file."""
        master = read_public_key(self.master_public)
        entries = read_allow_list(self.allow_list)
        files: dict[str, bytes] = {}
        if self.workers.is_dir():
            for path in sorted(self.workers.glob("*.key.pub")):
                files[path.name.removesuffix(".key.pub")] = read_public_key(path)
        workers: list[WorkerListing] = []
        for entry in entries:
            on_file = files.get(entry.name) == entry.key
            workers.append(WorkerListing(entry.name, fingerprint(entry.key), True, on_file))
        allowed = {e.key for e in entries}
        for name, key in files.items():
            if key not in allowed:
                workers.append(WorkerListing(name, fingerprint(key), False, True))
        secrets = [self.master_key]
        if self.workers.is_dir():
            secrets.extend(sorted(self.workers.glob("*.key")))
        problems = tuple(
            f"{path} is readable by group or others: run 'chmod 600 {path}'"
            for path in secrets if path.exists() and path.stat().st_mode & 0o077
        )
        return KeyListing(fingerprint(master), tuple(workers), problems)

    def curve_server(self) -> CurveServer:
        """The master's credentials: its secret key and the allow-list path (checked now)."""
        keypair = read_secret_key(self.master_key)
        read_allow_list(self.allow_list)
        return CurveServer(keypair=keypair, allow_list=self.allow_list)

    def curve_client(self, name: str) -> CurveClient:
        """Worker ``name``'s credentials: its secret key, pinned to the master's public key."""
        keypair = read_secret_key(self.worker_key(name))
        return CurveClient(keypair=keypair, master_public=read_public_key(self.master_public))

    def _make_dirs(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.workers.mkdir(mode=0o700, exist_ok=True)

    def _write_worker(self, name: str) -> KeyPair:
        pair = generate_keypair()
        write_secret_key(self.worker_key(name), pair, label=f"worker {name}")
        write_public_key(self.worker_public(name), pair.public, label=f"worker {name}")
        return pair
