"""Response headers: a read-only, case-insensitive, multi-value mapping.

Built lazily from the response's header block as received (decoded as
latin-1, the HTTP/1.1 header charset), so a response whose headers are never
read costs no splitting and no decoding. Trailer fields of a chunked body are
not kept. ``headers[name]`` and
``headers.get(name)`` join repeated fields with ``", "``; ``get_all(name)``
returns each value separately (use it for ``Set-Cookie``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

__all__ = ["Headers"]


class Headers(Mapping[str, str]):
    """Case-insensitive view of a response's header fields, in arrival order."""

    __slots__ = ("_index", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = list(items)
        index: dict[str, list[str]] = {}
        for name, value in self._items:
            key = name.lower()
            values = index.get(key)
            if values is None:
                index[key] = [value]
            else:
                values.append(value)
        self._index = index

    @classmethod
    def from_raw(cls, raw: bytes | Iterable[tuple[bytes, bytes]]) -> Headers:
        """Decode raw fields (latin-1): a header block (see :func:`split_fields`) or
        ``(name, value)`` pairs."""
        pairs = split_fields(raw) if isinstance(raw, bytes) else raw
        return cls((n.decode("latin-1"), v.decode("latin-1")) for n, v in pairs)

    def __getitem__(self, name: str) -> str:
        return ", ".join(self._index[name.lower()])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._items:
            key = name.lower()
            if key not in seen:
                seen.add(key)
                yield name

    def __len__(self) -> int:
        return len(self._index)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in arrival order (empty list when absent)."""
        return list(self._index.get(name.lower(), ()))

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` field as received, duplicates included."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def split_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """The ``(name, value)`` fields of a response head llhttp accepted: its status line,
    then ``b"\r\n"`` and ``name:value`` per field, no final empty line (a block without
    its status line starts with ``b"\r\n"``). Values lose their surrounding spaces and
    tabs."""
    fields = []
    for line in block.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields.append((name, value.strip(b" \t")))
    return fields
