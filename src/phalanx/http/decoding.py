"""Streaming ``Content-Encoding`` decoding with a hard cap on the output size.

Responses with ``Content-Encoding: gzip`` (or ``x-gzip``) or ``deflate`` are
decompressed as their bytes arrive, with :func:`zlib.decompressobj`. The
decompressed size is capped: each call produces at most ``room + 1`` bytes,
so a small compressed body that expands to gigabytes (a zip bomb) costs at
most the cap in memory and a bounded amount of CPU; once the cap is passed
the decoder stops inflating and the rest of the body is only counted.

``deflate`` is the zlib format per RFC 9110, but some servers send raw
deflate: when the first bytes are not a zlib header, the decoder switches to
raw deflate once.
"""

from __future__ import annotations

import zlib

__all__ = ["BodyDecodeError", "Decompressor", "decoder_for"]


class BodyDecodeError(ValueError):
    """The body is not valid data for its ``Content-Encoding``."""


class Decompressor:
    """Inflates one response body, at most ``room`` more bytes per call."""

    __slots__ = ("_encoding", "_started", "_zlib")

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        wbits = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(wbits)
        self._started = False

    def decompress(self, data: bytes, room: int) -> tuple[bytes, bool]:
        """Inflate ``data``; return ``(output, overflowed)``.

        ``output`` holds at most ``room`` bytes; ``overflowed`` is True when
        more output was available than ``room`` (the decoder must then not be
        fed again).
        """
        try:
            out = self._zlib.decompress(data, room + 1)
        except zlib.error:
            if self._started or self._encoding != "deflate":
                raise BodyDecodeError(f"invalid {self._encoding} body") from None
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            self._started = True
            try:
                out = self._zlib.decompress(data, room + 1)
            except zlib.error:
                raise BodyDecodeError(f"invalid {self._encoding} body") from None
        self._started = True
        if len(out) > room:
            return out[:room], True
        return out, False

    def flush(self, room: int) -> tuple[bytes, bool]:
        """Output still buffered at the end of the body (same contract)."""
        try:
            out = self._zlib.flush()
        except zlib.error:
            raise BodyDecodeError(f"invalid {self._encoding} body") from None
        if len(out) > room:
            return out[:room], True
        return out, False


def decoder_for(content_encoding: bytes) -> Decompressor | None:
    """A decoder for a ``Content-Encoding`` value, or None to keep the bytes as they are."""
    value = content_encoding.strip().lower()
    if value in (b"gzip", b"x-gzip"):
        return Decompressor("gzip")
    if value == b"deflate":
        return Decompressor("deflate")
    return None
