"""``--web``: the web UI and REST API next to a run (local or master), on the same loop.

On first start with an empty user store an ``admin`` is created: with the
password from ``$PHALANX_ADMIN_PASSWORD`` (automated deployments), or a
random one printed once to the terminal, never logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from phalanx.config.settings import Settings
from phalanx.core.workers import WorkerSummary
from phalanx.web.accounts import UserStore, ensure_admin, resolve_store_path
from phalanx.web.app import AuditFn, RunControl, WebContext, create_app
from phalanx.web.auth import StoreAuthenticator
from phalanx.web.passwords import Passwords
from phalanx.web.server import WebServer, is_loopback
from phalanx.web.sessions import SessionStore
from phalanx.web.throttle import LoginThrottle

log = logging.getLogger("phalanx")


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
                 audit: AuditFn | None = None) -> AsyncIterator[WebServer | None]:
    """Serve the UI for the duration of the block when ``--web`` is on (else yield None)."""
    if not settings.web:
        yield None
        return
    store_path = resolve_store_path(Path(settings.user_store) if settings.user_store else None,
                                    os.environ)
    store = UserStore.open(store_path, create=True)
    passwords = Passwords()
    generated = ensure_admin(store, passwords=passwords, now=time.time(), environ=os.environ)
    if generated is not None:
        # Straight to the terminal, once: never through logging (log files keep it).
        print(f"\nphalanx: created the web UI user 'admin' in {store_path} with the password\n"
              f"    {generated}\nit is shown only this once; change it with "
              f"'phalanx users reset-password admin'.\n", file=sys.stderr, flush=True)
    auth = StoreAuthenticator(store, passwords, time.time)
    host, port = split_bind(settings.web_bind)
    server = WebServer(None, host, port, certfile=settings.tls_cert,  # type: ignore[arg-type]
                       keyfile=settings.tls_key)

    def make_app(bound: WebServer) -> Any:
        hosts = allowed_hosts(host, bound.port)
        scheme = "https" if bound.tls else "http"
        ctx = WebContext(
            control=control, auth=auth, sessions=SessionStore(auth.epoch_of),
            throttle=LoginThrottle(), clock=time.monotonic, allowed_hosts=hosts,
            origins=frozenset(f"{scheme}://{name}" for name in hosts), tls=bound.tls,
            audit=audit, workers=workers, run_info=run_info,
        )
        return create_app(ctx)

    await server.start(make_app)
    try:
        yield server
    finally:
        await server.stop()
