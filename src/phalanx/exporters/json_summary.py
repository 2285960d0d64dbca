"""The ``--json FILE`` summary: one JSON document per run, latencies in milliseconds.

Schema (version 1): ``schema``, ``phalanx_version``, ``run`` (script, sha256,
host, users, spawn rate, run time, start/end as ISO-8601 UTC, duration, stop
reason), ``verdict`` (passed, exit code, reasons), ``total`` and ``entries``
(per method+name: counts, rates, min/mean/max and percentiles in ms),
``errors`` and ``exceptions`` with counts, ``health`` (the generator's
peak CPU and where synchronous code blocked its event loop), and ``workers``
(a distributed run's workers: name, key fingerprint, state, users, CPU,
memory; empty for one process).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from phalanx.exporters.report import RunReport, ms, percentile_label
from phalanx.stats import EntrySnapshot

SCHEMA_VERSION = 1


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).isoformat(timespec="milliseconds")


def entry_dict(entry: EntrySnapshot) -> dict[str, Any]:
    return {
        "method": entry.method,
        "name": entry.name,
        "requests": entry.num_requests,
        "failures": entry.num_failures,
        "fail_ratio": round(entry.fail_ratio, 6),
        "rps": round(entry.rps, 3),
        "failures_per_s": round(entry.failures_per_s, 3),
        "min_ms": ms(entry.min),
        "mean_ms": ms(entry.mean),
        "max_ms": ms(entry.max),
        "percentiles_ms": {percentile_label(q): ms(v) for q, v in entry.percentiles},
        "response_bytes": entry.response_bytes,
        "avg_response_bytes": round(entry.avg_response_bytes, 1),
    }


def summary_dict(report: RunReport, version: str) -> dict[str, Any]:
    snap = report.snapshot
    return {
        "schema": SCHEMA_VERSION,
        "phalanx_version": version,
        "run": {
            "script": report.script,
            "script_sha256": report.script_sha256,
            "host": report.host,
            "users": report.users,
            "spawn_rate": report.spawn_rate,
            "shape": report.shape,
            "run_time_s": report.run_time,
            "started_at": _iso(report.started_at),
            "ended_at": _iso(report.ended_at),
            "duration_s": round(snap.duration, 3),
            "stop_reason": report.stop_reason,
        },
        "verdict": {
            "passed": report.passed,
            "exit_code": report.exit_code,
            "reasons": list(report.reasons),
        },
        "health": {
            "max_cpu_percent": round(report.health.max_cpu_percent, 1),
            "cpu_warnings": report.health.cpu_warnings,
            "blocked_loop": [
                {"location": b.location, "function": b.function, "count": b.count,
                 "max_ms": ms(b.max_seconds), "total_ms": ms(b.total_seconds)}
                for b in report.health.blocked
            ],
        },
        "workers": [
            {"name": w.name, "fingerprint": w.fingerprint, "state": w.state,
             "users": w.users, "cpu_percent": round(w.cpu_percent, 1),
             "max_cpu_percent": round(w.max_cpu_percent, 1), "rss_bytes": w.rss_bytes,
             "cpu_warning": w.cpu_warning}
            for w in report.workers
        ],
        "total": entry_dict(snap.total),
        "entries": [entry_dict(entry) for entry in snap.entries],
        "errors": [
            {"method": e.method, "name": e.name, "kind": e.kind, "message": e.message,
             "count": e.count}
            for e in snap.errors
        ],
        "exceptions": [
            {"task": e.task, "type": e.error_type, "message": e.message,
             "location": e.location, "count": e.count}
            for e in snap.exceptions
        ],
    }


def write_json_summary(path: str | Path, report: RunReport, version: str) -> None:
    """Write atomically (temp file + rename) so a reader never sees half a file."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(summary_dict(report, version), indent=2) + "\n",
                       encoding="utf-8")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
