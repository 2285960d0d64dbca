"""Serving the web app with uvicorn on the run's own event loop.

:func:`check_bind` is the policy: the UI listens on 127.0.0.1 by default; a
non-loopback address without TLS is refused (a session cookie and a
password would cross the network in clear). :class:`WebServer` binds the
socket itself (so a busy port is a clear error before anything runs, and
port 0 works), serves until :meth:`WebServer.stop`, and leaves signal
handling to phalanx (uvicorn's own handlers would swallow Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from typing import Final

import uvicorn
from starlette.types import ASGIApp

from phalanx.core.errors import ConfigError

log = logging.getLogger("phalanx.web")

STOP_TIMEOUT: Final = 5.0
LISTEN_BACKLOG: Final = 128


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the web UI stopped serving", exc_info=task.exception())


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_bind(host: str, *, tls: bool, behind_tls_proxy: bool = False) -> None:
    """Refuse a non-loopback bind without TLS, unless TLS is terminated by trusted proxies."""
    if not tls and not behind_tls_proxy and not is_loopback(host):
        raise ConfigError(
            f"the web UI on {host} would send passwords and session cookies in clear: "
            "give --tls-cert and --tls-key (phalanx certs dev makes a pair for local use), "
            "or --web-trusted-proxy and --web-public-url "
            "when a TLS proxy in front terminates HTTPS, or keep the default 127.0.0.1"
        )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # phalanx owns SIGINT/SIGTERM: a first Ctrl-C stops the test gracefully


class WebServer:
    """One uvicorn server for ``app`` on ``host:port`` (HTTPS when a cert and key are given)."""

    def __init__(self, app: ASGIApp, host: str, port: int, *, certfile: str | None = None,
                 keyfile: str | None = None, trusted_proxies: Sequence[str] = ()) -> None:
        if (certfile is None) != (keyfile is None):
            raise ConfigError("give both --tls-cert and --tls-key, or neither")
        check_bind(host, tls=certfile is not None, behind_tls_proxy=bool(trusted_proxies))
        self.host = host
        self.port = port
        self.tls = certfile is not None
        self._config = uvicorn.Config(
            app, host=host, port=port, ssl_certfile=certfile, ssl_keyfile=keyfile,
            log_config=None, access_log=False, lifespan="off", server_header=False,
            date_header=False, timeout_graceful_shutdown=2, timeout_keep_alive=5,
            limit_concurrency=1000, h11_max_incomplete_event_size=64 * 1024,
            # h11, not httptools: its limit on incomplete events bounds request headers.
            http="h11",
            # X-Forwarded-* only from the proxies named on the command line: uvicorn's
            # default trusts 127.0.0.1, where any local process could forge a client address.
            proxy_headers=bool(trusted_proxies),
            forwarded_allow_ips=list(trusted_proxies) if trusted_proxies else None,
        )
        self._server = _Server(self._config)
        # uvicorn's own start/stop lines say nothing phalanx does not already log.
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def tls_minimum_version(self) -> ssl.TLSVersion | None:
        """The oldest TLS version the server accepts (None: plain HTTP, or not started)."""
        context = self._config.ssl if self._config.is_ssl and self._config.loaded else None
        return context.minimum_version if context is not None else None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    async def start(self, make_app: Callable[[WebServer], ASGIApp] | None = None) -> None:
        """Bind and start serving (ConfigError if the address cannot be bound or TLS fails).

        ``make_app`` builds the app once the port is known (port 0 binds a free one,
        and the app needs its own origin to check requests against).
        """
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot serve the web UI on {self.host}:{self.port}: "
                              f"{exc.strerror or exc}") from None
        sock.listen(LISTEN_BACKLOG)  # connections made before uvicorn runs wait, not fail
        self._socket = sock
        self.port = sock.getsockname()[1]
        if make_app is not None:
            self._config.app = make_app(self)
        if self._config.is_ssl:
            try:
                self._config.load()  # reads the certificate now: a bad file is a clear error
            except (OSError, ValueError) as exc:
                sock.close()
                raise ConfigError(f"cannot load the TLS certificate or key: {exc}") from None
            if self._config.ssl is not None:  # TLS 1.0 and 1.1 are refused, whatever OpenSSL says
                self._config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
        self._task = asyncio.get_running_loop().create_task(
            self._server.serve(sockets=[sock]), name="phalanx-web")
        self._task.add_done_callback(_report_failure)
        log.info("web UI on %s", self.url)

    async def stop(self) -> None:
        task = self._task
        self._task = None
        if task is None:
            return
        self._server.should_exit = True
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await task
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            if self._socket is not None:
                self._socket.close()
                self._socket = None
