"""``phalanx master --web`` (and ``run --processes N --web``) without ``--autostart``.

The master holds its workers between tests (:meth:`MasterDriver.hold`:
heartbeats, joins, missing workers, no load) and runs each test the web UI
starts as a new :class:`MasterDriver` that inherits them
(:meth:`MasterDriver.following`). A UI host is checked like ``--host`` and
against the command line's target scope, exactly as for a local session;
users and spawn rate are bounded by ``--max-users`` / ``--max-spawn-rate``.
Ctrl-C stops a running test gracefully and ends the master.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from phalanx.cli.run import build_scope, stop_details
from phalanx.cli.session import checked_start, remember_run
from phalanx.cluster.master_driver import ClusterError, ClusterPlan, MasterDriver
from phalanx.config.settings import Settings
from phalanx.core.workers import WorkerSummary
from phalanx.engine.runner import RunResult, RunStatus
from phalanx.scripting.user import User
from phalanx.security.redaction import Redactor
from phalanx.stats import StatsSnapshot
from phalanx.web.app import RunConflict, StartRequest

log = logging.getLogger("phalanx")

Record = Callable[[str, str, str, dict[str, Any]], None]


class MasterSession:
    """Tests started from the UI on a master that keeps its workers (module docstring)."""

    def __init__(self, settings: Settings, classes: tuple[type[User], ...], plan: ClusterPlan,
                 lobby: MasterDriver, redactor: Redactor, *, audit: Record | None = None,
                 info: dict[str, object] | None = None) -> None:
        self._settings = settings
        self._classes = classes
        self._plan = plan
        self._redactor = redactor
        self._audit = audit
        self.info: dict[str, object] = info if info is not None else {}
        self._scope = build_scope(settings, classes)
        self._driver = lobby
        self._running = False
        self._pending: StartRequest | None = None
        self._closing = False
        self._last_snapshot: StatsSnapshot | None = None
        self.last_result: RunResult | None = None
        self._history: list[dict[str, object]] = []

    # --- what the web app calls ------------------------------------------------------

    def status(self) -> RunStatus:
        return self._driver.status()

    @property
    def latest(self) -> StatsSnapshot | None:
        return self._driver.latest if self._running else self._last_snapshot

    def workers(self) -> tuple[WorkerSummary, ...]:
        return self._driver.worker_summaries()

    def runs(self) -> list[dict[str, object]]:
        return list(self._history)

    def start(self, request: StartRequest) -> None:
        if self._running or self._pending is not None:
            raise RunConflict("a test is running: stop it before starting another")
        if self._closing:
            raise RunConflict("the master is shutting down")
        if not self._driver.status().workers:
            raise RunConflict("no worker has joined yet")
        checked_start(request, self._settings, self._classes, self._scope, self._redactor)
        self._pending = request
        self._driver.release()

    def change_target(self, users: int, spawn_rate: float | None = None) -> None:
        if not self._running:
            raise RunConflict("no test is running")
        self._driver.change_target(users, spawn_rate)

    def request_stop(self) -> None:
        if not self._running:
            raise RunConflict("no test is running")
        self._driver.request_stop()

    def reset_stats(self) -> None:
        if not self._running:
            raise RunConflict("no test is running")
        self._driver.reset_stats()

    # --- the master's life -------------------------------------------------------------

    def shutdown(self, *, now: bool) -> None:
        """Ctrl-C: stop a running test (gracefully or at once), then end."""
        self._closing = True
        if now:
            self._driver.abort()
        else:
            self._driver.request_stop()
        self._driver.release()

    async def serve(self) -> RunResult | None:
        """Hold workers, run what the UI starts, until shut down; the last test's result."""
        driver = self._driver
        while not self._closing:
            await driver.hold(asyncio.Event())
            request, self._pending = self._pending, None
            if self._closing or request is None:
                break
            runner = driver.following(self._plan_for(request))
            self._driver, self._running = runner, True
            try:
                result = await runner.run()
            except ClusterError as exc:  # workers left in the meantime: back to the lobby
                log.error("the test could not start: %s", exc)
                result = None
            finally:
                self._running = False
            if result is not None:
                self._finished(result)
            driver = runner.following(self._plan)
            self._driver = driver
        return self.last_result

    def _finished(self, result: RunResult) -> None:
        self.last_result = result
        self._last_snapshot = result.snapshot
        remember_run(self._history, result, self.info)
        if self._audit is not None:
            self._audit("web-ui", "master", "run_stop", stop_details(result))

    def _plan_for(self, request: StartRequest) -> ClusterPlan:
        host = checked_start(request, self._settings, self._classes, self._scope,
                             self._redactor) or ""
        self.info.update({"host": self._redactor.redact_url(host) if host else None,
                          "users": request.users, "spawn_rate": request.spawn_rate,
                          "run_time_s": request.run_time})
        log.info("starting %d users at %g/s against %s (from the web UI)", request.users,
                 request.spawn_rate, host or "the classes' hosts")
        return dataclasses.replace(self._plan, host=host, users=request.users,
                                   spawn_rate=request.spawn_rate, run_time=request.run_time,
                                   shape=None, expect_workers=1)
