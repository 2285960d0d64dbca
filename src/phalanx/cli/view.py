"""The terminal view of a run: a live rich table while it runs and a final summary.

The runner calls :meth:`TerminalView.update` with each new snapshot; the view
never reaches into the engine. On a terminal (or ``--live on``) it redraws a
live panel; otherwise it prints a one-line progress report every
``summary_interval`` seconds (log-friendly for CI). Text that comes from the
target or the script (names, error messages) is rendered as plain text, never
as rich markup.
"""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from phalanx.config.durations import format_duration
from phalanx.core.health import HealthReport
from phalanx.engine.runner import RunStatus
from phalanx.engine.verdict import Verdict
from phalanx.stats import EntrySnapshot, StatsSnapshot

MAX_ROWS = 30
MAX_ERROR_ROWS = 8


def _ms(seconds: float) -> str:
    value = seconds * 1000.0
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _entry_row(entry: EntrySnapshot, *, current: bool, label: str | None = None) -> list[Text]:
    fails = f"{entry.num_failures:,}"
    if entry.num_requests:
        fails += f" ({entry.num_failures / entry.num_requests:.1%})"
    if current:
        rps = entry.current_rps
        pct = dict(entry.current_percentiles)
    else:
        rps = entry.rps
        pct = dict(entry.percentiles)
    return [
        Text(entry.method),
        Text(label if label is not None else entry.name, overflow="ellipsis"),
        Text(f"{entry.num_requests:,}", justify="right"),
        Text(fails, justify="right", style="red" if entry.num_failures else ""),
        Text(f"{rps:,.1f}", justify="right"),
        Text(_ms(pct.get(0.5, 0.0)), justify="right"),
        Text(_ms(pct.get(0.95, 0.0)), justify="right"),
        Text(_ms(pct.get(0.99, 0.0)), justify="right"),
        Text(_ms(entry.max), justify="right"),
    ]


def stats_table(snapshot: StatsSnapshot, *, current: bool, title: str | None = None) -> Table:
    """Per-endpoint table; ``current`` picks the sliding window over whole-run figures."""
    table = Table(title=title, expand=False, header_style="bold", title_justify="left")
    rate = "req/s (now)" if current else "req/s"
    window = " (now)" if current else ""
    for column, justify in (
        ("Method", "left"), ("Name", "left"), ("Requests", "right"), ("Failures", "right"),
        (rate, "right"), (f"p50 ms{window}", "right"), (f"p95 ms{window}", "right"),
        (f"p99 ms{window}", "right"), ("max ms", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    entries = sorted(snapshot.entries, key=lambda e: (-e.num_requests, e.name))
    for entry in entries[:MAX_ROWS]:
        table.add_row(*_entry_row(entry, current=current))
    if len(entries) > MAX_ROWS:
        table.add_row(Text(""), Text(f"… {len(entries) - MAX_ROWS} more endpoints"))
    table.add_section()
    table.add_row(*_entry_row(snapshot.total, current=current, label="Total"), style="bold")
    return table


def errors_table(snapshot: StatsSnapshot) -> Table | None:
    if not snapshot.errors and not snapshot.exceptions:
        return None
    table = Table(title="Failures", header_style="bold", title_justify="left")
    table.add_column("Count", justify="right")
    table.add_column("Method")
    table.add_column("Name")
    table.add_column("Kind")
    table.add_column("Message", overflow="fold")
    for error in snapshot.errors[:MAX_ERROR_ROWS]:
        table.add_row(
            Text(f"{error.count:,}"), Text(error.method), Text(error.name),
            Text(error.kind), Text(error.message),
        )
    for exc in snapshot.exceptions[:MAX_ERROR_ROWS]:
        table.add_row(
            Text(f"{exc.count:,}"), Text("TASK"), Text(exc.task), Text("exception"),
            Text(f"{exc.error_type}: {exc.message} at {exc.location}"),
        )
    return table


def status_line(snapshot: StatsSnapshot, status: RunStatus) -> Text:
    total = snapshot.total
    ratio = total.num_failures / total.num_requests if total.num_requests else 0.0
    limit = f"/{format_duration(status.run_time)}" if status.run_time else ""
    line = Text()
    line.append(f"{status.state.value:<9}", style="bold cyan")
    line.append(f" users {status.users}/{status.target_users}")
    line.append(f"  elapsed {format_duration(status.elapsed)}{limit}")
    line.append(f"  {total.current_rps:,.1f} req/s")
    line.append(f"  failures {ratio:.2%}", style="red" if total.num_failures else "")
    p95 = dict(total.current_percentiles).get(0.95, 0.0)
    line.append(f"  p95 {_ms(p95)} ms")
    hot = status.cpu_percent > 90
    if status.workers is not None:  # a master: the busiest worker's CPU
        line.append(f"  workers {status.workers}", style="" if status.workers else "red")
        line.append(f"  max worker cpu {status.cpu_percent:.0f}%", style="yellow" if hot else "")
    else:
        line.append(f"  cpu {status.cpu_percent:.0f}%", style="yellow" if hot else "")
    if status.spawn_paused:
        line.append(f"  spawning paused ({status.spawn_paused} limit)", style="yellow")
    if status.blocked_loops:
        line.append(f"  loop blocked {status.blocked_loops}x", style="yellow")
    return line


def health_lines(health: HealthReport) -> list[Text]:
    """Warnings about the generator itself; empty when it was healthy."""
    lines: list[Text] = []
    if health.cpu_warnings:
        lines.append(Text(
            f"WARNING: the load generator's CPU was above 90% of a core "
            f"(peak {health.max_cpu_percent:.0f}%): figures may be skewed", style="yellow"))
    for item in health.blocked[:MAX_ERROR_ROWS]:
        lines.append(Text(
            f"WARNING: event loop blocked {item.count}x (worst {item.max_seconds * 1000:.0f} ms, "
            f"total {item.total_seconds:.1f} s) at {item.location} in {item.function}",
            style="yellow"))
    return lines


class TerminalView:
    """Renders updates; use as a context manager around the run."""

    def __init__(self, console: Console, *, live: bool, summary_interval: float) -> None:
        self._console = console
        self._live_enabled = live
        self._summary_interval = summary_interval
        self._live: Live | None = None
        self._last_line = 0.0

    def __enter__(self) -> TerminalView:
        if self._live_enabled:
            self._live = Live(
                Text("starting…"), console=self._console, refresh_per_second=4, transient=True
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def update(self, snapshot: StatsSnapshot, status: RunStatus) -> None:
        if self._live is not None:
            parts: list[RenderableType] = [status_line(snapshot, status)]
            parts.append(stats_table(snapshot, current=True))
            errors = errors_table(snapshot)
            if errors is not None:
                parts.append(errors)
            self._live.update(Group(*parts))
            return
        if self._summary_interval <= 0:
            return
        if status.elapsed - self._last_line >= self._summary_interval:
            # Advance by whole intervals so float jitter in `elapsed` never skips a line.
            while self._last_line + self._summary_interval <= status.elapsed:
                self._last_line += self._summary_interval
            self._console.print(status_line(snapshot, status))

    def summary(self, snapshot: StatsSnapshot, verdict: Verdict, reason: str,
                health: HealthReport | None = None) -> None:
        duration = format_duration(snapshot.duration)
        self._console.print(
            stats_table(snapshot, current=False, title=f"Summary ({duration}, stopped: {reason})")
        )
        errors = errors_table(snapshot)
        if errors is not None:
            self._console.print(errors)
        for line in health_lines(health or HealthReport()):
            self._console.print(line)
        if verdict.passed:
            self._console.print(Text("PASSED", style="bold green"))
        else:
            self._console.print(Text("FAILED", style="bold red"))
            for text in verdict.reasons:
                self._console.print(Text(f"  - {text}"))
