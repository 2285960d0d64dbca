"""The client one simulated user holds: :class:`HttpSession`.

Map of the package::

    HttpSession.get/post/.../request() -> RequestCall    (awaitable / async context manager)
      _perform (one generator per request, all hops):
        targets.TargetCache (url.resolve_url + naming.default_request_name, memoised
        per URL string; the encoded head of a plain request is kept beside), encoding.*
        per hop: pool.OriginPool.take_idle -> connection.HttpConnection.exchange (httptools)
                 (slow path _exchange: OriginPool.acquire -> connector.open_connection:
                  resolve, admit_addresses = scope-guard seam, connect, TLS)
                 cookies.CookieJar (cookie_header / store), redirects.next_hop
        recorder.record(method, name, elapsed, wire_bytes, failure) once per hop

Why a hand-written client: this is the load generator's hot path (see
:mod:`phalanx.http.connection`). Per request it creates no task and no timer:
only the ``RequestCall``, one generator, one future, the request bytes and the
``Response``; the default header lines are preformatted once per origin; an
idle keep-alive connection is used without any extra coroutine. Measured
single-core against a fixed-response server (bench/bench_client_quick.py):
about half of what wrk reaches on the same core.

Guarantees:

- Awaiting a request never raises for a transport or HTTP problem: the
  ``Response`` carries ``error`` (a stable kind) or a 4xx/5xx status. Only
  ``CancelledError`` (and other ``BaseException``) propagate; a cancelled
  exchange closes its connection.
- Every hop is recorded exactly once: without ``catch_response`` when its
  response is complete; with ``catch_response`` the final hop is recorded when
  the ``async with`` block exits (earlier redirect hops immediately). Awaiting a
  ``catch_response=True`` call without ``async with`` records at once.
- Idle cost: a session with no connection holds a few references; the pool
  dict and the cookie jar are created on first use.

Timeouts: ``connect_timeout`` (per connection), ``read_timeout`` (silence
between bytes) and the total deadline (``timeout=`` or ``total_timeout``,
covering pool waits, connects, every redirect hop).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Generator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, TypedDict, Unpack, cast

from phalanx.core.errors import ConfigError, InterruptTaskSet, RescheduleTask, StopUser
from phalanx.core.results import ErrorKind, RequestFailure, RequestRecorder
from phalanx.http.connection import HttpConnection
from phalanx.http.cookies import CookieJar
from phalanx.http.encoding import (
    InvalidRequest,
    UserHeaders,
    check_method,
    default_header_block,
    encode_body,
    encode_head,
    prepare_headers,
)
from phalanx.http.failures import TransportError
from phalanx.http.naming import default_request_name, fallback_request_name
from phalanx.http.options import HttpOptions, TlsContexts
from phalanx.http.pool import OriginPool
from phalanx.http.redirects import REDIRECT_STATUSES, next_hop
from phalanx.http.response import Response
from phalanx.http.targets import Target, TargetCache
from phalanx.http.url import (
    BaseUrl,
    InvalidUrl,
    Origin,
    Url,
    append_params,
    parse_base_url,
    resolve_location,
)

__all__ = ["HttpSession", "RequestCall", "RequestOptions"]

ParamValue = str | int | float
Params = Mapping[str, ParamValue] | Sequence[tuple[str, ParamValue]]

_KNOWN_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# Exceptions that steer a user's task: they leave a catch_response block
# without making the request a failure.
_CONTROL_FLOW: Final = (StopUser, RescheduleTask, InterruptTaskSet)


class RequestOptions(TypedDict, total=False):
    """Keyword arguments shared by :meth:`HttpSession.request` and the verb helpers."""

    name: str | None
    params: Params | None
    headers: Mapping[str, str] | None
    data: bytes | str | Mapping[str, str] | None
    json: Any
    timeout: float | None
    allow_redirects: bool
    catch_response: bool


_OPTION_NAMES: Final = frozenset(RequestOptions.__annotations__)


class HttpSession:
    """Keep-alive HTTP/1.1 client of one simulated user; see the module docstring.

    ``base_url`` (``http(s)://host[:port][/prefix]``) is what relative URLs
    resolve against; ``recorder`` receives every request. Pass the run's
    shared ``tls`` (:class:`TlsContexts`): without it the session builds its
    own on its first https connection.
    """

    __slots__ = ("_base", "_cookies", "_loop", "_options", "_pools", "_recorder", "_targets",
                 "_tls")

    def __init__(
        self,
        base_url: str | None,
        recorder: RequestRecorder,
        *,
        options: HttpOptions = HttpOptions(),  # noqa: B008 - immutable, shared on purpose
        tls: TlsContexts | None = None,
    ) -> None:
        base: BaseUrl | None = None
        if base_url:
            try:
                base = parse_base_url(base_url)
            except InvalidUrl as exc:
                raise ConfigError(f"invalid base URL (host): {exc}") from None
        self._base = base
        self._recorder = recorder
        self._options = options
        self._tls = tls
        self._pools: dict[Origin, OriginPool] | None = None
        # The loop of the pools' connections while there are pools (asking asyncio for the
        # running loop costs a getpid() system call on every request).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cookies: CookieJar | None = None
        self._targets: TargetCache | None = None  # created on the first request

    # -- public API ------------------------------------------------------------------

    @property
    def base_url(self) -> str | None:
        return None if self._base is None else str(self._base.url)

    @property
    def cookies(self) -> CookieJar:
        """This user's cookie jar (created on first use)."""
        jar = self._cookies
        if jar is None:
            jar = self._cookies = CookieJar()
        return jar

    def request(
        self,
        method: str,
        url: str,
        *,
        name: str | None = None,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | str | Mapping[str, str] | None = None,
        json: Any = None,
        timeout: float | None = None,
        allow_redirects: bool = True,
        catch_response: bool = False,
    ) -> RequestCall:
        """Prepare a request; ``await`` it (or ``async with`` it) to send it.

        ``timeout`` (seconds, an int or float, finite and above 0) overrides
        ``total_timeout`` for this request. ``name`` is the stats name (a str;
        default: the path without query, see :mod:`phalanx.http.naming`).
        Arguments that cannot work raise ``TypeError``/``ValueError`` here, at
        the call (see :func:`_check_options`); everything after that is a
        recorded failure, never an exception.
        """
        return RequestCall(
            self,
            method,
            url,
            {
                "name": name,
                "params": params,
                "headers": headers,
                "data": data,
                "json": json,
                "timeout": timeout,
                "allow_redirects": allow_redirects,
                "catch_response": catch_response,
            },
        )

    # The verbs build the call directly (no detour through request()): they are
    # the hot path of every script.

    def get(self, url: str, **kwargs: Unpack[RequestOptions]) -> RequestCall:
        return RequestCall(self, "GET", url, kwargs)

    def post(self, url: str, **kwargs: Unpack[RequestOptions]) -> RequestCall:
        return RequestCall(self, "POST", url, kwargs)

    def put(self, url: str, **kwargs: Unpack[RequestOptions]) -> RequestCall:
        return RequestCall(self, "PUT", url, kwargs)

    def patch(self, url: str, **kwargs: Unpack[RequestOptions]) -> RequestCall:
        return RequestCall(self, "PATCH", url, kwargs)

    def delete(self, url: str, **kwargs: Unpack[RequestOptions]) -> RequestCall:
        return RequestCall(self, "DELETE", url, kwargs)

    def head(self, url: str, **kwargs: Unpack[RequestOptions]) -> RequestCall:
        return RequestCall(self, "HEAD", url, kwargs)

    def options(self, url: str, **kwargs: Unpack[RequestOptions]) -> RequestCall:
        return RequestCall(self, "OPTIONS", url, kwargs)

    @property
    def connection_count(self) -> int:
        """Open connections, all origins together."""
        return 0 if self._pools is None else sum(p.connection_count for p in self._pools.values())

    async def close(self) -> None:
        """Close every connection of this session. The session stays usable."""
        pools = self._pools
        self._pools = None
        if pools:
            # Every pool starts closing at once, synchronously, so a cancelled close still
            # has all transports closing; then they get their grace together.
            closing = [(pool, pool.shut()) for pool in pools.values()]
            await asyncio.gather(*(pool.wait_closed(conns, 1.0) for pool, conns in closing))

    async def __aenter__(self) -> HttpSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- one request, all hops ------------------------------------------------------------

    def _perform(self, call: RequestCall, record_final: bool) -> Generator[Any, None, Response]:
        """One request, all hops. A generator, not a coroutine: ``RequestCall.__await__``
        returns it as is, which saves the coroutine wrapper layer on every request
        (measurable on the hot path). It awaits with ``yield from``.
        """
        options = self._options
        method = call._method
        raw_url = call._url
        kw = call._options
        timeout = options.total_timeout
        body: bytes | None = None
        content_type: str | None = None
        headers: UserHeaders | None = None
        name: str | None = None
        allow_redirects = True
        base = self._base
        targets = self._targets
        if targets is None:
            targets = self._targets = TargetCache(base)
        try:
            if method not in _KNOWN_METHODS:
                method = check_method(method)
            target = targets[raw_url]
            url = target.url
            if kw:
                # Read as plain objects: RequestCall checked what must be checked, and a
                # compiled build would otherwise enforce the annotations (a TypeError for
                # allow_redirects=0, where the sources take any truth value).
                given = cast("Mapping[str, object]", kw)
                name = cast("str | None", given.get("name"))
                allow_redirects = bool(given.get("allow_redirects", True))
                timeout = cast("float | None", given.get("timeout")) or timeout
                params = given.get("params")
                if params:
                    url = url._replace(target=append_params(url.target, cast(Params, params)))
                data = given.get("data")
                json = given.get("json")
                if data is not None or json is not None:
                    body, content_type = encode_body(data, json)
                user_headers = given.get("headers")
                if user_headers:
                    headers = prepare_headers(cast("Mapping[object, object]", user_headers))
        except (InvalidUrl, InvalidRequest) as invalid:
            kind = ErrorKind.INVALID_URL if isinstance(invalid, InvalidUrl) else ErrorKind.OTHER
            response = Response.failed(method, raw_url, RequestFailure(kind, str(invalid)))
            name = name or (kw.get("name") if kw else None) or fallback_request_name(raw_url)
            call._final = (method, name)
            if record_final:
                self._record(method, name, response)
            return response

        loop = self._loop
        if loop is None or self._pools is None:
            loop = self._loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if name is None:
            name = target.name  # params only add a query, which names never include
        # The first hop of a plain request may reuse the target's encoded head.
        plain: Target | None = target if headers is None and body is None else None
        history: list[Response] | None = None
        while True:
            # One hop. The common case (an idle keep-alive connection that
            # answers) is inline here: no helper coroutine to suspend/resume.
            start = time.perf_counter()
            result: Response | RequestFailure
            pools = self._pools
            pool = pools.get(url.origin) if pools is not None else None
            try:
                if pool is None:
                    pool = self._pool(url.origin)
                jar = self._cookies
                cookie = jar.cookie_header(url, time.time()) if jar else None
                if plain is None or cookie is not None or url is not plain.url:
                    payload = self._encode(pool, method, url, headers, body, content_type, cookie)
                elif plain.head_method == method:
                    payload = plain.head
                else:
                    payload = self._encode(pool, method, url, None, None, None, None)
                    plain.head = payload
                    plain.head_method = method
            except TransportError as failed:
                result = failed.failure
            else:
                # The pool's fast paths, inline (take_idle / release, same checks).
                idle = pool._idle
                if idle and idle[-1].reusable:
                    connection: HttpConnection | None = idle.pop()
                else:
                    connection = pool.take_idle()
                if connection is None:
                    result = yield from self._exchange(pool, method, payload, deadline).__await__()
                else:
                    waiter = connection.exchange(
                        payload,
                        method == "HEAD",
                        options.max_body_bytes,
                        options.read_timeout,
                        deadline,
                    )
                    try:
                        result = yield from waiter
                    except BaseException:
                        connection.close()
                        pool.release(connection, False)
                        raise
                    if type(result) is Response:
                        if connection.reusable and not pool._closed and not pool._waiters:
                            idle.append(connection)
                        else:
                            pool.release(connection, True)
                    else:
                        pool.release(connection, False)
                        if _stale(connection, result, method):
                            result = yield from self._exchange(
                                pool, method, payload, deadline
                            ).__await__()
            if type(result) is Response:
                response = result
            else:
                response = Response.failed(method, url, cast(RequestFailure, result))
            response.elapsed = time.perf_counter() - start
            response.request_method = method
            response._url = url
            if response.has_set_cookie:
                self.cookies.store(response.headers.get_all("set-cookie"), url, time.time())
            if (
                response.status_code not in REDIRECT_STATUSES
                or not allow_redirects
                or response.error is not None
            ):
                break
            location = response.headers.get("location")
            if location is None:
                break
            if (0 if history is None else len(history)) >= options.max_redirects:
                response.error = RequestFailure(
                    ErrorKind.TOO_MANY_REDIRECTS,
                    f"more than {options.max_redirects} redirects",
                )
                break
            try:
                next_url = resolve_location(location, url)
            except InvalidUrl as bad_location:
                response.error = RequestFailure(
                    ErrorKind.INVALID_URL, f"redirect to an invalid URL: {bad_location}"
                )
                break
            self._record(method, name, response)
            if history is None:
                history = []
            history.append(response)
            method, body, content_type, headers = next_hop(
                response.status_code,
                method,
                body,
                content_type,
                headers,
                same_origin=next_url.origin == url.origin,
            )
            url = next_url
            name = default_request_name(url, base.url.origin if base is not None else None)
        if history is not None:
            response._history = history
        if record_final:
            if response.error is None and response.status_code < 400:
                self._recorder.record(method, name, response.elapsed, response.wire_bytes, None)
            else:
                self._record(method, name, response)
        else:
            call._final = (method, name)
        return response

    # -- one hop ----------------------------------------------------------------------

    def _encode(
        self,
        pool: OriginPool,
        method: str,
        url: Url,
        headers: UserHeaders | None,
        body: bytes | None,
        content_type: str | None,
        cookie: str | None,
    ) -> bytes:
        """The request bytes of one hop (``cookie``: this session's ``Cookie`` value).

        Raises :class:`TransportError` (kind ``other``) when they cannot be encoded.
        """
        try:
            payload = encode_head(
                method,
                url.target,
                pool.header_block,
                headers,
                body,
                content_type,
                cookie,
                url.authorization,
            )
        except UnicodeEncodeError:
            raise TransportError(
                RequestFailure(ErrorKind.OTHER, "request headers are not latin-1")
            ) from None
        if body:
            payload += body
        return payload

    async def _exchange(
        self, pool: OriginPool, method: str, payload: bytes, deadline: float
    ) -> Response | RequestFailure:
        """The slow path of a hop: wait for or open a connection, retry stale ones."""
        options = self._options
        retries = options.max_connections_per_origin
        while True:
            try:
                connection, reused = await pool.acquire(deadline)
            except TransportError as exc:
                return exc.failure
            waiter = connection.exchange(
                payload, method == "HEAD", options.max_body_bytes, options.read_timeout, deadline
            )
            try:
                result = await waiter
            except BaseException:
                connection.close()
                pool.release(connection, False)
                raise
            if type(result) is Response:
                pool.release(connection, True)
                return result
            pool.release(connection, False)
            if not (reused and retries > 0 and _stale(connection, result, method)):
                return result
            retries -= 1

    def _pool(self, origin: Origin) -> OriginPool:
        """The pool of ``origin``, created on first use; raises :class:`TransportError`."""
        pools = self._pools
        if pools is None:
            pools = self._pools = {}
        pool = pools.get(origin)
        if pool is None:
            ssl_context = None
            if origin.is_tls:
                tls = self._tls
                if tls is None:
                    tls = self._tls = TlsContexts()
                try:
                    ssl_context = tls.for_options(self._options)
                except ConfigError as exc:
                    raise TransportError(RequestFailure(ErrorKind.TLS, str(exc))) from None
            pool = pools[origin] = OriginPool(
                asyncio.get_running_loop(),
                origin,
                limit=self._options.max_connections_per_origin,
                ssl_context=ssl_context,
                connect_timeout=self._options.connect_timeout,
                header_block=default_header_block(origin.authority, self._options.user_agent),
                scope=self._options.scope,
                budget=self._options.connections,
            )
        return pool

    def _record(self, method: str, name: str, response: Response) -> None:
        self._recorder.record(
            method, name, response.elapsed, response.wire_bytes, _outcome(response)
        )


def _stale(connection: HttpConnection, failure: Response | RequestFailure, method: str) -> bool:
    """A kept-alive connection the server had closed before answering: retry on a new one."""
    return (
        not connection.received_any
        and isinstance(failure, RequestFailure)
        and failure.kind == ErrorKind.CONNECTION_RESET
        and method in _IDEMPOTENT
    )


def _outcome(response: Response) -> RequestFailure | None:
    """The failure recorded for a response when nobody gave a verdict."""
    failure = response.error
    if failure is None and response.status_code >= 400:
        failure = RequestFailure(
            ErrorKind.HTTP_STATUS, f"HTTP {response.status_code} {response.reason}".rstrip()
        )
    return failure


def _check_options(options: Mapping[str, object]) -> None:
    """Reject request arguments that cannot work, naming the argument.

    Checked when the call is made, so the error points at the caller's line:
    unknown names and a ``name=`` that is not a string (``TypeError``), a
    ``timeout=`` that is not a finite positive number of seconds (``TypeError``
    or ``ValueError``).
    """
    if not _OPTION_NAMES.issuperset(options):
        unknown = sorted(options.keys() - _OPTION_NAMES)
        raise TypeError(f"unexpected request argument(s): {', '.join(unknown)}")
    name = options.get("name")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name= must be a str, not {type(name).__name__}")
    timeout = options.get("timeout")
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout= must be a number of seconds, not {type(timeout).__name__}")
    try:
        seconds = float(timeout)
    except OverflowError:
        seconds = math.inf
    if not 0 < seconds < math.inf:
        raise ValueError(f"timeout= must be a finite number of seconds above 0, not {timeout!r}")


class RequestCall:
    """A prepared request: ``await`` it for the :class:`Response`, or use it as
    ``async with`` (with ``catch_response=True`` to decide success yourself).

    It is an awaitable, not a coroutine: ``asyncio.gather`` / ``ensure_future``
    / ``wait_for`` accept it, ``asyncio.create_task`` needs a coroutine around it.

    In a ``catch_response`` block the request is recorded on exit: a success
    unless ``response.failure(msg)`` was called, or it has a transport error or
    a 4xx/5xx status and ``response.success()`` was not called. An exception
    escaping the block is recorded as a failure of kind ``exception`` and
    re-raised; ``StopUser``/``RescheduleTask``/``InterruptTaskSet`` record the
    verdict as if the block ended normally; cancellation records nothing.
    """

    __slots__ = (
        "_catch",
        "_deferred",
        "_final",
        "_method",
        "_options",
        "_response",
        "_session",
        "_url",
    )

    def __init__(
        self, session: HttpSession, method: str, url: str, options: RequestOptions
    ) -> None:
        self._session = session
        self._method = method
        self._url = url
        self._options = options
        self._catch = False
        self._deferred = False  # record the final hop on block exit, not at once
        if options:
            _check_options(cast("Mapping[str, object]", options))
            self._catch = bool(cast("Mapping[str, object]", options).get("catch_response"))
        self._response: Response | None = None
        self._final: tuple[str, str] = (method, "")

    def __await__(self) -> Generator[Any, None, Response]:
        return self._session._perform(self, not self._deferred)

    async def __aenter__(self) -> Response:
        self._deferred = self._catch
        response = await self
        if self._catch:
            response._catchable = True
            self._response = response
        return response

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        response = self._response
        if response is None:
            return
        self._response = None
        response._catchable = False
        if exc is None or isinstance(exc, _CONTROL_FLOW):
            verdict = response._verdict
            if verdict is True:
                failure = None
            elif isinstance(verdict, RequestFailure):
                failure = verdict
            else:
                failure = _outcome(response)
        elif isinstance(exc, Exception):
            failure = RequestFailure(ErrorKind.EXCEPTION, f"{type(exc).__name__}: {exc}")
        else:
            return  # cancellation and other BaseExceptions: not a request outcome
        method, name = self._final
        self._session._recorder.record(method, name, response.elapsed, response.wire_bytes, failure)
