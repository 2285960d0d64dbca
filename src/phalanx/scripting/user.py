"""Simulated users: :class:`User` (any client) and :class:`HttpUser`.

Lifecycle of ``await user.run()`` (one asyncio task per user, owned by the engine):

1. ``on_start()``; if it raises, the error is reported and the user stops;
2. the task loop (:mod:`.runloop`): pick a task, run it, wait ``wait_time``;
3. ``on_stop()`` (errors reported), then the user's resources are released
   (``HttpUser`` closes its client).

Decision on a failing ``on_start``: ``on_stop`` still runs (as in Locust), so
that cleanup written there (logout, closing a custom client) is never skipped;
``on_stop`` may therefore see a half-initialised user. Invariant: ``on_stop``
runs once for every user whose ``run()`` ends normally.

Stopping: ``request_stop()`` makes the user exit at the next task boundary.
The engine cancels the asyncio task of a user that ``is_waiting`` after
``request_stop()``: that cancellation ends the wait, ``on_stop`` runs and
``run()`` returns normally. A cancellation of a user that was asked to stop
while it was busy (in ``on_start`` or a task: the engine's stop timeout ran
out) also ends in ``on_stop``, as Locust does, given at most
``ON_STOP_TIMEOUT`` seconds so a stop always completes. A cancellation without
``request_stop()``, after ``abort()``, or during ``on_stop`` propagates as
usual; ``on_stop`` is then skipped but resources are still released.
``StopUser`` raised anywhere ends the user the normal way (``on_stop`` runs).

Abstract classes: ``User`` and ``HttpUser`` are abstract; a subclass is
concrete unless it sets ``abstract = True`` in its own body (the attribute is
not inherited: every class reads its own value).

Memory: a user holds four slots (context, state bits, two timing floats) plus
``HttpUser``'s lazily created client; everything shared lives in the
:class:`~phalanx.scripting.context.UserContext`. Subclasses written in scripts
get a ``__dict__`` as usual (Python creates it only when used).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar
from urllib.parse import urlsplit

from phalanx.core.errors import ScriptError, StopUser, TargetNotAllowed
from phalanx.scripting.context import UserContext
from phalanx.scripting.measure import Measurement
from phalanx.scripting.runloop import STOPPING, WAITING, run_hook, task_loop
from phalanx.scripting.task import compile_tasks
from phalanx.scripting.wait_time import constant

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable
    from random import Random

    from phalanx.http.options import HttpOptions
    from phalanx.http.session import HttpSession
    from phalanx.scripting.task import TaskDeclaration, TaskEntry, TaskTable
    from phalanx.security.scope import ScopeGuard

__all__ = ["HttpUser", "User", "UserContext", "validate_user_classes"]

_T = TypeVar("_T")

_DEFAULT_PORTS: Final = {
    "http": 80, "https": 443, "ws": 80, "wss": 443, "postgres": 5432, "postgresql": 5432,
    "mysql": 3306, "redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671,
    "mongodb": 27017,
}
CLIENT_CLOSE_TIMEOUT: Final = 5.0
"""Seconds allowed to close a user's HTTP client when the user ends."""
ON_STOP_TIMEOUT: Final = 5.0
"""Seconds ``on_stop`` may take once the user was asked to stop."""
ABORTED: Final = 4
"""Bit of ``User._state``: ``abort()`` was called; a cancellation then skips ``on_stop``."""
CLEANING_UP: Final = 8
"""Bit of ``User._state``: the task loop is over; ``on_stop``/release are running."""


class User:
    """A simulated user; subclass it and declare ``async def`` tasks."""

    host: ClassVar[str | None] = None
    weight: ClassVar[int] = 1
    fixed_count: ClassVar[int] = 0
    wait_time = constant(0)
    tasks: ClassVar[TaskDeclaration] = ()
    abstract: ClassVar[bool] = True

    __slots__ = ("_state", "context", "last_task_duration", "task_started_at")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "abstract" not in cls.__dict__:
            cls.abstract = False

    def __init__(self, context: UserContext) -> None:
        self.context = context
        self._state = 0
        self.task_started_at = 0.0
        self.last_task_duration = 0.0

    @classmethod
    def effective_host(cls, run_host: str | None) -> str | None:
        """The host this class targets: the run's ``--host`` if given, else ``cls.host``."""
        return run_host or cls.host

    async def on_start(self) -> None:
        """Called once when the user starts; override with ``async def``."""

    async def on_stop(self) -> None:
        """Called once when the user stops; override with ``async def``."""

    @property
    def random(self) -> Random:
        """The run's seeded random generator (reproducible choices in tasks)."""
        return self.context.random

    @property
    def is_waiting(self) -> bool:
        """True while the user sleeps between two tasks."""
        return bool(self._state & WAITING)

    @property
    def is_stopping(self) -> bool:
        """True once :meth:`request_stop` was called (or the user has ended)."""
        return bool(self._state & STOPPING)

    def request_stop(self) -> None:
        """Ask the user to stop at the next task boundary (see the module docstring)."""
        self._state |= STOPPING

    def abort(self) -> None:
        """Mark the user as stopping now: a cancellation that follows skips ``on_stop``."""
        self._state |= STOPPING | ABORTED

    def measure(self, method: str, name: str) -> Measurement:
        """Time an ``async with`` block and record it as a request (custom clients).

        ``async with self.measure("grpc", "GetItem") as m: ...``; see
        :mod:`phalanx.scripting.measure` for what is recorded.
        """
        return Measurement(self.context.recorder, method, name)

    def check_target(self, url: str) -> None:
        """Raise :class:`~phalanx.core.errors.TargetNotAllowed` unless the run may reach ``url``.

        For custom clients (gRPC, websockets, databases): the same target scope
        guard as the HTTP client, by host name or address and port. ``url`` is
        ``scheme://host[:port]`` (any scheme; the port defaults for http, https,
        ws, wss and common databases, otherwise give it) or ``host:port``. Check
        the addresses you connect to with :meth:`resolve_target`. Messages name
        only ``host:port``, never credentials or queries from ``url``.
        """
        scope = self._scope()
        if scope is None:
            return
        parts = urlsplit(url if "://" in url else f"tcp://{url}")
        try:
            host, port = parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
        except ValueError:
            raise TargetNotAllowed("invalid port in the target") from None
        if not host or not port:
            raise TargetNotAllowed(
                f"{host or '?'}: give the port explicitly (scheme {parts.scheme!r} has no default)"
            )
        decision = scope.check_host(host, port)
        if not decision.allowed:
            raise TargetNotAllowed(f"{host}:{port}: {decision.reason}")

    async def resolve_target(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` this run may connect to on ``port`` (scope-checked).

        Connect a custom client to one of these (not to the name, which could
        resolve differently a second time). Raises
        :class:`~phalanx.core.errors.TargetNotAllowed` when none is allowed.
        """
        scope = self._scope()
        if scope is not None:
            decision = scope.check_host(host, port)
            if not decision.allowed:
                raise TargetNotAllowed(f"{host}:{port}: {decision.reason}")
        loop = asyncio.get_running_loop()
        try:
            lookup = loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            infos = await asyncio.wait_for(lookup, timeout=10)
        except (OSError, TimeoutError) as exc:
            raise TargetNotAllowed(f"{host}:{port}: cannot resolve: {exc}") from None
        addresses: list[str] = []
        refusal = "no address"
        for _family, _type, _proto, _canon, sockaddr in infos:
            ip = str(sockaddr[0])
            if ip in addresses:
                continue
            if scope is not None:
                decision = scope.check_address(host, port, ip)
                if not decision.allowed:
                    refusal = decision.reason
                    continue
            addresses.append(ip)
        if not addresses:
            raise TargetNotAllowed(f"{host}:{port}: {refusal}")
        return addresses

    def _scope(self) -> ScopeGuard | None:
        options = self.context.http_options
        return options.scope if options is not None else None

    async def measure_call(self, method: str, name: str, awaitable: Awaitable[_T]) -> _T:
        """Await ``awaitable`` inside :meth:`measure` and return its result."""
        async with self.measure(method, name):
            return await awaitable

    def _next_entry(self, table: TaskTable) -> TaskEntry:
        return table.pick(self.context.random)

    def _task_table(self) -> TaskTable:
        context = self.context
        cls = type(self)
        return context.memo.get(
            ("tasks", cls), lambda: compile_tasks(cls, context.tags, context.exclude_tags)
        )

    async def run(self) -> None:
        """Run this user until it stops (see the module docstring)."""
        try:
            table = self._task_table()
            cancelled_busy = False
            try:
                if await run_hook(self, self, "on_start", (StopUser,)):
                    await task_loop(self, self, table)
            except StopUser:
                pass
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if self._state & ABORTED or not self._state & STOPPING or current is None:
                    raise
                current.uncancel()  # the stop asked for this: withdraw it and clean up
                cancelled_busy = True
            self._state |= CLEANING_UP  # from here the engine's stop timer leaves us alone
            with contextlib.suppress(StopUser):
                if cancelled_busy or self._state & STOPPING:
                    try:
                        async with asyncio.timeout(ON_STOP_TIMEOUT):
                            await run_hook(self, self, "on_stop", (StopUser,))
                    except TimeoutError:
                        self.context.logger.warning(
                            "%s.on_stop did not finish within %.0f s after a stop; abandoned",
                            type(self).__qualname__, ON_STOP_TIMEOUT,
                        )
                else:
                    await run_hook(self, self, "on_stop", (StopUser,))
        finally:
            self._state = STOPPING | CLEANING_UP
            await self._release()

    @property
    def is_cleaning_up(self) -> bool:
        """True once the task loop is over (``on_stop`` and the release are running)."""
        return bool(self._state & CLEANING_UP)

    async def _release(self) -> None:
        """Free what the user holds once ``run()`` ends; subclasses extend it."""


class HttpUser(User):
    """A user with an HTTP client, ``self.client``, bound to its host.

    The client is created on first access and closed when ``run()`` ends.
    ``tls_verify = False`` on a class turns TLS certificate verification off
    for that class's users (a WARNING naming the class is logged once per run).
    """

    abstract = True
    tls_verify: ClassVar[bool] = True

    __slots__ = ("_client",)

    def __init__(self, context: UserContext) -> None:
        super().__init__(context)
        self._client: HttpSession | None = None

    @property
    def client(self) -> HttpSession:
        """The user's HTTP session on :meth:`effective_host` (created on first use)."""
        client = self._client
        if client is None:
            client = self._client = self._open_client()
        return client

    def _open_client(self) -> HttpSession:
        from phalanx.http.options import TlsContexts
        from phalanx.http.session import HttpSession

        context = self.context
        cls = type(self)
        host = cls.effective_host(context.host)
        if not host:
            raise ScriptError(_no_host_message(cls))
        options = context.memo.get(("http-options", cls), lambda: _class_http_options(cls, context))
        tls = context.tls or context.memo.get("tls-contexts", TlsContexts)
        return HttpSession(host, context.recorder, options=options, tls=tls)

    async def _release(self) -> None:
        await super()._release()
        client = self._client
        if client is None:
            return
        self._client = None
        try:
            async with asyncio.timeout(CLIENT_CLOSE_TIMEOUT):
                await client.close()
        except Exception as exc:  # closing must not turn a finished user into an error
            if self.context.memo.first_time(("close-error", type(self))):
                self.context.logger.warning(
                    "closing the HTTP client of %s failed: %r", type(self).__name__, exc
                )


def _class_http_options(cls: type[HttpUser], context: UserContext) -> HttpOptions:
    """The HTTP options of ``cls`` in this run (built once per class and run)."""
    from phalanx.http.options import HttpOptions

    options = context.http_options or HttpOptions()
    if cls.tls_verify:
        return options
    context.logger.warning(
        "TLS certificate verification is DISABLED for %s (tls_verify = False): "
        "its traffic can be intercepted",
        cls.__qualname__,
    )
    return dataclasses.replace(options, verify_tls=False)


def _no_host_message(cls: type[User]) -> str:
    return (
        f"{cls.__name__} has no host: set `host = \"https://...\"` on the class "
        "or pass --host"
    )


def validate_user_classes(classes: Iterable[type[User]], run_host: str | None) -> list[str]:
    """Problems that keep ``classes`` from running with ``--host run_host`` (empty: fine).

    Checks: an HttpUser has a host (``--host`` or the class's) that is an
    ``http://`` or ``https://`` URL; ``weight`` is an int >= 1; ``fixed_count``
    is an int >= 0; ``wait_time`` is callable.
    """
    problems: list[str] = []
    for cls in classes:
        name = cls.__name__
        if issubclass(cls, HttpUser):
            host = cls.effective_host(run_host)
            if not host:
                problems.append(_no_host_message(cls))
            elif "@" in host:  # never echoed: it may hold a password
                problems.append(f"{name}: credentials (user:password@) in the host are refused; "
                                "send them from the script (headers or phalanx.secrets)")
            elif not _is_http_url(host):
                problems.append(f"{name}: host {host!r} is not an http:// or https:// URL")
        weight: object = cls.weight
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            problems.append(f"{name}: weight must be an integer >= 1, got {weight!r}")
        fixed: object = cls.fixed_count
        if isinstance(fixed, bool) or not isinstance(fixed, int) or fixed < 0:
            problems.append(f"{name}: fixed_count must be an integer >= 0, got {fixed!r}")
        wait_time: object = cls.wait_time
        if not callable(wait_time):
            problems.append(f"{name}: wait_time must be callable, e.g. between(1, 2)")
    return problems


def _is_http_url(host: str) -> bool:
    try:
        parts = urlsplit(host)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
