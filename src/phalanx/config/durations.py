"""Parsing and formatting of human durations: ``90``, ``30s``, ``2m``, ``1h30m``, ``1.5s``.

Pure. A bare number means seconds. Units: ``ms``, ``s``, ``m``, ``h``, ``d``.
"""

from __future__ import annotations

import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Return the number of seconds ``text`` denotes; ``ValueError`` if it is not a duration."""
    raw = text.strip().lower()
    if not raw:
        raise ValueError("empty duration")
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{text!r} is not a finite duration")
        return value
    position = 0
    total = 0.0
    for match in _PART.finditer(raw):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(raw) or position == 0:
        raise ValueError(
            f"{text!r} is not a duration (examples: 90, 30s, 2m, 1h30m, 500ms)"
        )
    return total


def format_duration(seconds: float) -> str:
    """Format seconds compactly for people: ``1h02m03s``, ``2m00s``, ``4.5s``."""
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds != int(seconds) else f"{int(seconds)}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s"
