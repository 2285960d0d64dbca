"""Client settings (:class:`HttpOptions`) and shared TLS contexts (:class:`TlsContexts`).

``HttpOptions`` is immutable and meant to be shared by every simulated user of
a run: build it once at the edge, pass the same object to every session.

``TlsContexts`` builds one :class:`ssl.SSLContext` per ``(verify_tls, ca_file)``
pair and hands the same object to every caller. Creating an SSLContext loads
the system trust store (milliseconds of CPU and hundreds of KB), so a run
must never create one per simulated user: the engine creates one
``TlsContexts`` and passes it to every :class:`~phalanx.http.session.HttpSession`.

Invariants of the contexts built here: TLS 1.2 minimum, ALPN ``http/1.1``;
with verification on, the system trust store plus ``ca_file`` (extra trust,
never a replacement) and hostname checking; with verification off,
``check_hostname=False`` and ``CERT_NONE``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from importlib import metadata

from phalanx.core.errors import ConfigError
from phalanx.http.budget import ConnectionBudget
from phalanx.security.scope import ScopeGuard

__all__ = ["HttpOptions", "TlsContexts", "default_user_agent"]


def default_user_agent() -> str:
    """``phalanx/<installed version>``, or ``phalanx/dev`` when not installed."""
    try:
        version = metadata.version("phalanx")
    except metadata.PackageNotFoundError:
        version = "dev"
    return f"phalanx/{version}"


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """How every request of a session behaves. Times are seconds.

    - ``connect_timeout``: DNS resolution + TCP connect + TLS handshake.
    - ``read_timeout``: the longest wait for the next bytes of a response.
    - ``total_timeout``: the whole request including redirects (a request's
      ``timeout=`` argument overrides it for that request).
    - ``max_body_bytes``: body bytes kept in memory (after decompression); the
      rest is read, counted and discarded and ``response.truncated`` is set.
    - ``scope``: the run's target scope guard; every new connection (redirect
      hops included) is checked by name before resolution and by address
      after it. ``None`` only where no run is configured (library use, tests).
    - ``connections``: the run's cap on open connections (shared, mutable
      counter); ``None``: no cap.
    """

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0
    max_redirects: int = 10
    max_body_bytes: int = 10 * 1024 * 1024
    verify_tls: bool = True
    ca_file: str | None = None
    user_agent: str = field(default_factory=default_user_agent)
    max_connections_per_origin: int = 6
    scope: ScopeGuard | None = None
    connections: ConnectionBudget | None = None

    def __post_init__(self) -> None:
        for label in ("connect_timeout", "read_timeout", "total_timeout"):
            value = getattr(self, label)
            if not value > 0:
                raise ConfigError(f"http {label} must be > 0 seconds, got {value!r}")
        if self.max_redirects < 0:
            raise ConfigError(f"http max_redirects must be >= 0, got {self.max_redirects!r}")
        if self.max_body_bytes < 0:
            raise ConfigError(f"http max_body_bytes must be >= 0, got {self.max_body_bytes!r}")
        if self.max_connections_per_origin < 1:
            raise ConfigError(
                "http max_connections_per_origin must be >= 1, "
                f"got {self.max_connections_per_origin!r}"
            )
        if any(c in self.user_agent for c in "\r\n\x00"):
            raise ConfigError("http user_agent must not contain control characters")

    # Immutable and shared on purpose (scope and connection budget are the run's own):
    # a copy is the object itself. Defined here, not inherited, because a compiled
    # build's frozen dataclass cannot be copied field by field.
    def __copy__(self) -> HttpOptions:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> HttpOptions:
        return self


class TlsContexts:
    """Builds each client :class:`ssl.SSLContext` once and shares it.

    Not thread-safe: use one instance per event loop (one per worker process).
    """

    __slots__ = ("_contexts",)

    def __init__(self) -> None:
        self._contexts: dict[tuple[bool, str | None], ssl.SSLContext] = {}

    def get(self, verify_tls: bool, ca_file: str | None = None) -> ssl.SSLContext:
        """The shared context for these settings (built on first use).

        Raises :class:`ConfigError` when ``ca_file`` cannot be loaded.
        """
        key = (verify_tls, ca_file if verify_tls else None)
        context = self._contexts.get(key)
        if context is None:
            context = _build_context(verify_tls, key[1])
            self._contexts[key] = context
        return context

    def for_options(self, options: HttpOptions) -> ssl.SSLContext:
        """The shared context for ``options.verify_tls`` and ``options.ca_file``."""
        return self.get(options.verify_tls, options.ca_file)


def _build_context(verify_tls: bool, ca_file: str | None) -> ssl.SSLContext:
    if verify_tls:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if ca_file is not None:
            try:
                context.load_verify_locations(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot load TLS ca_file {ca_file!r}: {exc}") from None
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context
