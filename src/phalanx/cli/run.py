"""``phalanx run``: one process runs the whole test headless, with a live terminal view.

Steps: settings (defaults < file < env < flags) -> script -> user classes ->
runner on uvloop with SIGINT/SIGTERM handlers -> outputs -> verdict -> exit
code. Everything that can be checked before load starts is checked first, so
a mistake costs no traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.logging import RichHandler

from phalanx import secrets
from phalanx.cli.options import add_option_arguments, cli_values
from phalanx.cli.view import TerminalView
from phalanx.config.settings import Settings, build_settings
from phalanx.core.errors import ConfigError, PhalanxError, ScriptError
from phalanx.engine.health import physical_memory_bytes
from phalanx.engine.runner import LocalRunner, RunPlan, RunResult, RunState
from phalanx.engine.verdict import EXIT_USAGE, Verdict, VerdictPolicy, evaluate
from phalanx.exporters.csv_files import write_csv_files
from phalanx.exporters.json_summary import write_json_summary
from phalanx.exporters.report import RunReport
from phalanx.http.budget import (
    ConnectionBudget,
    default_connection_limit,
    raise_descriptor_limit,
)
from phalanx.http.options import HttpOptions, TlsContexts
from phalanx.scripting.context import UserContext
from phalanx.scripting.loader import LoadedScript, load_script, select_user_classes
from phalanx.scripting.task import classes_without_tasks
from phalanx.scripting.user import User, validate_user_classes
from phalanx.security.redaction import Redactor
from phalanx.security.scope import ScopeGuard
from phalanx.security.secrets import SecretStore
from phalanx.stats import Aggregator, Recorder

log = logging.getLogger("phalanx")

_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("script and target",
     ("file", "host", "allow_targets", "user_classes", "tags", "exclude_tags")),
    ("load", ("users", "spawn_rate", "run_time", "stop_timeout", "seed")),
    ("output", ("live", "stats_interval", "summary_interval", "json", "csv", "log_level")),
    ("several processes", ("processes", "expect_workers_timeout")),
    ("web UI", ("web", "autostart", "web_bind", "tls_cert", "tls_key", "web_trusted_proxies",
                "web_public_url", "user_store", "admin_password_file", "audit_log")),
    ("pass/fail", ("max_fail_ratio",)),
    ("safety limits, secrets and timeouts",
     ("max_users", "max_spawn_rate", "max_memory", "max_connections", "secrets_dir",
      "connect_timeout",
      "request_timeout", "ca_file")),
)

EPILOG = """\
examples:
  phalanx run -f script.py --host http://127.0.0.1:8080 -u 200 -r 50 -t 2m
  phalanx run -f script.py -u 10 -t 30s --json out.json --csv out/run1

every option can also be set in a TOML file (--config FILE or PHALANX_CONFIG;
keys as the long option names, e.g. spawn_rate = 20) or in PHALANX_<NAME>
environment variables (e.g. PHALANX_SPAWN_RATE=20); precedence:
defaults < config file < environment < command line.

exit codes: 0 passed; 1 failed (failed requests above --max-fail-ratio,
exceptions in tasks, or no request made); 2 bad option, config or script;
3 internal error. Ctrl-C stops gracefully (users finish within
--stop-timeout), a second Ctrl-C stops at once.
"""


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "run",
        help="run a load test on this machine (live terminal view; --web, --processes N)",
        description="Run a load test on this machine: headless with a live terminal view, "
                    "driven from the web UI (--web), or over N local worker processes "
                    "(--processes N).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_option_arguments(parser, _SECTIONS)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    settings, warnings = build_settings(
        cli=cli_values(args), environ=os.environ, config_file=args.config
    )
    console, view, redactor = set_up_output(settings, warnings)
    try:
        with secrets.using(secret_store(settings, redactor)):
            result: RunResult | None
            if settings.processes:
                from phalanx.cli.master import run_local_cluster

                script, result = run_local_cluster(settings, view, redactor)
            elif settings.web and not settings.autostart:
                from phalanx.cli.session import run_web_session

                script, result = run_web_session(settings, view, redactor)
            else:
                prepared = prepare(settings, redactor)
                script = prepared.script
                result = run_until_done(prepared, settings, view, redactor)
    except PhalanxError as exc:
        # An import error of the script may quote a secret it already read: mask it.
        exc.args = (redactor.redact_text(str(exc)),)
        raise
    if result is None:  # a UI-driven session that ended before any test ran
        console.print("no test was run", highlight=False, markup=False)
        return 0
    return finish(settings, script, result, console, view, redactor)


def set_up_output(settings: Settings,
                  warnings: list[str]) -> tuple[Console, TerminalView, Redactor]:
    """The console, the terminal view and logging (through a redacting formatter)."""
    # Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; logs can be wide.
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
    console = Console(stderr=False, highlight=False, width=width)
    live = settings.live == "on" or (settings.live == "auto" and console.is_terminal)
    redactor = Redactor()
    # With the live view, logs go through its console so they print above it, not into it.
    log_console = console if live else Console(stderr=True, highlight=False, width=width)
    configure_logging(settings, log_console, redactor)
    for warning in warnings:
        log.warning("%s", warning)
    view = TerminalView(console, live=live, summary_interval=settings.summary_interval)
    return console, view, redactor


def finish(settings: Settings, script: LoadedScript, result: RunResult, console: Console,
           view: TerminalView, redactor: Redactor) -> int:
    """Verdict, summary table, --json/--csv; the exit code."""
    verdict = evaluate(result.snapshot, VerdictPolicy(max_fail_ratio=settings.max_fail_ratio))
    view.summary(result.snapshot, verdict, result.reason.value, result.health)
    if not write_outputs(settings, script, result, verdict, console, redactor):
        return EXIT_USAGE
    return verdict.exit_code


def secret_store(settings: Settings, redactor: Redactor) -> SecretStore:
    """Secrets from PHALANX_SECRET_* and --secrets-dir, each registered for masking."""
    return SecretStore(
        os.environ, Path(settings.secrets_dir) if settings.secrets_dir else None, redactor
    )


class RedactingFormatter(logging.Formatter):
    """Formats a record (traceback included), then masks secrets in the whole text."""

    def __init__(self, redactor: Redactor, fmt: str = "%(message)s") -> None:
        super().__init__(fmt)
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self._redactor.redact_text(super().format(record))


def configure_logging(settings: Settings, console: Console, redactor: Redactor, *,
                      plain: bool = False) -> None:
    """One handler on the root logger: phalanx's logs and the script's own go through it.

    ``plain``: one unwrapped line per record (``time level logger: message``),
    for log collectors and for a master relaying a local worker's lines.
    """
    handler: logging.Handler
    if plain:
        handler = logging.StreamHandler(console.file)
        formatter = RedactingFormatter(redactor, "%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        handler = RichHandler(console=console, show_path=False, markup=False,
                              rich_tracebacks=False)
        formatter = RedactingFormatter(redactor)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    phalanx_logger = logging.getLogger("phalanx")
    phalanx_logger.handlers[:] = []
    phalanx_logger.setLevel(settings.log_level)
    phalanx_logger.propagate = True


class Prepared:
    """Everything checked and built before the first request is sent."""

    def __init__(self, script: LoadedScript, classes: tuple[type[User], ...],
                 context: UserContext, recorder: Recorder, plan: RunPlan) -> None:
        self.script = script
        self.classes = classes
        self.context = context
        self.recorder = recorder
        self.plan = plan


def prepare(settings: Settings, redactor: Redactor | None = None) -> Prepared:
    """Load and check the script and build the run; raises PhalanxError on any mistake."""
    script, classes = load_classes(settings)
    check_outputs(settings)
    return build_run(settings, script, classes, redactor)


def build_run(settings: Settings, script: LoadedScript, classes: tuple[type[User], ...],
              redactor: Redactor | None = None, scope: ScopeGuard | None = None) -> Prepared:
    """A run of already loaded classes with ``settings`` (its scope built and checked first,
    unless ``scope`` is given)."""
    if scope is None:
        scope = build_scope(settings, classes)
    recorder = Recorder(0.0, redact=redactor.redact_text if redactor is not None else None)
    context, budget = build_context(settings, settings.host, scope, recorder)
    shape = script.shape_class() if script.shape_class is not None else None
    plan = RunPlan(
        user_classes=classes,
        users=settings.users,
        spawn_rate=settings.spawn_rate,
        run_time=settings.run_time,
        stop_timeout=settings.stop_timeout,
        stats_interval=settings.stats_interval,
        shape=shape,
        max_users=settings.max_users,
        max_spawn_rate=settings.max_spawn_rate,
        max_memory=settings.max_memory or default_memory_limit(),
        connections=budget,
    )
    return Prepared(script, classes, context, recorder, plan)


_LATER = "http://host-named-later"


def load_classes(settings: Settings, *, host_known: bool = True,
                 ) -> tuple[LoadedScript, tuple[type[User], ...]]:
    """The script and the User classes to run (selected, tag-filtered, validated).

    ``host_known=False`` (a worker: its master names the host later) skips the
    check that every class has a host.
    """
    if not settings.file:
        raise ConfigError("no script given: use -f SCRIPT (or `file` in the config file)")
    script = load_script(settings.file)
    classes = (
        select_user_classes(script, settings.user_classes)
        if settings.user_classes else script.user_classes
    )
    tags = frozenset(settings.tags) or None
    exclude = frozenset(settings.exclude_tags) or None
    if tags or exclude:
        empty = set(classes_without_tasks(classes, tags, exclude))
        for cls in classes:
            if cls in empty:
                log.warning("%s has no task left after tag filtering; it will not run",
                            cls.__name__)
        classes = tuple(cls for cls in classes if cls not in empty)
        if not classes:
            raise ConfigError("no task matches the given --tags/--exclude-tags")
    # A worker checks the host part again for each Start (see phalanx.cli.worker).
    problems = validate_user_classes(classes, settings.host if host_known else _LATER)
    if problems:
        raise ScriptError("; ".join(problems), path=str(script.path))
    return script, classes


def build_context(settings: Settings, host: str | None, scope: ScopeGuard,
                  recorder: Recorder) -> tuple[UserContext, ConnectionBudget]:
    """The users' shared context (HTTP timeouts, TLS, scope) and its connection cap."""
    raise_descriptor_limit()
    budget = ConnectionBudget(settings.max_connections or default_connection_limit())
    if settings.ca_file and not Path(settings.ca_file).is_file():
        raise ConfigError(f"--ca-file {settings.ca_file}: no such file")
    http_options = HttpOptions(
        connect_timeout=settings.connect_timeout,
        total_timeout=settings.request_timeout,
        read_timeout=min(HttpOptions().read_timeout, settings.request_timeout),
        ca_file=settings.ca_file,
        scope=scope,
        connections=budget,
    )
    tls = TlsContexts()
    if settings.ca_file:
        tls.for_options(http_options)  # a CA file that cannot load stops here, not per request
    context = UserContext(
        recorder=recorder,
        host=host,
        http_options=http_options,
        tls=tls,
        tags=frozenset(settings.tags) or None,
        exclude_tags=frozenset(settings.exclude_tags) or None,
        random=random.Random(settings.seed),  # noqa: S311 - load pacing, not cryptography
        logger=logging.getLogger("phalanx.user"),
    )
    return context, budget


def default_memory_limit() -> int | None:
    """75% of physical memory: a generator must not push its machine into swap."""
    total = physical_memory_bytes()
    return total * 3 // 4 if total else None


def build_scope(settings: Settings, classes: tuple[type[User], ...]) -> ScopeGuard:
    """The run's target scope guard; refuses (before any load) a class host outside it.

    Rules come from --allow-target; without any, the run may reach only its
    --host, or, without --host, the hosts its classes declare (already checked
    by ``validate_user_classes``: http(s), no credentials).
    """
    hosts = {cls.__name__: cls.effective_host(settings.host) for cls in classes}
    declared = [host for host in hosts.values() if host]
    rules = list(settings.allow_targets)
    if not rules and not settings.host:
        rules = sorted(set(declared))
    try:
        guard = ScopeGuard.from_rules(rules, default_host_url=settings.host)
    except ValueError as exc:
        raise ConfigError(f"target scope: {exc}") from None
    for name, host in hosts.items():
        if not host:
            continue
        decision = guard.check_url(host)
        if not decision.allowed:
            raise ConfigError(
                f"the host of {name}, {host}, is outside the allowed targets "
                f"({decision.reason}); allow it with --allow-target"
            )
    return guard


def check_outputs(settings: Settings) -> None:
    _check_output_dir("--json", settings.json)
    _check_output_dir("--csv", settings.csv)


def _check_output_dir(flag: str, path: str | None) -> None:
    """Refuse before the run, not after it, an output that cannot be written."""
    if not path:
        return
    if Path(path).is_dir():
        raise ConfigError(f"{flag} {path}: is a directory; give a file name")
    directory = Path(path).parent
    if not directory.is_dir():
        raise ConfigError(f"{flag} {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise ConfigError(f"{flag} {path}: directory {directory} is not writable")


def run_until_done(prepared: Prepared, settings: Settings, view: TerminalView,
                   redactor: Redactor) -> RunResult:
    """Run on uvloop with signal handling; the live view is shown meanwhile."""
    import uvloop

    from phalanx.cli.web import audit_writer, operator_name, web_ui

    async def main() -> RunResult:
        runner = LocalRunner(
            prepared.context, prepared.recorder, Aggregator(start=0.0), on_update=view.update
        )
        install_signals(runner)
        shape = prepared.plan.shape
        load = (
            f"load shape {type(shape).__name__}" if shape is not None
            else f"{settings.users} users at {settings.spawn_rate:g}/s"
        )
        log.info(
            "starting %s against %s (script %s, sha256 %s)",
            load, settings.host or "the classes' hosts",
            prepared.script.path, prepared.script.sha256[:12],
        )
        info = run_info(settings, prepared.script, redactor)
        async with audit_writer(settings, redactor) as audit:
            if audit is not None:
                audit.record(operator_name(), "cli", "run_start", {**info, "mode": "local"})
            async with web_ui(settings, runner, run_info=info, audit=audit):
                result = await runner.run(prepared.plan)
            if audit is not None:
                audit.record(operator_name(), "cli", "run_stop", stop_details(result))
            return result

    with view:
        return uvloop.run(main())


class Stoppable(Protocol):
    """What signal handling needs of a runner (local or the cluster's master)."""

    @property
    def state(self) -> RunState: ...
    @property
    def stop_requested(self) -> bool: ...
    def request_stop(self) -> None: ...
    def abort(self) -> None: ...


def run_info(settings: Settings, script: LoadedScript,
             redactor: Redactor) -> dict[str, object]:
    """What the web UI and the audit log show about the run (secrets masked)."""
    return {"script": script.path.name, "script_sha256": script.sha256,
            "host": redactor.redact_url(settings.host) if settings.host else None,
            "users": settings.users, "spawn_rate": settings.spawn_rate,
            "run_time_s": settings.run_time}


def stop_details(result: RunResult) -> dict[str, object]:
    total = result.snapshot.total
    return {"reason": result.reason.value, "requests": total.num_requests,
            "failures": total.num_failures}


def install_signals(runner: Stoppable) -> None:
    """First SIGINT/SIGTERM: graceful stop; a second one, or one while stopping: stop now."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if runner.state in (RunState.READY, RunState.SPAWNING, RunState.RUNNING) \
                and not runner.stop_requested:
            log.warning("%s: stopping gracefully (press Ctrl-C again to stop at once)", name)
            runner.request_stop()
        else:
            log.warning("%s: stopping now", name)
            runner.abort()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)


def write_outputs(settings: Settings, script: LoadedScript, result: RunResult,
                  verdict: Verdict, console: Console, redactor: Redactor) -> bool:
    """Write --json/--csv; False (after a clear message) when one could not be written."""
    from phalanx.cli.main import version

    report = RunReport(
        snapshot=result.snapshot,
        script=str(script.path),
        script_sha256=script.sha256,
        host=redactor.redact_url(settings.host) if settings.host else None,
        users=settings.users,
        spawn_rate=settings.spawn_rate,
        run_time=settings.run_time,
        started_at=result.started_at,
        ended_at=result.ended_at,
        stop_reason=result.reason.value,
        passed=verdict.passed,
        exit_code=verdict.exit_code,
        reasons=verdict.reasons,
        health=result.health,
        shape=script.shape_class.__name__ if script.shape_class is not None else None,
        workers=result.workers,
    )
    try:
        if settings.json:
            write_json_summary(settings.json, report, version())
            console.print(f"summary written to {settings.json}", highlight=False, markup=False)
        if settings.csv:
            paths = write_csv_files(settings.csv, report)
            console.print("CSV written: " + ", ".join(str(p) for p in paths),
                          highlight=False, markup=False)
    except OSError as exc:
        print(f"phalanx: error: cannot write results: {exc}", file=sys.stderr)
        return False
    return True
