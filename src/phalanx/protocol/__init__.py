"""The master<->worker wire protocol (pure: no I/O).

- :mod:`.messages`: the typed, bounded, versioned messages and their direction.
- :mod:`.codec`: ``encode`` / ``decode`` between messages and frames, raising
  :class:`ProtocolError` (a ``ValueError``) on any bad input.

The transport (:mod:`phalanx.transport`) moves frames and supplies the
authenticated peer identity; the cluster drivers act on decoded messages.
"""

from phalanx.protocol.codec import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ProtocolError,
    ProtocolVersionError,
    decode,
    decode_from_master,
    decode_from_worker,
    encode,
)
from phalanx.protocol.messages import (
    PROTOCOL_VERSION,
    Bye,
    Heartbeat,
    Hello,
    MasterHeartbeat,
    MasterMessage,
    Message,
    Refuse,
    Rejoin,
    Start,
    Stats,
    Stop,
    Welcome,
    WorkerMessage,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "Bye",
    "Heartbeat",
    "Hello",
    "MasterHeartbeat",
    "MasterMessage",
    "Message",
    "ProtocolError",
    "ProtocolVersionError",
    "Refuse",
    "Rejoin",
    "Start",
    "Stats",
    "Stop",
    "Welcome",
    "WorkerMessage",
    "decode",
    "decode_from_master",
    "decode_from_worker",
    "encode",
]
