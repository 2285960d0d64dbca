"""Frames <-> messages, with every check at the boundary.

Frame layout: one byte :data:`~phalanx.protocol.messages.PROTOCOL_VERSION`,
then the msgpack encoding of one message (a tagged array, see
:mod:`.messages`). The version byte comes first so that a peer speaking
another version is recognised as such (:class:`ProtocolVersionError`) before
any attempt to read its body.

:func:`decode` (and the one-direction variants) raise :class:`ProtocolError`
and nothing else for any input: oversized, empty, wrong version, not msgpack,
unknown tag, a field of the wrong type, out of bounds, missing or extra, or
trailing bytes. Decoding is strict (no type coercion). Error messages are
safe to log: at most a few hundred printable characters, whatever the peer
sent. This module is pure: no I/O, no state.
"""

from __future__ import annotations

from typing import Any, Final, cast

import msgspec

from phalanx.protocol.messages import (
    PROTOCOL_VERSION,
    MasterMessage,
    Message,
    WorkerMessage,
)

DEFAULT_MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024 + 64 * 1024
"""Largest frame accepted by default: a maximal stats delta plus room for the envelope."""

_VERSION_BYTE: Final = bytes([PROTOCOL_VERSION])
_ENCODER: Final = msgspec.msgpack.Encoder()
_ANY: Final = msgspec.msgpack.Decoder(Message)
_FROM_WORKER: Final = msgspec.msgpack.Decoder(WorkerMessage)
_FROM_MASTER: Final = msgspec.msgpack.Decoder(MasterMessage)

class ProtocolError(ValueError):
    """A frame that is not a valid message of this protocol version."""


class ProtocolVersionError(ProtocolError):
    """A frame from a peer that speaks another protocol version (``version``)."""

    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(
            f"peer speaks protocol version {version}, this side speaks {PROTOCOL_VERSION}"
        )


def encode(message: Message) -> bytes:
    """``message`` as one frame: the version byte, then msgpack."""
    return _VERSION_BYTE + _ENCODER.encode(message)


def decode(data: bytes | bytearray | memoryview, *, max_bytes: int) -> Message:
    """Decode a frame holding any message; raise :class:`ProtocolError` if it is not valid."""
    return cast(Message, _decode(_ANY, data, max_bytes))


def decode_from_worker(data: bytes | bytearray | memoryview, *, max_bytes: int) -> WorkerMessage:
    """Decode a frame a worker sent: a master-to-worker message is a :class:`ProtocolError`."""
    return cast(WorkerMessage, _decode(_FROM_WORKER, data, max_bytes))


def decode_from_master(data: bytes | bytearray | memoryview, *, max_bytes: int) -> MasterMessage:
    """Decode a frame the master sent: a worker-to-master message is a :class:`ProtocolError`."""
    return cast(MasterMessage, _decode(_FROM_MASTER, data, max_bytes))


def _decode(decoder: msgspec.msgpack.Decoder[Any], data: bytes | bytearray | memoryview,
            max_bytes: int) -> Any:
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    size = view.nbytes
    if size > max_bytes:
        raise ProtocolError(f"frame of {size} bytes is over the limit of {max_bytes} bytes")
    if size == 0:
        raise ProtocolError("empty frame")
    if view[0] != PROTOCOL_VERSION:
        raise ProtocolVersionError(view[0])
    try:
        return decoder.decode(view[1:])
    except (msgspec.MsgspecError, ValueError) as exc:  # ValueError: e.g. invalid UTF-8
        raise ProtocolError(f"malformed message: {_printable(str(exc))}") from None
    except RecursionError:  # pragma: no cover - the schema bounds nesting; defence in depth
        raise ProtocolError("malformed message: nested too deeply") from None


def _printable(text: str) -> str:
    """``text`` safe for one log line: control characters escaped, at most 300 characters.

    Decoder errors may quote the peer's bytes (an unknown tag, for one); a
    peer must not be able to forge log lines or send terminal escapes.
    """
    cleaned = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:300])
    return cleaned[:300]
