"""JSON summary, CSV files and the verdict, from real recorder/aggregator snapshots."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from phalanx.core.results import ErrorKind, RequestFailure
from phalanx.engine.verdict import EXIT_FAILED, EXIT_PASSED, VerdictPolicy, evaluate
from phalanx.exporters.csv_files import safe_cell, write_csv_files
from phalanx.exporters.json_summary import write_json_summary
from phalanx.exporters.report import RunReport, percentile_label
from phalanx.stats import Aggregator, Recorder, StatsSnapshot


def snapshot_of(successes: int, failures: int, exceptions: int = 0,
                name: str = "/items") -> StatsSnapshot:
    recorder = Recorder(0.0)
    for i in range(successes):
        recorder.record("GET", name, 0.010 + i * 0.001, 100, None)
    for _ in range(failures):
        recorder.record("GET", name, 0.5, 0, RequestFailure(ErrorKind.HTTP_STATUS, "HTTP 503"))
    for _ in range(exceptions):
        recorder.record_exception("Shopper.browse", "KeyError", "'id'", "script.py:12")
    aggregator = Aggregator(start=0.0)
    aggregator.apply(recorder.take_delta(10.0))
    return aggregator.snapshot(10.0)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def report_of(snapshot: StatsSnapshot) -> RunReport:
    verdict = evaluate(snapshot, VerdictPolicy())
    return RunReport(
        snapshot=snapshot, script="s.py", script_sha256="ab" * 32, host="http://127.0.0.1:1",
        users=5, spawn_rate=1.0, run_time=10.0, started_at=1_700_000_000.0,
        ended_at=1_700_000_010.0, stop_reason="run_time", passed=verdict.passed,
        exit_code=verdict.exit_code, reasons=verdict.reasons,
    )


def test_verdict_passes_a_clean_run() -> None:
    verdict = evaluate(snapshot_of(10, 0), VerdictPolicy())
    assert (verdict.passed, verdict.exit_code, verdict.reasons) == (True, EXIT_PASSED, ())


def test_verdict_fails_on_any_failure_by_default_and_explains() -> None:
    verdict = evaluate(snapshot_of(9, 1), VerdictPolicy())
    assert verdict.exit_code == EXIT_FAILED
    assert verdict.reasons == ("1 of 10 requests failed (10.00%, allowed 0.00%)",)


def test_verdict_allows_failures_up_to_the_ratio() -> None:
    assert evaluate(snapshot_of(9, 1), VerdictPolicy(max_fail_ratio=0.1)).passed
    assert not evaluate(snapshot_of(8, 2), VerdictPolicy(max_fail_ratio=0.1)).passed


def test_verdict_fails_on_exceptions_and_on_an_empty_run() -> None:
    assert "1 exception(s) raised in tasks" in evaluate(
        snapshot_of(5, 0, exceptions=1), VerdictPolicy()).reasons
    assert evaluate(snapshot_of(0, 0), VerdictPolicy()).reasons == ("no request was recorded",)


def test_json_summary_holds_counts_percentiles_and_verdict(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    write_json_summary(out, report_of(snapshot_of(90, 10)), "1.2.3")
    data = json.loads(out.read_text())
    assert data["schema"] == 1
    assert data["phalanx_version"] == "1.2.3"
    assert data["total"]["requests"] == 100
    assert data["total"]["failures"] == 10
    assert data["verdict"] == {"passed": False, "exit_code": 1,
                               "reasons": ["10 of 100 requests failed (10.00%, allowed 0.00%)"]}
    [entry] = data["entries"]
    assert entry["name"] == "/items"
    assert set(entry["percentiles_ms"]) >= {"50", "95", "99", "99.9", "100"}
    assert entry["percentiles_ms"]["100"] == pytest.approx(500.0)
    assert entry["min_ms"] == pytest.approx(10.0)
    assert data["errors"] == [{"method": "GET", "name": "/items", "kind": "http_status",
                               "message": "HTTP 503", "count": 10}]
    assert data["run"]["started_at"].startswith("2023-11-14T22:13:20")
    assert not list(tmp_path.glob(".*.tmp"))


def test_csv_files_have_locust_columns_and_an_aggregated_row(tmp_path: Path) -> None:
    paths = write_csv_files(str(tmp_path / "run"), report_of(snapshot_of(5, 1, exceptions=2)))
    assert [p.name for p in paths] == ["run_stats.csv", "run_failures.csv", "run_exceptions.csv"]
    rows = read_rows(paths[0])
    assert [r["Name"] for r in rows] == ["/items", "Aggregated"]
    assert rows[1]["Request Count"] == "6"
    assert rows[1]["Failure Count"] == "1"
    assert "99.9%" in rows[0]
    [failure] = read_rows(paths[1])
    assert failure["Occurrences"] == "1"
    [exception] = read_rows(paths[2])
    assert exception["Count"] == "2"
    assert exception["Location"] == "script.py:12"


@pytest.mark.parametrize("payload", ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)",
                                     "\tcmd", "\rcmd"])
def test_csv_neutralises_spreadsheet_formulas(tmp_path: Path, payload: str) -> None:
    assert safe_cell(payload) == "'" + payload
    paths = write_csv_files(str(tmp_path / "x"), report_of(snapshot_of(1, 0, name=payload)))
    first = read_rows(paths[0])[0]
    assert first["Name"] == "'" + payload


def test_csv_keeps_ordinary_text_and_numbers() -> None:
    assert safe_cell("/items") == "/items"
    assert safe_cell(-3) == -3


def test_percentile_labels() -> None:
    assert [percentile_label(q) for q in (0.5, 0.999, 0.9999, 1.0)] == ["50", "99.9", "99.99",
                                                                        "100"]
