"""``phalanx run --web`` without ``--autostart``: tests started, changed and stopped from the UI.

The process loads the script once and serves the UI until Ctrl-C. Each
start from the UI builds a fresh run (new users, new statistics) from the
command-line settings with the UI's users, spawn rate, run time and host.

A host from the UI goes through the same checks as ``--host`` (http/https,
no credentials) and through the run's target scope guard: by default only
the command line's ``--host`` (or the classes' own hosts) may be targeted,
``--allow-target`` widens it. A refused host is a 400 naming the rule, and
nothing is sent.

Ctrl-C stops a running test gracefully and then ends the process (a second
Ctrl-C stops at once); the summary, outputs and exit code are those of the
last test that ran (exit 0 with a note when none did).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from phalanx.cli.run import build_run, build_scope, stop_details
from phalanx.config.settings import OPTIONS_BY_NAME, Settings
from phalanx.core.errors import PhalanxError
from phalanx.engine.runner import LocalRunner, RunResult, RunState, RunStatus, UpdateCallback
from phalanx.scripting.loader import LoadedScript
from phalanx.scripting.user import User, validate_user_classes
from phalanx.security.redaction import Redactor
from phalanx.security.scope import ScopeGuard
from phalanx.stats import Aggregator, StatsSnapshot
from phalanx.web.app import RunConflict, RunRequestError, StartRequest

log = logging.getLogger("phalanx")

Recorder = Callable[[str, str, str, dict[str, Any]], None]


class LocalSession:
    """A UI-driven sequence of local runs of one script (see the module docstring)."""

    def __init__(self, settings: Settings, script: LoadedScript, classes: tuple[type[User], ...],
                 redactor: Redactor, *,
                 on_update: UpdateCallback | None = None,
                 audit: Recorder | None = None, info: dict[str, object] | None = None) -> None:
        self._settings = settings
        self._script = script
        self._classes = classes
        self._redactor = redactor
        self._tg: asyncio.TaskGroup | None = None
        self._on_update = on_update
        self._audit = audit
        self.info: dict[str, object] = info if info is not None else {}
        # The scope of the command line: a host typed in the UI must be inside it.
        self._scope = build_scope(settings, classes)
        self._runner: LocalRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self.last_result: RunResult | None = None
        self._history: list[dict[str, object]] = []
        self._closing = asyncio.Event()

    # --- what the web app calls (phalanx.web.app.SessionControl) --------------------

    def status(self) -> RunStatus:
        if self._runner is not None:
            return self._runner.status()
        return RunStatus(state=RunState.READY, users=0, target_users=0,
                         spawn_rate=self._settings.spawn_rate, class_counts=(), elapsed=0.0,
                         run_time=None)

    @property
    def latest(self) -> StatsSnapshot | None:
        return self._runner.latest if self._runner is not None else None

    def start(self, request: StartRequest) -> None:
        if self.running:
            raise RunConflict("a test is running: stop it before starting another")
        if self._closing.is_set() or self._tg is None:
            raise RunConflict("phalanx is not accepting tests now (starting or shutting down)")
        settings = self._settings_for(request)
        try:
            prepared = build_run(settings, self._script, self._classes, self._redactor,
                                 scope=self._scope)
        except PhalanxError as exc:
            raise RunRequestError(self._redactor.redact_text(str(exc))) from None
        runner = LocalRunner(prepared.context, prepared.recorder, Aggregator(start=0.0),
                             on_update=self._on_update)
        self._runner = runner
        self.info.update({"host": self._redactor.redact_url(settings.host)
                          if settings.host else None, "users": settings.users,
                          "spawn_rate": settings.spawn_rate, "run_time_s": settings.run_time})
        log.info("starting %d users at %g/s against %s (from the web UI)", settings.users,
                 settings.spawn_rate, settings.host or "the classes' hosts")
        self._task = self._tg.create_task(self._run(runner, prepared.plan),
                                          name="phalanx-ui-run")

    def change_target(self, users: int, spawn_rate: float | None = None) -> None:
        runner = self._active()
        if users > self._settings.max_users:
            raise RunRequestError(f"users: at most --max-users {self._settings.max_users}")
        if spawn_rate is not None and spawn_rate > self._settings.max_spawn_rate:
            raise RunRequestError(
                f"spawn_rate: at most --max-spawn-rate {self._settings.max_spawn_rate:g}")
        runner.change_target(users, spawn_rate)

    def request_stop(self) -> None:
        self._active().request_stop()

    def reset_stats(self) -> None:
        if self._runner is None:
            raise RunConflict("no test has run yet")
        self._runner.reset_stats()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # --- the process's life ------------------------------------------------------------

    def attach(self, tg: asyncio.TaskGroup) -> None:
        """The task group that will own the runs (tests can start from now on)."""
        self._tg = tg

    def shutdown(self, *, now: bool) -> None:
        """Ctrl-C: stop the running test (gracefully, or at once) and end the session."""
        self._closing.set()
        if self._runner is not None and self.running:
            if now:
                self._runner.abort()
            else:
                self._runner.request_stop()

    async def wait_closed(self) -> RunResult | None:
        """Return once shut down and the last test ended: the last test's result."""
        await self._closing.wait()
        task = self._task
        if task is not None:
            await asyncio.wait({task})
        return self.last_result

    def runs(self) -> list[dict[str, object]]:
        """The tests of this session, oldest first; a running one last (bounded to 100)."""
        runs = list(self._history)
        if self.running and self._runner is not None:
            status = self._runner.status()
            runs.append({"state": status.state.value, "users": status.users,
                         "host": self.info.get("host"), "elapsed_s": round(status.elapsed, 3)})
        return runs

    async def _run(self, runner: LocalRunner, plan: Any) -> None:
        result = await runner.run(plan)
        self.last_result = result
        remember_run(self._history, result, self.info)
        log.info("test ended (%s): %d requests", result.reason.value,
                 result.snapshot.total.num_requests)
        if self._audit is not None:
            self._audit("web-ui", "local", "run_stop", stop_details(result))

    def _active(self) -> LocalRunner:
        if self._runner is None or not self.running:
            raise RunConflict("no test is running")
        return self._runner

    def _settings_for(self, request: StartRequest) -> Settings:
        host = checked_start(request, self._settings, self._classes, self._scope,
                             self._redactor)
        return self._settings.with_overrides(users=request.users, spawn_rate=request.spawn_rate,
                                             run_time=request.run_time, host=host)


MAX_REMEMBERED_RUNS = 100


def remember_run(history: list[dict[str, object]], result: RunResult,
                 info: dict[str, object]) -> None:
    """Append a finished test to a session's history (``/api/v1/runs``), keeping the last
    :data:`MAX_REMEMBERED_RUNS`."""
    total = result.snapshot.total
    history.append({
        "state": "stopped", "reason": result.reason.value, "host": info.get("host"),
        "users": info.get("users"), "started_at": result.started_at,
        "ended_at": result.ended_at, "requests": total.num_requests,
        "failures": total.num_failures, "rps": round(total.rps, 3),
        "workers": len(result.workers),
    })
    del history[:-MAX_REMEMBERED_RUNS]


def checked_start(request: StartRequest, settings: Settings, classes: tuple[type[User], ...],
                  scope: ScopeGuard, redactor: Redactor) -> str | None:
    """The host a UI start may run against (its own, or ``--host``), once every check passed.

    Checks: users and spawn rate within ``--max-users`` / ``--max-spawn-rate``;
    the host as ``--host`` would be (http/https, no credentials); the classes
    runnable with it; and the host inside the command line's target ``scope``.
    Raises :class:`RunRequestError` (a 400 for the UI) naming what is wrong.
    """
    if request.users > settings.max_users:
        raise RunRequestError(f"users: at most --max-users {settings.max_users}")
    if request.spawn_rate > settings.max_spawn_rate:
        raise RunRequestError(f"spawn_rate: at most --max-spawn-rate {settings.max_spawn_rate:g}")
    host = settings.host
    if request.host is not None:
        try:
            host = OPTIONS_BY_NAME["host"].parse(request.host)
        except ValueError as exc:
            raise RunRequestError(f"host: {exc}") from None
    problems = validate_user_classes(classes, host)
    if problems:
        raise RunRequestError("; ".join(problems))
    if host:
        decision = scope.check_url(host)
        if not decision.allowed:
            raise RunRequestError(
                f"host {redactor.redact_url(host)} is outside the allowed targets "
                f"({decision.reason}); start phalanx with --allow-target to widen them")
    return host


class Shuttable(Protocol):
    def shutdown(self, *, now: bool) -> None: ...


class SessionSignals:
    """What SIGINT/SIGTERM act on in a UI-driven session, local or master
    (see ``install_signals``): the first stops a running test gracefully and
    ends the session, a second stops at once."""

    def __init__(self, session: Shuttable) -> None:
        self._session = session
        self._requests = 0

    @property
    def state(self) -> RunState:
        return RunState.RUNNING

    @property
    def stop_requested(self) -> bool:
        return self._requests > 0

    def request_stop(self) -> None:
        self._requests += 1
        self._session.shutdown(now=False)

    def abort(self) -> None:
        self._requests += 1
        self._session.shutdown(now=True)


def run_web_session(settings: Settings, view: Any, redactor: Redactor
                    ) -> tuple[LoadedScript, RunResult | None]:
    """Serve the UI and run what it starts until Ctrl-C; the last test's result."""
    import uvloop

    from phalanx.cli.run import check_outputs, install_signals, load_classes, run_info
    from phalanx.cli.web import audit_writer, web_ui

    script, classes = load_classes(settings, host_known=settings.host is not None)
    check_outputs(settings)

    async def main() -> RunResult | None:
        async with audit_writer(settings, redactor) as audit:
            session = LocalSession(settings, script, classes, redactor,
                                   on_update=view.update,
                                   audit=audit.record if audit is not None else None,
                                   info=run_info(settings, script, redactor))
            # The server starts first: a bad --web-bind or TLS file is a clear error.
            async with web_ui(settings, session, run_info=session.info, audit=audit), \
                    asyncio.TaskGroup() as tg:
                session.attach(tg)
                install_signals(SessionSignals(session))
                log.info("start a test from the web UI; Ctrl-C ends phalanx")
                return await session.wait_closed()

    with view:
        return script, uvloop.run(main())
