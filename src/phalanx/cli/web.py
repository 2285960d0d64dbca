"""``--web``: the web UI and REST API next to a run (local or master), on the same loop.

On first start with an empty user store an ``admin`` is created: with the
password from ``$PHALANX_ADMIN_PASSWORD`` (automated deployments), or a
random one printed once to the terminal, never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from phalanx.cli.environment import take_once
from phalanx.config.settings import Settings
from phalanx.core.workers import WorkerSummary
from phalanx.security.audit import AuditError, AuditLog
from phalanx.security.redaction import Redactor
from phalanx.web.accounts import (
    ADMIN_PASSWORD_ENV,
    UserStore,
    ensure_admin,
    resolve_store_path,
)
from phalanx.web.admin import AccountAdmin, admin_routes
from phalanx.web.app import RunControl, WebContext, create_app
from phalanx.web.auth import StoreAuthenticator
from phalanx.web.passwords import Passwords
from phalanx.web.server import WebServer, is_loopback
from phalanx.web.sessions import SessionStore
from phalanx.web.throttle import LoginThrottle

log = logging.getLogger("phalanx")


MAX_QUEUED_AUDIT = 10_000


class AuditWriter:
    """Audit entries queued from the event loop, written in order by one task off the loop.

    ``record`` never blocks (the file write and fsync happen in a thread);
    ``async with`` starts the writer and, on the way out, waits (bounded) until
    every queued entry is on disk. An entry that cannot be written is logged
    as an error with its action (never dropped silently).
    """

    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self._queue: asyncio.Queue[tuple[str, str, str, dict[str, Any]]] = asyncio.Queue(
            MAX_QUEUED_AUDIT)
        self._task: asyncio.Task[None] | None = None

    def record(self, actor: str, source: str, action: str, details: Mapping[str, Any]) -> None:
        try:
            self._queue.put_nowait((actor, source, action, dict(details)))
        except asyncio.QueueFull:
            log.error("audit queue full: the %s entry by %s was not recorded", action, actor)

    async def __aenter__(self) -> AuditWriter:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="phalanx-audit")
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10.0):
                await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.log.close()

    async def _run(self) -> None:
        while True:
            actor, source, action, details = await self._queue.get()
            try:
                await asyncio.to_thread(self.log.append, actor, source, action, details)
            except (AuditError, ValueError, TypeError) as exc:
                log.error("could not write the %s audit entry: %s", action, exc)
            finally:
                self._queue.task_done()



def audit_log_path(settings: Settings) -> Path | None:
    """``--audit-log``, else (with ``--web``) phalanx-audit.jsonl next to the user store."""
    if settings.audit_log:
        return Path(settings.audit_log)
    if settings.web:
        store = resolve_store_path(Path(settings.user_store) if settings.user_store else None,
                                   os.environ)
        return store.parent / "phalanx-audit.jsonl"
    return None


@contextlib.asynccontextmanager
async def audit_writer(settings: Settings, redactor: Redactor) -> AsyncIterator[AuditWriter | None]:
    """The run's audit writer (None when there is no audit log to keep)."""
    path = audit_log_path(settings)
    if path is None:
        yield None
        return
    async with AuditWriter(AuditLog(path, redact=redactor.redact_text)) as writer:
        log.info("audit log %s (head %s)", path, writer.log.head.hash[:16])
        yield writer


def operator_name() -> str:
    """Who started the run from the command line (the OS account)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def split_bind(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The ``Host`` values this server answers to (its address, and localhost on loopback)."""
    names = {f"[{host}]" if ":" in host else host}
    if is_loopback(host) or host in ("0.0.0.0", "::"):  # noqa: S104 - names, not a bind
        names |= {"localhost", "127.0.0.1", "[::1]"}
    return frozenset(f"{name}:{port}".lower() for name in names)


@contextlib.asynccontextmanager
async def web_ui(settings: Settings, control: RunControl, *,
                 workers: Callable[[], Sequence[WorkerSummary]] | None = None,
                 run_info: Mapping[str, Any] | None = None,
                 audit: AuditWriter | None = None) -> AsyncIterator[WebServer | None]:
    """Serve the UI for the duration of the block when ``--web`` is on (else yield None)."""
    if not settings.web:
        yield None
        return
    store_path = resolve_store_path(Path(settings.user_store) if settings.user_store else None,
                                    os.environ)
    store = UserStore.open(store_path, create=True)
    passwords = Passwords()
    taken = take_once(ADMIN_PASSWORD_ENV)  # out of os.environ since start-up (cli.environment)
    generated = ensure_admin(
        store, passwords=passwords, now=time.time(),
        environ={} if taken is None else {ADMIN_PASSWORD_ENV: taken},
        password_file=Path(settings.admin_password_file) if settings.admin_password_file
        else None)
    if generated is not None:
        # Straight to the terminal, once: never through logging (log files keep it).
        print(f"\nphalanx: created the web UI user 'admin' in {store_path} with the password\n"
              f"    {generated}\nit is shown only this once; change it with "
              f"'phalanx users reset-password admin'.\n", file=sys.stderr, flush=True)
    # recheck=0: one stat per request, so a change made on the admin page (or by
    # `phalanx users` in a terminal) applies to the very next request.
    auth = StoreAuthenticator(store, passwords, time.time, recheck=0.0)
    host, port = split_bind(settings.web_bind)
    server = WebServer(None, host, port, certfile=settings.tls_cert,  # type: ignore[arg-type]
                       keyfile=settings.tls_key, trusted_proxies=settings.web_trusted_proxies)
    public = settings.web_public_url

    def make_app(bound: WebServer) -> Any:
        if public is not None:  # the address browsers use (a TLS proxy's, or a DNS name)
            hosts = frozenset({public.removeprefix("https://")})
            origins = frozenset({public})
        else:
            hosts = allowed_hosts(host, bound.port)
            scheme = "https" if bound.tls else "http"
            origins = frozenset(f"{scheme}://{name}" for name in hosts)
        ctx = WebContext(
            control=control, auth=auth, sessions=SessionStore(auth.epoch_of),
            throttle=LoginThrottle(), clock=time.monotonic, allowed_hosts=hosts,
            origins=origins, tls=bound.tls or public is not None,
            behind_tls_proxy=bool(settings.web_trusted_proxies),
            max_users=settings.max_users, max_spawn_rate=settings.max_spawn_rate,
            audit=audit.record if audit is not None else None,
            audit_recent=(lambda: audit.log.recent) if audit is not None else None,
            workers=workers, run_info=run_info,
        )
        return create_app(ctx, extra_routes=admin_routes(AccountAdmin(store_path, passwords)))

    await server.start(make_app)
    try:
        yield server
    finally:
        await server.stop()
