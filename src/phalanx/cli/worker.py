"""``phalanx worker``: join a master and run the share of the load it assigns.

The worker loads the script itself (the master checks the sha256 matches),
authenticates with its own CURVE key and pins the master's public key. Its
safety settings are its own: the target scope (``--allow-target``, or by
default only the host the master names), resource limits, TLS trust,
secrets. The master sends counts, a rate, a host and a stop timeout, nothing
else.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from phalanx import secrets
from phalanx.cli.options import add_option_arguments, cli_values
from phalanx.cli.run import (
    build_context,
    build_scope,
    configure_logging,
    default_memory_limit,
    load_classes,
    secret_store,
)
from phalanx.cluster.worker_driver import RunFactory, WorkerConfig, WorkerDriver, WorkerExit
from phalanx.config.settings import Settings, build_settings
from phalanx.core.errors import ConfigError, PhalanxError
from phalanx.engine.runner import DeltaCallback, LocalRunner, RunPlan
from phalanx.engine.verdict import EXIT_USAGE
from phalanx.protocol import Start
from phalanx.scripting.user import User, validate_user_classes
from phalanx.security.redaction import Redactor
from phalanx.security.scope import ScopeGuard
from phalanx.stats import Aggregator, Recorder
from phalanx.transport import (
    KeyDir,
    KeyFileError,
    PlaintextDev,
    TransportError,
    WorkerSecurity,
    WorkerSocket,
    check_plaintext_endpoint,
    check_private_ipc_directory,
)

log = logging.getLogger("phalanx")

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("master link", ("master", "keys", "worker_name", "master_timeout", "report_interval",
                     "insecure_plaintext")),
    ("script and target", ("file", "allow_targets", "tags", "exclude_tags")),
    ("safety limits, secrets and timeouts",
     ("max_users", "max_memory", "max_connections", "secrets_dir", "connect_timeout",
      "request_timeout", "ca_file", "seed", "log_level")),
)

EPILOG = """\
examples:
  phalanx worker -f script.py --master 10.0.0.5:5557 --keys keys/ --name w2
  phalanx worker -f script.py --master 127.0.0.1:5557 --insecure-plaintext   # dev only

the worker needs keys/master.key.pub (to pin the master) and keys/workers/NAME.key
(its identity, from `phalanx keys add-worker`). It stops all load when it has not
heard its master for --master-timeout, and rejoins when the master is back.
exit codes: 0 stopped by a signal; 2 refused by the master, bad option or script.
"""


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "worker", help="join a master and run the load it assigns",
        description="Join a phalanx master and run the share of the load it assigns.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_option_arguments(parser, SECTIONS)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    settings, warnings = build_settings(cli=cli_values(args), environ=os.environ,
                                        config_file=args.config)
    redactor = Redactor()
    console = Console(stderr=True, highlight=False)
    configure_logging(settings, console, redactor, plain=not console.is_terminal)
    for warning in warnings:
        log.warning("%s", warning)
    with secrets.using(secret_store(settings, redactor)):
        try:
            code = serve(settings, redactor)
        except PhalanxError as exc:
            exc.args = (redactor.redact_text(str(exc)),)
            raise
    return code


def link_security(settings: Settings, endpoint: str) -> WorkerSecurity:
    """CURVE from the keys directory, or the development mode when explicitly asked."""
    if settings.insecure_plaintext:
        try:
            check_plaintext_endpoint(endpoint)
        except TransportError as exc:
            raise ConfigError(str(exc)) from None
        try:
            check_private_ipc_directory(endpoint)
            private = endpoint.startswith("ipc://")
        except TransportError:
            private = False
        if private:  # a socket file in a 0700 directory: only this user can reach it
            log.info("plaintext link on the private socket %s", endpoint)
        else:
            log.warning("INSECURE: --insecure-plaintext: the link to the master is neither "
                        "encrypted nor authenticated (development only)")
        return PlaintextDev()
    if not settings.keys:
        raise ConfigError("a worker needs --keys DIR (master.key.pub and workers/NAME.key; "
                          "see `phalanx keys init`)")
    try:
        return KeyDir(Path(settings.keys)).curve_client(settings.worker_name)
    except (KeyFileError, OSError, ValueError) as exc:
        raise ConfigError(f"--keys {settings.keys}: {exc}") from None


def serve(settings: Settings, redactor: Redactor) -> int:
    if not settings.master:
        raise ConfigError("no master given: use --master HOST:PORT")
    script, classes = load_classes(settings, host_known=False)
    security = link_security(settings, settings.master)
    make_run = run_factory(settings, classes, redactor)
    config = WorkerConfig(
        name=settings.worker_name, script_sha256=script.sha256, phalanx_version=_version(),
        cpu_count=os.cpu_count() or 1, master_timeout=settings.master_timeout,
        report_interval=settings.report_interval, max_users=settings.max_users,
    )
    log.info("worker %s: script %s (sha256 %s), master %s", settings.worker_name, script.path,
             script.sha256[:12], settings.master)
    result, reason = run_worker(settings.master, security, config, make_run)
    if result is WorkerExit.SHUTDOWN:
        return 0
    print(f"phalanx: error: {reason}", file=sys.stderr)
    return EXIT_USAGE


def run_factory(settings: Settings, classes: tuple[type[User], ...],
                redactor: Redactor) -> RunFactory:
    """How this worker turns a master's ``Start`` into a runner and plan (checked first)."""
    by_name = {cls.__name__: cls for cls in classes}
    memory_limit = settings.max_memory or default_memory_limit()

    def make_run(start: Start, on_delta: DeltaCallback) -> tuple[LocalRunner, RunPlan]:
        unknown = sorted(name for name, count in start.users_per_class.items()
                         if count > 0 and name not in by_name)
        if unknown:
            raise ConfigError(f"the master runs user classes this worker does not have: "
                              f"{', '.join(unknown)} (check --tags/--exclude-tags)")
        problems = validate_user_classes(classes, start.host or None)
        if problems:
            raise ConfigError("; ".join(problems))
        scope = worker_scope(settings, start.host, classes)
        recorder = Recorder(0.0, redact=redactor.redact_text)
        context, budget = build_context(settings, start.host or None, scope, recorder)
        runner = LocalRunner(context, recorder, Aggregator(start=0.0), on_delta=on_delta)
        counts = {name: count for name, count in start.users_per_class.items()
                  if name in by_name}
        plan = RunPlan(
            user_classes=classes, users=0, spawn_rate=start.spawn_rate,
            stop_timeout=start.stop_timeout, stats_interval=settings.report_interval,
            max_users=settings.max_users, max_memory=memory_limit, connections=budget,
            class_counts=counts,
        )
        return runner, plan

    return make_run


def worker_scope(settings: Settings, host: str, classes: tuple[type[User], ...]) -> ScopeGuard:
    """This worker's scope: its --allow-target rules, or only the host the master names
    (the classes' own hosts when the master names none)."""
    return build_scope(settings.with_overrides(host=host or None), classes)


def run_worker(endpoint: str, security: WorkerSecurity, config: WorkerConfig,
               make_run: RunFactory) -> tuple[WorkerExit, str]:
    import uvloop

    async def main() -> tuple[WorkerExit, str]:
        try:
            link = WorkerSocket(endpoint, security)
        except TransportError as exc:
            raise ConfigError(str(exc)) from None
        async with link:
            driver = WorkerDriver(link, config, make_run)
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, _on_signal, driver, signum)
            result = await driver.serve()
            return result, driver.exit_reason

    return uvloop.run(main())


def _on_signal(driver: WorkerDriver, signum: int) -> None:
    log.info("%s: stopping this worker", signal.Signals(signum).name)
    driver.request_shutdown()


def _version() -> str:
    from phalanx.cli.main import version

    return version()
