"""The master<->worker transport: ZeroMQ with CURVE and ZAP, and the key files.

Map
---
::

    keys/ (keydir.py)        master.key 0600 · master.key.pub · workers/<name>.key 0600
        |                    authorized_workers (allowlist.py): "<Z85 key> <name>" per line
        v
    CurveServer / CurveClient / PlaintextDev (modes.py): how a link is secured
        |
    MasterSocket (master.py)                      WorkerSocket (worker.py)
      ROUTER, CURVE server, master secret key       DEALER, CURVE client
      ZAP handler (zap.py) on inproc://zeromq.zap.01   pinned to master.key.pub
        allow-list re-read on every connect  <------ handshake ------  worker key
        User-Id := the worker's Z85 public key
      recv_batch() -> [(WorkerKey, WorkerMessage)]  recv() -> MasterMessage | None
      recv() -> (WorkerKey, WorkerMessage) | None
      send(WorkerKey, MasterMessage) -> bool         send(WorkerMessage, timeout) -> bool
      send_all([WorkerKey], MasterMessage) -> int

Keys (keyfiles.py)
    CURVE keypairs from libsodium, Z85 text. Secret files are written 0600
    atomically and refused when group/world readable (``chmod 600``). A
    fingerprint (16 hex of SHA-256 of the raw public key) names a key in logs
    and in ``phalanx keys list``.
ZAP and identity
    The master binds its own ZAP handler before its socket, in a ZeroMQ
    context it owns. Only keys on the allow-list pass; refusals are logged
    with the key's fingerprint and peer address (once a minute per key).
    The identity of a worker is the authenticated key libzmq attaches to each
    message (``User-Id``): never its routing id or the name in ``Hello``. A
    key removed from the allow-list is refused at its next connect and its
    open connection's messages are dropped within ``allow_list_recheck``.
Worker's view (linkstate.py)
    ``WorkerSocket.link_state()`` says whether the handshake succeeded and, if
    not, why in the worker's own words: key refused by the master, master key
    not the pinned one, CURVE/plaintext mismatch. libzmq does not retry after
    the master refused the key: the worker driver should report and stop.
Limits (limits.py)
    ``ZMQ_MAXMSGSIZE`` on both ends (a bigger frame disconnects its sender),
    bounded send/receive queues (HWM), linger 0, handshake timeout, ZMTP
    heartbeats, a cap on tracked workers, an accept backlog sized for a crowd
    of workers connecting at once. Every await takes a timeout. An
    invalid frame is counted per sender, logged once, dropped: receive loops
    never raise for what a peer sends. Residual risk: libzmq buffers every
    part of a multipart message before delivering it, so an *authenticated*
    worker can make the master hold many parts of ``max_message_bytes`` each.
Development mode (endpoints.py)
    ``PlaintextDev`` (no CURVE, no authentication; each connection gets the
    identity ``plaintext-<n>``) is accepted only for ``ipc://`` or an IPv4
    loopback literal (``tcp://127.x.x.x:PORT``); :func:`check_plaintext_endpoint`
    refuses anything else (including ``localhost``, ``0.0.0.0`` and abstract
    ``ipc://@name``); a plaintext master binding ``ipc://`` also requires the
    socket's directory to be private (0700, as ``tempfile.mkdtemp`` makes it).

This layer moves frames and proves who sent them; what a message means
(handshake checks, heartbeats, dispatch) is the cluster drivers' job.
"""

from phalanx.transport.allowlist import AllowEntry, AllowList, read_allow_list
from phalanx.transport.endpoints import check_plaintext_endpoint, check_private_ipc_directory
from phalanx.transport.errors import KeyFileError, TransportError
from phalanx.transport.keydir import KeyDir, KeyListing, WorkerListing
from phalanx.transport.keyfiles import (
    KeyPair,
    fingerprint,
    generate_keypair,
    read_public_key,
    read_secret_key,
)
from phalanx.transport.limits import LinkLimits
from phalanx.transport.linkstate import LinkState
from phalanx.transport.master import MasterSocket, WorkerKey, describe
from phalanx.transport.modes import (
    CurveClient,
    CurveServer,
    MasterSecurity,
    PlaintextDev,
    WorkerSecurity,
)
from phalanx.transport.worker import WorkerSocket

__all__ = [
    "AllowEntry",
    "AllowList",
    "CurveClient",
    "CurveServer",
    "KeyDir",
    "KeyFileError",
    "KeyListing",
    "KeyPair",
    "LinkLimits",
    "LinkState",
    "MasterSecurity",
    "MasterSocket",
    "PlaintextDev",
    "TransportError",
    "WorkerKey",
    "WorkerListing",
    "WorkerSecurity",
    "WorkerSocket",
    "check_plaintext_endpoint",
    "check_private_ipc_directory",
    "describe",
    "fingerprint",
    "generate_keypair",
    "read_allow_list",
    "read_public_key",
    "read_secret_key",
]
