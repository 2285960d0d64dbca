"""Size limits of the stats layer and the names that overflow folds into.

Every text field that reaches a :class:`~phalanx.stats.delta.StatsDelta` is cut
to a bounded length, and every table (entries, errors, exceptions) holds a
bounded number of rows: once a table is full, new keys are folded into one
overflow row whose key is given here. The recorder (worker side) and the
aggregator (master side) apply the same rules, and ``decode_delta`` rejects
text longer than these limits.
"""

from __future__ import annotations

from typing import Final

MAX_NAME_LENGTH: Final = 1_000
"""Longest method, name, error kind, task, error type or location kept (characters)."""

MAX_MESSAGE_LENGTH: Final = 500
"""Longest error or exception message kept (characters)."""

OVERFLOW_METHOD: Final = ""
OVERFLOW_NAME: Final = "<other>"
"""Entry that collects requests to names beyond the entry limit (method ``""``)."""

OVERFLOW_ERROR_KIND: Final = "other"
OVERFLOW_ERROR_MESSAGE: Final = "<other errors>"
"""Error row (method ``""``, name ``"<other>"``, kind ``"other"``) beyond the error limit."""

OVERFLOW_EXCEPTION_MESSAGE: Final = "<other exceptions>"
"""Exception row (task ``"<other>"``, type ``""``, location ``""``) beyond the limit."""


def clip_name(text: str) -> str:
    """``text`` cut to :data:`MAX_NAME_LENGTH` characters."""
    return text if len(text) <= MAX_NAME_LENGTH else text[:MAX_NAME_LENGTH]


def clip_message(text: str) -> str:
    """``text`` cut to :data:`MAX_MESSAGE_LENGTH` characters."""
    return text if len(text) <= MAX_MESSAGE_LENGTH else text[:MAX_MESSAGE_LENGTH]
