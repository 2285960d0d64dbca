"""The master<->worker messages: typed, versioned, bounded.

Every message is a frozen msgspec Struct in a tagged union; on the wire it is
a msgpack array whose first element is the tag (see :mod:`.codec` for the
frame layout). Every field carries a bound (msgspec ``Meta``): a string has a
maximum length and, where it is shown to people, a character set without
control characters; every number has a range; every collection has a maximum
size. A frame that breaks a bound is rejected by the decoder, so nothing past
:func:`phalanx.protocol.codec.decode` has to re-check sizes.

Direction
---------
- worker -> master: :class:`Hello`, :class:`Heartbeat`, :class:`Stats`, :class:`Bye`
  (the :data:`WorkerMessage` union).
- master -> worker: :class:`Welcome`, :class:`Refuse`, :class:`Start`, :class:`Stop`,
  :class:`Rejoin`, :class:`MasterHeartbeat` (the :data:`MasterMessage` union).

What is deliberately absent
---------------------------
- No message carries the worker's identity: the master takes it from the
  authenticated CURVE key (the transport's ``User-Id``). ``Hello.worker_name``
  is a label for display only.
- :class:`Start` carries only what a worker needs to run its share (run id,
  host, user counts per class, spawn rate, stop timeout): never the master's
  options, keys or secrets. Scripts are loaded locally by each worker;
  ``Hello.script_sha256`` lets the master check they match.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal, TypeAlias

import msgspec
from msgspec import Meta

PROTOCOL_VERSION: Final = 2
"""Wire version; the first byte of every frame and the version in :class:`Hello`.

2: histogram buckets travel as packed arrays (:class:`~phalanx.stats.HistogramWire`).
"""

MAX_STATS_DELTA_BYTES: Final = 16 * 1024 * 1024
"""Largest encoded stats delta a :class:`Stats` message may carry (the stats layer's default)."""

MAX_CLASSES: Final = 1_000
"""Most user classes one :class:`Start` may name."""

MAX_USERS: Final = 10_000_000
"""Most users one count may hold (per class, per worker)."""

MAX_SEQ: Final = 2**63 - 1

_LABEL = r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]*\Z"

Seq = Annotated[int, Meta(ge=0, le=MAX_SEQ)]
UserCount = Annotated[int, Meta(ge=0, le=MAX_USERS)]
WorkerName = Annotated[str, Meta(min_length=1, max_length=64, pattern=_LABEL)]
"""A display label: letters, digits and ``_.:@+-``, at most 64 characters; never an identity."""
Sha256Hex = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}\Z")]
VersionText = Annotated[str, Meta(min_length=1, max_length=64, pattern=_LABEL)]
RunId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+\Z")]
Reason = Annotated[str, Meta(max_length=500, pattern=r"^[^\x00-\x1f\x7f-\x9f]*\Z")]
"""Free text shown in logs: at most 500 characters, no control characters."""
ClassName = Annotated[
    str, Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*\Z")
]
Host = Annotated[str, Meta(max_length=2048, pattern=r"^[\x21-\x7e]*\Z")]
WorkerState = Literal["ready", "spawning", "running", "stopping", "stopped"]


class Hello(msgspec.Struct, tag="hello", frozen=True, array_like=True, forbid_unknown_fields=True):
    """A worker introduces itself; the master answers :class:`Welcome` or :class:`Refuse`."""

    protocol_version: Annotated[int, Meta(ge=0, le=65_535)]
    worker_name: WorkerName
    script_sha256: Sha256Hex
    phalanx_version: VersionText
    cpu_count: Annotated[int, Meta(ge=1, le=65_536)]


class Heartbeat(msgspec.Struct, tag="hb", frozen=True, array_like=True,
                forbid_unknown_fields=True):
    """A worker is alive: its running users, state and resource use."""

    seq: Seq
    users: UserCount
    state: WorkerState
    cpu_percent: Annotated[float, Meta(ge=0.0, le=100_000.0)]
    rss_bytes: Annotated[int, Meta(ge=0, le=2**56)]


class Stats(msgspec.Struct, tag="stats", frozen=True, array_like=True,
            forbid_unknown_fields=True):
    """A stats delta, encoded by ``phalanx.stats.encode_delta``.

    The master decodes ``delta`` with ``phalanx.stats.decode_delta``, which
    validates it; this layer only bounds its size.
    """

    seq: Seq
    delta: Annotated[bytes, Meta(max_length=MAX_STATS_DELTA_BYTES)]


class Bye(msgspec.Struct, tag="bye", frozen=True, array_like=True, forbid_unknown_fields=True):
    """A worker leaves on purpose (the master does not wait for it to go missing)."""

    reason: Reason


class Welcome(msgspec.Struct, tag="welcome", frozen=True, array_like=True,
              forbid_unknown_fields=True):
    """The master accepted the worker's :class:`Hello`."""

    run_id: RunId


class Refuse(msgspec.Struct, tag="refuse", frozen=True, array_like=True,
             forbid_unknown_fields=True):
    """The master refused the worker (version or script hash differs, limit reached...)."""

    reason: Reason


class Start(msgspec.Struct, tag="start", frozen=True, array_like=True,
            forbid_unknown_fields=True):
    """Run (or re-target to) this share of the load: all a worker needs, nothing more."""

    run_id: RunId
    host: Host
    users_per_class: Annotated[dict[ClassName, UserCount], Meta(max_length=MAX_CLASSES)]
    spawn_rate: Annotated[float, Meta(gt=0.0, le=1_000_000.0)]
    stop_timeout: Annotated[float, Meta(ge=0.0, le=86_400.0)]


class Stop(msgspec.Struct, tag="stop", frozen=True, array_like=True, forbid_unknown_fields=True):
    """Stop all users; ``graceful`` lets running tasks finish (within the stop timeout)."""

    graceful: bool


class Rejoin(msgspec.Struct, tag="rejoin", frozen=True, array_like=True,
             forbid_unknown_fields=True):
    """Stop all load and say :class:`Hello` again: the master no longer counts this worker.

    Sent to a worker the master had marked missing (its users went to the
    others) when it is heard from again, or after it broke a limit.
    """

    reason: Reason


class MasterHeartbeat(msgspec.Struct, tag="mhb", frozen=True, array_like=True,
                      forbid_unknown_fields=True):
    """The master is alive; a worker that stops hearing these stops its load."""

    seq: Seq


WorkerMessage: TypeAlias = Hello | Heartbeat | Stats | Bye
MasterMessage: TypeAlias = Welcome | Refuse | Start | Stop | Rejoin | MasterHeartbeat
Message: TypeAlias = WorkerMessage | MasterMessage
