"""The ``--csv PREFIX`` files: ``PREFIX_stats.csv``, ``_failures.csv`` and ``_exceptions.csv``.

Column names follow Locust's so existing spreadsheets and scripts keep
working; latencies are milliseconds. Every text cell that a spreadsheet would
treat as a formula (starting with ``= + - @``, tab or CR) is prefixed with
``'``: request names and error messages come from the target and from
scripts, and must not execute in the analyst's spreadsheet (CSV injection).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from phalanx.exporters.report import RunReport, ms, percentile_label
from phalanx.stats import PERCENTILES, EntrySnapshot, StatsSnapshot

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """Neutralise spreadsheet formulas in text cells; numbers pass unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _write(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([safe_cell(cell) for cell in row])


def _stats_row(entry: EntrySnapshot, name: str) -> list[object]:
    return [
        entry.method,
        name,
        entry.num_requests,
        entry.num_failures,
        ms(entry.percentile(0.5)),
        ms(entry.mean),
        ms(entry.min),
        ms(entry.max),
        round(entry.avg_response_bytes, 1),
        round(entry.rps, 3),
        round(entry.failures_per_s, 3),
        *(ms(value) for _, value in entry.percentiles),
    ]


STATS_HEADER: tuple[str, ...] = (
    "Type", "Name", "Request Count", "Failure Count", "Median Response Time",
    "Average Response Time", "Min Response Time", "Max Response Time",
    "Average Content Size", "Requests/s", "Failures/s",
    *(f"{percentile_label(q)}%" for q in PERCENTILES),
)


def stats_rows(snap: StatsSnapshot) -> list[list[object]]:
    """The stats table (header first), every text cell formula-safe."""
    rows = [_stats_row(entry, entry.name) for entry in snap.entries]
    rows.append(_stats_row(snap.total, "Aggregated"))
    rows[-1][0] = ""
    return [list(STATS_HEADER), *([safe_cell(cell) for cell in row] for row in rows)]


def write_csv_files(prefix: str, report: RunReport) -> list[Path]:
    """Write the three files next to ``prefix``; return their paths."""
    snap = report.snapshot
    stats_path = Path(f"{prefix}_stats.csv")
    failures_path = Path(f"{prefix}_failures.csv")
    exceptions_path = Path(f"{prefix}_exceptions.csv")
    table = stats_rows(snap)
    _write(stats_path, STATS_HEADER, table[1:])
    _write(
        failures_path,
        ["Method", "Name", "Kind", "Error", "Occurrences"],
        ([e.method, e.name, e.kind, e.message, e.count] for e in snap.errors),
    )
    _write(
        exceptions_path,
        ["Count", "Task", "Type", "Message", "Location"],
        ([e.count, e.task, e.error_type, e.message, e.location] for e in snap.exceptions),
    )
    return [stats_path, failures_path, exceptions_path]
