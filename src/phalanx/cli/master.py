"""``phalanx master`` and ``phalanx run --processes``: one master, many workers.

``phalanx master`` binds a CURVE-secured ROUTER (``--keys``; ``--insecure-plaintext``
only on ipc:// or 127.x.x.x), waits for ``--expect-workers`` workers, spreads
the load over them, merges their stats and ends like ``phalanx run``: the
same summary, outputs, verdict and exit codes.

``phalanx run --processes N`` is the same master in this process with N local
worker processes on a private ``ipc://`` socket (a fresh 0700 directory,
removed afterwards): nobody else can reach the link, so it needs no keys.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

from phalanx.cli.master_session import MasterSession
from phalanx.cli.options import add_option_arguments, cli_values
from phalanx.cli.run import (
    build_scope,
    check_outputs,
    finish,
    install_signals,
    load_classes,
    run_info,
    secret_store,
    set_up_output,
    stop_details,
)
from phalanx.cli.session import SessionSignals
from phalanx.cli.view import TerminalView
from phalanx.cluster.master_driver import ClusterError, ClusterPlan, MasterDriver
from phalanx.config.settings import Settings, build_settings
from phalanx.core.errors import ConfigError, PhalanxError
from phalanx.engine.dispatch import ClassSpec
from phalanx.engine.runner import RunResult
from phalanx.scripting.loader import LoadedScript
from phalanx.scripting.user import User
from phalanx.security.redaction import Redactor
from phalanx.transport import (
    KeyDir,
    KeyFileError,
    MasterSecurity,
    MasterSocket,
    PlaintextDev,
    TransportError,
    check_plaintext_endpoint,
)
from phalanx.web.accounts import ADMIN_PASSWORD_ENV

log = logging.getLogger("phalanx")

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("script and target",
     ("file", "host", "allow_targets", "user_classes", "tags", "exclude_tags")),
    ("load", ("users", "spawn_rate", "run_time", "stop_timeout")),
    ("workers", ("bind", "keys", "expect_workers", "expect_workers_timeout",
                 "heartbeat_timeout", "max_workers", "max_users_per_worker",
                 "max_worker_message_rate", "insecure_plaintext", "headless")),
    ("output", ("live", "stats_interval", "summary_interval", "json", "csv", "log_level")),
    ("pass/fail", ("max_fail_ratio",)),
    ("safety limits", ("max_users", "max_spawn_rate")),
    ("web UI", ("web", "autostart", "web_bind", "tls_cert", "tls_key", "web_trusted_proxies",
                "web_public_url", "user_store", "admin_password_file", "audit_log")),
)

EPILOG = """\
examples:
  phalanx keys init --dir keys/
  phalanx master -f script.py --host https://target.test --keys keys/ --bind 0.0.0.0:5557 \\
                 -u 1000 -r 100 -t 10m --expect-workers 4
  phalanx worker -f script.py --master 10.0.0.5:5557 --keys keys/ --name w1

workers authenticate with their CURVE keys (keys/authorized_workers lists them; remove a
line to revoke one) and must load the same script (its sha256 is checked). Exit codes
as `phalanx run`: 0 passed, 1 failed, 2 bad option/script or workers missing, 3 bug.
"""

LOCAL_WORKER_STOP_TIMEOUT: Final = 15.0
_TIMESTAMP: Final = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
MAX_RELAYED_LINE: Final = 64 * 1024


def add_parser(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "master", help="run a load test over many workers (this process coordinates)",
        description="Coordinate a load test run by phalanx workers on other processes or "
                    "hosts, and report it like `phalanx run`.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_option_arguments(parser, SECTIONS)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    settings, warnings = build_settings(cli=cli_values(args), environ=os.environ,
                                        config_file=args.config)
    console, view, redactor = set_up_output(settings, warnings)
    try:
        with _secrets(settings, redactor):
            script, classes = prepare_master(settings)
            security = master_security(settings)
            result = run_master(settings, script, classes, security, settings.bind, view,
                                redactor)
    except PhalanxError as exc:
        exc.args = (redactor.redact_text(str(exc)),)
        raise
    if result is None:
        console.print("no test was run", highlight=False, markup=False)
        return 0
    return finish(settings, script, result, console, view, redactor)


def _secrets(settings: Settings, redactor: Redactor) -> contextlib.AbstractContextManager[Any]:
    from phalanx import secrets

    return secrets.using(secret_store(settings, redactor))


def prepare_master(settings: Settings) -> tuple[LoadedScript, tuple[type[User], ...]]:
    """The script and classes, with everything checkable before a worker is waited for."""
    script, classes = load_classes(settings)
    build_scope(settings, classes)  # a --host outside --allow-target fails here, not on workers
    check_outputs(settings)
    return script, classes


def master_security(settings: Settings) -> MasterSecurity:
    """CURVE from ``--keys``, or the loud development mode on ipc:// or loopback only."""
    if settings.insecure_plaintext:
        try:
            check_plaintext_endpoint(settings.bind)
        except TransportError as exc:
            raise ConfigError(str(exc)) from None
        log.warning("INSECURE: --insecure-plaintext: workers are neither authenticated nor "
                    "encrypted; anyone on this host can join (development only)")
        return PlaintextDev()
    if not settings.keys:
        raise ConfigError("the master needs --keys DIR (see `phalanx keys init`); for local "
                          "development on ipc:// or 127.0.0.1 only: --insecure-plaintext")
    try:
        return KeyDir(Path(settings.keys)).curve_server()
    except (KeyFileError, OSError, ValueError) as exc:
        raise ConfigError(f"--keys {settings.keys}: {exc}") from None


def cluster_plan(settings: Settings, script: LoadedScript,
                 classes: tuple[type[User], ...], expect_workers: int) -> ClusterPlan:
    return ClusterPlan(
        classes=tuple(ClassSpec(cls.__name__, int(cls.weight), int(cls.fixed_count))
                      for cls in classes),
        host=settings.host or "",
        users=settings.users,
        spawn_rate=settings.spawn_rate,
        run_time=settings.run_time,
        stop_timeout=settings.stop_timeout,
        shape=script.shape_class() if script.shape_class is not None else None,
        expect_workers=expect_workers,
        expect_workers_timeout=settings.expect_workers_timeout,
        heartbeat_timeout=settings.heartbeat_timeout,
        stats_interval=settings.stats_interval,
        max_workers=max(settings.max_workers, expect_workers),
        max_users=settings.max_users,
        max_spawn_rate=settings.max_spawn_rate,
        max_users_per_worker=settings.max_users_per_worker,
        message_rate=settings.max_worker_message_rate,
    )


def run_master(settings: Settings, script: LoadedScript, classes: tuple[type[User], ...],
               security: MasterSecurity, endpoint: str, view: TerminalView,
               redactor: Redactor, local_workers: LocalWorkers | None = None
               ) -> RunResult | None:
    """Run the master on uvloop (with the live view) until the run ends.

    ``None``: the UI-driven master ended before any test ran."""
    import uvloop

    from phalanx.cli.main import version
    from phalanx.cli.web import AuditWriter, audit_writer, operator_name, web_ui

    expect = local_workers.count if local_workers is not None else settings.expect_workers
    plan = cluster_plan(settings, script, classes, expect)

    async def main() -> RunResult | None:
        try:
            socket = MasterSocket(endpoint, security)
        except TransportError as exc:
            raise ConfigError(str(exc)) from None
        try:
            await socket.__aenter__()
        except TransportError as exc:
            raise ConfigError(str(exc)) from None
        try:
            async with audit_writer(settings, redactor) as audit:
                return await drive(socket, audit)
        finally:
            await socket.aclose()

    async def drive(socket: MasterSocket, audit: AuditWriter | None) -> RunResult | None:
        def on_event(action: str, details: dict[str, object]) -> None:
            if audit is not None:
                audit.record(f"worker:{details.get('fingerprint', '?')}", "master", action,
                             details)

        socket.on_refused = lambda key, address: on_event(
            "worker_refused", {"fingerprint": key, "address": address,
                               "reason": "key not on the allow-list"})
        driver = MasterDriver(socket, plan, script_sha256=script.sha256,
                              phalanx_version=version(), on_update=view.update,
                              on_event=on_event)
        if settings.web and not settings.autostart:
            return await ui_driven(driver, audit, socket.endpoint)
        install_signals(driver)
        log.info("master for %s (sha256 %s) on %s: %d users at %g/s against %s",
                 script.path, script.sha256[:12], socket.endpoint, settings.users,
                 settings.spawn_rate, settings.host or "the classes' hosts")
        info = run_info(settings, script, redactor)
        mode = "master" if local_workers is None else f"processes:{local_workers.count}"
        if audit is not None:
            audit.record(operator_name(), "cli", "run_start", {**info, "mode": mode})
        web = web_ui(settings, driver, workers=driver.worker_summaries, run_info=info,
                     audit=audit)
        if local_workers is None:
            async with web:
                result = await driver.run()
        else:
            async with local_workers.running(driver), web:
                result = await driver.run()
            if local_workers.failure:
                raise ClusterError(local_workers.failure)
        if audit is not None:
            audit.record(operator_name(), "cli", "run_stop", stop_details(result))
        return result

    async def ui_driven(driver: MasterDriver, audit: AuditWriter | None,
                        bound: str) -> RunResult | None:
        session = MasterSession(settings, classes, plan, driver, redactor,
                                audit=audit.record if audit is not None else None,
                                info=run_info(settings, script, redactor))
        install_signals(SessionSignals(session))
        log.info("master on %s: start tests from the web UI; Ctrl-C ends it", bound)
        web = web_ui(settings, session, workers=session.workers, run_info=session.info,
                     audit=audit)
        workers = local_workers.running(driver) if local_workers is not None \
            else contextlib.nullcontext()
        async with workers, web:
            result = await session.serve()
        if local_workers is not None and local_workers.failure:
            raise ClusterError(local_workers.failure)
        return result

    with view:
        return uvloop.run(main())


def run_local_cluster(settings: Settings, view: TerminalView,
                      redactor: Redactor) -> tuple[LoadedScript, RunResult | None]:
    """``phalanx run --processes N``: this process is the master of N local workers."""
    script, classes = prepare_master(settings)
    count = settings.processes or 1
    directory = Path(tempfile.mkdtemp(prefix="phalanx-"))  # 0700: private to this user
    try:
        endpoint = f"ipc://{directory / 'master.sock'}"
        workers = LocalWorkers(count, worker_arguments(settings, endpoint))
        result = run_master(settings, script, classes, PlaintextDev(), endpoint, view,
                            redactor, local_workers=workers)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return script, result


def worker_arguments(settings: Settings, endpoint: str) -> list[str]:
    """The ``phalanx worker`` flags of a local worker: this run's own safety settings."""
    args = ["-f", str(settings.file), "--master", endpoint, "--insecure-plaintext",
            "--master-timeout", "10", "--log-level", "WARNING",
            "--report-interval", f"{min(max(settings.stats_interval, 0.2), 60.0)}",
            "--connect-timeout", f"{settings.connect_timeout}",
            "--request-timeout", f"{settings.request_timeout}",
            "--max-users", str(settings.max_users)]
    for rule in settings.allow_targets:
        args += ["--allow-target", rule]
    if settings.tags:
        args += ["--tags", ",".join(settings.tags)]
    if settings.exclude_tags:
        args += ["--exclude-tags", ",".join(settings.exclude_tags)]
    for flag, value in (("--ca-file", settings.ca_file), ("--secrets-dir", settings.secrets_dir),
                        ("--max-connections", settings.max_connections),
                        ("--max-memory", settings.max_memory)):
        if value is not None:  # --max-memory: a bare number is MiB
            args += [flag, str(value) if flag != "--max-memory" else str(int(value) >> 20)]
    return args


def child_environment() -> dict[str, str]:
    """This process's environment minus what a worker must not see (the web UI's
    first admin password); PHALANX_SECRET_* stay: the script's workers need them."""
    return {key: value for key, value in os.environ.items() if key != ADMIN_PASSWORD_ENV}


class LocalWorkers:
    """N ``phalanx worker`` child processes: started, their stderr relayed, stopped.

    Each child runs in its own session, so a Ctrl-C reaches the master only
    (which stops the workers through the protocol). A child that exits while
    the master waits for workers stops the run (``failure`` says why); on the
    way out every child gets SIGTERM, then SIGKILL after
    ``LOCAL_WORKER_STOP_TIMEOUT`` seconds.
    """

    def __init__(self, count: int, arguments: list[str]) -> None:
        self.count = count
        self._arguments = arguments
        self._processes: list[asyncio.subprocess.Process] = []
        self._stopping = False
        self.failure: str | None = None

    @contextlib.asynccontextmanager
    async def running(self, driver: MasterDriver) -> AsyncIterator[None]:
        """The children live for the ``async with`` block; their watchers end with them."""
        async with asyncio.TaskGroup() as tg:
            try:
                await self.start(tg, driver)
                yield
            finally:
                await self.stop()

    async def start(self, tg: asyncio.TaskGroup, driver: MasterDriver) -> None:
        for index in range(1, self.count + 1):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "phalanx", "worker", *self._arguments,
                "--name", f"local-{index}", "--seed", str(index), env=child_environment(),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, start_new_session=True,
            )
            self._processes.append(process)
            tg.create_task(self._watch(index, process, driver), name=f"local-worker-{index}")

    async def _watch(self, index: int, process: asyncio.subprocess.Process,
                     driver: MasterDriver) -> None:
        stream = process.stderr
        if stream is not None:
            while True:
                try:
                    line = await stream.readuntil(b"\n")
                except asyncio.IncompleteReadError as exc:
                    line = exc.partial
                except asyncio.LimitOverrunError as exc:
                    line = await stream.read(min(exc.consumed, MAX_RELAYED_LINE))
                if not line:
                    break
                text = _TIMESTAMP.sub("", line.decode("utf-8", "replace").rstrip())
                if text:
                    log.warning("[local-%d] %s", index, text[:2000])
        code = await process.wait()
        if self._stopping:  # we asked it to stop
            if code not in (0, -signal.SIGTERM):
                log.error("local worker %d exited with code %d", index, code)
            return
        if driver.state.value == "ready" and self.failure is None:
            self.failure = (f"local worker {index} exited with code {code} before the run "
                            "started (its messages are above)")
            driver.request_stop()
        elif code not in (0, -signal.SIGTERM):
            log.error("local worker %d exited with code %d", index, code)

    async def stop(self) -> None:
        self._stopping = True
        for process in self._processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        for process in self._processes:
            try:
                await asyncio.wait_for(process.wait(), timeout=LOCAL_WORKER_STOP_TIMEOUT)
            except TimeoutError:
                log.warning("local worker (pid %d) did not stop in time: killing it",
                            process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
