"""The worker-side sink for request results: counts now, ships deltas later.

:class:`Recorder` implements :class:`phalanx.core.results.RequestRecorder`.
Its ``record`` is on the hot path of every request: one ``dict`` lookup keyed
``(method, name)`` and one :meth:`Histogram.record`; a failure also bumps one
counter in the error table. :meth:`Recorder.take_delta` hands everything since
the previous take to the caller as an immutable
:class:`~phalanx.stats.delta.StatsDelta` and starts a new interval.

Bounds (per interval, reset by ``take_delta``)
----------------------------------------------
- At most ``max_entries`` distinct (method, name) entries. Requests to further
  new names are folded into one overflow entry, method ``""`` and name
  ``"<other>"`` (:data:`~phalanx.stats.limits.OVERFLOW_NAME`), so a script that
  puts unbounded values (ids, timestamps) into names cannot exhaust memory.
- At most ``max_errors`` distinct error rows (method, name, kind, message);
  further new ones are counted in one row ``("", "<other>", "other",
  "<other errors>")``. The same limit applies to the exception table, whose
  overflow row is ``("<other>", "", "<other exceptions>", "")``.
- Methods, names, kinds, task names, error types and locations are cut to
  :data:`~phalanx.stats.limits.MAX_NAME_LENGTH` characters and messages to
  :data:`~phalanx.stats.limits.MAX_MESSAGE_LENGTH` (500); names that become
  equal after cutting share one entry.

Redaction: with ``redact`` (the run's :meth:`Redactor.redact_text
<phalanx.security.redaction.Redactor.redact_text>`), every name, message,
task and location leaves the recorder masked, in ``take_delta``: once per
entry and interval, never per request, so secrets that reached a name (a
token in a URL path) or a message never reach a delta, the wire, a snapshot
or an output. Rows that become equal once masked are merged.

Elapsed times are seconds; the histogram clamps negative, NaN and huge values.
Negative ``response_bytes`` are ignored. ``record`` and ``record_exception``
never raise for values of the declared types. Not thread-safe: one event loop
owns a recorder.
"""

from __future__ import annotations

from collections.abc import Callable

from phalanx.core.results import RequestFailure
from phalanx.stats.delta import EntryDelta, ErrorDelta, ExceptionDelta, StatsDelta
from phalanx.stats.histogram import DEFAULT_RELATIVE_ERROR, Histogram
from phalanx.stats.limits import (
    MAX_MESSAGE_LENGTH,
    MAX_NAME_LENGTH,
    OVERFLOW_ERROR_KIND,
    OVERFLOW_ERROR_MESSAGE,
    OVERFLOW_EXCEPTION_MESSAGE,
    OVERFLOW_METHOD,
    OVERFLOW_NAME,
    clip_message,
    clip_name,
)

REDACTION_MARGIN = 2048
"""Extra characters kept at record time when redacting (see ``take_delta``)."""

_ErrorKey = tuple[str, str, str, str]

_OVERFLOW_ERROR: _ErrorKey = (
    OVERFLOW_METHOD,
    OVERFLOW_NAME,
    OVERFLOW_ERROR_KIND,
    OVERFLOW_ERROR_MESSAGE,
)
_OVERFLOW_EXCEPTION: _ErrorKey = (OVERFLOW_NAME, "", OVERFLOW_EXCEPTION_MESSAGE, "")


class _Entry:
    """Mutable per-(method, name) counters of the current interval."""

    __slots__ = ("histogram", "method", "name", "num_failures", "response_bytes")

    def __init__(self, method: str, name: str, relative_error: float) -> None:
        self.method = method
        self.name = name
        self.histogram = Histogram(relative_error)
        self.num_failures = 0
        self.response_bytes = 0


class _CountTable:
    """Bounded counters keyed by 4 strings, folding new keys into ``overflow`` when full."""

    __slots__ = ("_limit", "_overflow", "_rows", "counts")

    def __init__(self, limit: int, overflow: _ErrorKey) -> None:
        self._limit = limit
        self._overflow = overflow
        self._rows = 0
        self.counts: dict[_ErrorKey, int] = {}

    def add(self, key: _ErrorKey) -> None:
        counts = self.counts
        current = counts.get(key)
        if current is not None:
            counts[key] = current + 1
            return
        if self._rows < self._limit:
            self._rows += 1
            counts[key] = 1
            return
        overflow = self._overflow
        counts[overflow] = counts.get(overflow, 0) + 1


class Recorder:
    """Collects request results and task exceptions into per-interval deltas."""

    __slots__ = (
        "_entries",
        "_errors",
        "_exceptions",
        "_max_entries",
        "_max_errors",
        "_message_cut",
        "_name_cut",
        "_named_entries",
        "_redact",
        "_relative_error",
        "_start",
    )

    def __init__(
        self,
        start: float,
        *,
        relative_error: float = DEFAULT_RELATIVE_ERROR,
        max_entries: int = 10_000,
        max_errors: int = 1_000,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        if max_entries < 1 or max_errors < 1:
            raise ValueError("max_entries and max_errors must be at least 1")
        Histogram(relative_error)  # validates relative_error now, not on the first request
        self._relative_error = relative_error
        self._redact = redact
        # With redaction, texts are cut generously at record time and to the real limits
        # only after masking: a secret straddling the limit must not survive in part.
        margin = REDACTION_MARGIN if redact is not None else 0
        self._name_cut = MAX_NAME_LENGTH + margin
        self._message_cut = MAX_MESSAGE_LENGTH + margin
        self._max_entries = max_entries
        self._max_errors = max_errors
        self._start = start
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._named_entries = 0
        self._errors = _CountTable(max_errors, _OVERFLOW_ERROR)
        self._exceptions = _CountTable(max_errors, _OVERFLOW_EXCEPTION)

    @property
    def start(self) -> float:
        """Start of the current interval."""
        return self._start

    @property
    def pending_requests(self) -> int:
        """Requests recorded since the last :meth:`take_delta` (O(entries))."""
        return sum(entry.histogram.count for entry in self._entries.values())

    def record(
        self,
        method: str,
        name: str,
        elapsed: float,
        response_bytes: int,
        failure: RequestFailure | None,
    ) -> None:
        """Count one finished request (``elapsed`` in seconds)."""
        entry = self._entries.get((method, name))
        if entry is None:
            entry = self._entry_for(method, name)
        entry.histogram.record(elapsed)
        if response_bytes > 0:
            entry.response_bytes += response_bytes
        if failure is not None:
            entry.num_failures += 1
            self._errors.add(
                (entry.method, entry.name, clip_name(failure.kind),
                 failure.message[: self._message_cut])
            )

    def record_exception(self, task: str, error_type: str, message: str, location: str) -> None:
        """Count one exception that escaped a user task."""
        cut, message_cut = self._name_cut, self._message_cut
        self._exceptions.add((task[:cut], error_type[:cut], message[:message_cut], location[:cut]))

    def take_delta(self, now: float) -> StatsDelta:
        """Everything recorded during ``[start, now)``; the next interval starts at ``now``.

        A ``now`` earlier than the interval start (or NaN) is treated as the
        start, so the delta is always valid. Entries are sorted by
        (method, name) and error rows by key.
        """
        end = now if now >= self._start else self._start
        entry_map = self._entries
        error_counts = self._errors.counts
        exception_counts = self._exceptions.counts
        if self._redact is not None:
            entry_map = self._redacted_entries(self._redact)
            error_counts = _redacted_counts(error_counts, self._redact)
            exception_counts = _redacted_counts(exception_counts, self._redact)
        entries = tuple(
            EntryDelta(
                method=entry.method,
                name=entry.name,
                num_requests=entry.histogram.count,
                num_failures=entry.num_failures,
                response_bytes=entry.response_bytes,
                histogram=entry.histogram.to_wire(),
            )
            for _, entry in sorted(entry_map.items())
        )
        errors = tuple(
            ErrorDelta(method=m, name=n, kind=k, message=msg, count=c)
            for (m, n, k, msg), c in sorted(error_counts.items())
        )
        exceptions = tuple(
            ExceptionDelta(task=t, error_type=et, message=msg, location=loc, count=c)
            for (t, et, msg, loc), c in sorted(exception_counts.items())
        )
        delta = StatsDelta(
            start=self._start, end=end, entries=entries, errors=errors, exceptions=exceptions
        )
        self._start = end
        self._entries = {}
        self._named_entries = 0
        self._errors = _CountTable(self._max_errors, _OVERFLOW_ERROR)
        self._exceptions = _CountTable(self._max_errors, _OVERFLOW_EXCEPTION)
        return delta

    def _redacted_entries(self, redact: Callable[[str], str]) -> dict[tuple[str, str], _Entry]:
        merged: dict[tuple[str, str], _Entry] = {}
        for (method, name), entry in self._entries.items():
            key = (clip_name(redact(method)), clip_name(redact(name)))
            target = merged.get(key)
            if target is None:
                entry.method, entry.name = key
                merged[key] = entry
                continue
            target.histogram.merge(entry.histogram)
            target.num_failures += entry.num_failures
            target.response_bytes += entry.response_bytes
        return merged

    def _entry_for(self, method: str, name: str) -> _Entry:
        """Slow path of ``record``: clip, create, or fold into the overflow entry.

        Only clipped keys are stored, so a name longer than the limit takes
        this path on every request (rare, and still bounded in memory).
        """
        cut = self._name_cut
        key = (method[:cut], name[:cut])
        entry = self._entries.get(key)
        if entry is not None:
            return entry
        if self._named_entries >= self._max_entries:
            key = (OVERFLOW_METHOD, OVERFLOW_NAME)
            entry = self._entries.get(key)
            if entry is not None:
                return entry
        else:
            self._named_entries += 1
        entry = _Entry(key[0], key[1], self._relative_error)
        self._entries[key] = entry
        return entry


def _redacted_counts(
    counts: dict[_ErrorKey, int], redact: Callable[[str], str]
) -> dict[_ErrorKey, int]:
    """The rows with every text field masked (and clipped again), equal rows merged."""
    merged: dict[_ErrorKey, int] = {}
    for (first, second, third, fourth), count in counts.items():
        key = (
            clip_name(redact(first)),
            clip_name(redact(second)),
            clip_message(redact(third)),
            clip_message(redact(fourth)),
        )
        merged[key] = merged.get(key, 0) + count
    return merged
