"""The target scope guard: which hosts, addresses and ports a run may hit.

Pure: no I/O, no name resolution. The HTTP client resolves names itself and
asks the guard twice:

1. :meth:`ScopeGuard.check_url` / :meth:`ScopeGuard.check_host` judge the
   URL's host before anything is resolved (refuses early, with the reason).
2. :meth:`ScopeGuard.check_address` judges each resolved address right
   before connecting to it. The address judged is the address connected to,
   so DNS rebinding cannot slip a forbidden address past the guard.

Rules (``--allow-target``), parsed by :meth:`ScopeRule.parse`:

===============================  ============================================
``api.example.com[:port]``       that host name only (IDNA, lower-cased,
                                 one trailing dot dropped)
``*.staging.example.com[:port]`` sub-domains at any depth, NOT the apex;
                                 at least two labels after ``*.`` (``*.com``
                                 is refused as over-broad)
``10.1.2.3[:port]``              one IPv4 address (dotted quad only)
``10.0.0.0/8[:port]``            an IPv4 CIDR (no host bits set)
``::1`` / ``[::1][:port]``       one IPv6 address (brackets for a port)
``fd00::/8`` /                   an IPv6 CIDR (brackets for a port)
``[fd00::]/8[:port]``
``https://api.example.com:8443`` host and port of a URL (port defaults to
                                 80/443 by scheme; the path is ignored)
===============================  ============================================

A rule without a port allows every port. With no rules, the guard allows
only the run's default host (``--host``): its host and port.

Host judgement (the same for URLs and for ``check_address``'s host):

- only ``http``/``https`` URLs; the host is the one the client really
  connects to: ``http://allowed@evil/`` is judged as ``evil``; a backslash in
  the authority (``http://allowed\\@evil``), which parsers disagree about, is
  refused; so are control characters and IPv6 zone ids (``fe80::1%eth0``);
- a host whose last label is a number (``2130706433``, ``0x7f.1``,
  ``0177.0.0.1``, ``127.1``) is an IPv4 address attempt: it is decoded the
  way ``inet_aton`` (the C resolver) and browsers decode it, and judged as
  that address by IP rules; if it does not decode, it is refused;
- IPv4-mapped IPv6 (``::ffff:a.b.c.d``) is judged as the IPv4 address;
- a name matches only name/wildcard rules, an IP literal only IP/CIDR rules
  (``http://localhost`` needs a ``localhost`` rule, not ``127.0.0.1``).

Guarded addresses: an address in one of these ranges is refused unless an
IP/CIDR rule that lies *inside* that range allows it (``169.254.169.254``
unlocks the metadata address; ``0.0.0.0/0`` or a host-name rule never does):

- always forbidden: ``0.0.0.0/8`` (this network), ``169.254.0.0/16``
  (link-local; AWS/GCP/Azure metadata ``169.254.169.254``),
  ``100.100.100.200`` (Alibaba metadata), ``192.0.0.192`` (Oracle metadata),
  ``224.0.0.0/4`` (multicast), ``240.0.0.0/4`` (reserved, incl. the broadcast
  ``255.255.255.255``), ``::`` (unspecified), ``fe80::/10`` (link-local),
  ``fd00:ec2::254`` (AWS metadata over IPv6), ``ff00::/8`` (multicast),
  ``64:ff9b:1::/48`` (local-use NAT64: the embedded address cannot be
  located, so it is refused as a whole);
- IPv6 forms that carry a guarded IPv4 address (IPv4-compatible ``::/96``,
  NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo ``2001::/32``) are
  guarded like that IPv4 address;
- loopback (``127.0.0.0/8``, ``::1``): allowed only by a rule inside
  loopback (``127.0.0.1:8089``, the default ``--host http://127.0.0.1:8089``),
  or for the host ``localhost`` matched by a ``localhost`` rule, whose
  resolved address must then be loopback.

A host name allowed by a name rule may resolve to any address that is not
guarded (private ranges included: staging targets often live there).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Decision", "RuleKind", "ScopeGuard", "ScopeRule", "normalize_host"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_NUMBER_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")
_BRACKETED = re.compile(r"\[(?P<inner>[^\]]*)\](?:/(?P<prefix>[0-9]{1,3}))?(?::(?P<port>[^:]*))?\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_HOST_LENGTH = 253
_MIN_WILDCARD_LABELS = 2


def _net(text: str) -> IPNetwork:
    return ipaddress.ip_network(text)


_LOOPBACK: tuple[IPNetwork, ...] = (_net("127.0.0.0/8"), _net("::1/128"))
_FORBIDDEN: tuple[tuple[IPNetwork, str], ...] = (
    (_net("0.0.0.0/8"), "in 'this network' 0.0.0.0/8"),
    (_net("169.254.0.0/16"), "link-local / cloud metadata"),
    (_net("100.100.100.200/32"), "cloud metadata (Alibaba)"),
    (_net("192.0.0.192/32"), "cloud metadata (Oracle)"),
    (_net("224.0.0.0/4"), "multicast"),
    (_net("240.0.0.0/4"), "reserved / broadcast"),
    (_net("::/128"), "the unspecified address"),
    (_net("fe80::/10"), "link-local"),
    (_net("fd00:ec2::254/128"), "cloud metadata (AWS, IPv6)"),
    (_net("ff00::/8"), "multicast"),
    (_net("64:ff9b:1::/48"), "local-use NAT64"),
)
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


@dataclass(frozen=True, slots=True)
class Decision:
    """The guard's answer. ``rule`` is the rule (or the built-in guarded range)
    that allowed or refused, ``None`` when nothing matched; ``reason`` is a
    sentence for the error table (it names the host, never credentials)."""

    allowed: bool
    rule: str | None
    reason: str


class RuleKind(enum.Enum):
    NAME = "name"
    WILDCARD = "wildcard"
    NETWORK = "network"


@dataclass(frozen=True, slots=True)
class ScopeRule:
    """One allow-list entry. ``text`` is the rule as written; ``host`` is the
    normalised name (NAME) or the suffix after ``*.`` (WILDCARD); ``network``
    is set for NETWORK rules (a single address is a /32 or /128); ``port``
    ``None`` allows every port."""

    text: str
    kind: RuleKind
    host: str | None
    network: IPNetwork | None
    port: int | None

    @classmethod
    def parse(cls, text: str) -> ScopeRule:
        """Parse one rule; raise ``ValueError`` naming the rule when invalid."""
        rule = text.strip()
        try:
            if not rule:
                raise ValueError("empty rule")
            if _CONTROL.search(rule) is not None or " " in rule:
                raise ValueError("whitespace or control characters")
            return _parse_rule(rule)
        except ValueError as exc:
            raise ValueError(f"invalid target rule {text!r}: {exc}") from None

    @property
    def is_localhost(self) -> bool:
        return self.kind is RuleKind.NAME and self.host == "localhost"

    def allows_port(self, port: int) -> bool:
        return self.port is None or self.port == port

    def matches_name(self, host: str) -> bool:
        """Whether a normalised host name matches (ports aside)."""
        if self.kind is RuleKind.NAME:
            return host == self.host
        if self.kind is RuleKind.WILDCARD:
            return host.endswith(f".{self.host}")
        return False

    def matches_ip(self, ip: IPAddress) -> bool:
        """Whether a canonical address (see :func:`normalize_host`) is in the network."""
        network = self.network
        return network is not None and network.version == ip.version and ip in network

    def names_range(self, guarded: IPNetwork) -> bool:
        """Whether this rule lies inside ``guarded`` (so it may unlock it)."""
        network = self.network
        if network is None or network.version != guarded.version:
            return False
        return network.subnet_of(guarded)  # type: ignore[arg-type]


def normalize_host(raw: str) -> str | IPAddress:
    """The host as the guard judges it: an address, or a lower-case ASCII name.

    Brackets are dropped, IPv4-mapped IPv6 becomes IPv4, legacy numeric IPv4
    forms are decoded, names are IDNA-encoded with Python's ``idna`` codec (the
    one the HTTP client uses) and lose one trailing dot. Raises ``ValueError``.
    """
    host = raw
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        if "%" in host:
            raise ValueError(f"IPv6 zone ids are not allowed ({host!r})")
        try:
            return _canonical(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValueError(f"invalid IPv6 address {host!r}") from None
    if not host:
        raise ValueError("empty host")
    host = host.lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"invalid international host name {raw!r}") from None
    if host.endswith("."):
        host = host[:-1]
    if not host or len(host) > _MAX_HOST_LENGTH:
        raise ValueError(f"invalid host name {raw!r}")
    address = _legacy_ipv4(host)
    if address is not None:
        return address
    if not all(_LABEL.match(label) for label in host.split(".")):
        raise ValueError(f"invalid host name {raw!r}")
    return host


class ScopeGuard:
    """An immutable allow-list; every method is a pure function of its rules."""

    __slots__ = ("_name_rules", "_network_rules", "rules")

    def __init__(self, rules: Sequence[ScopeRule]) -> None:
        self.rules: tuple[ScopeRule, ...] = tuple(rules)
        self._name_rules = tuple(r for r in self.rules if r.network is None)
        self._network_rules = tuple(r for r in self.rules if r.network is not None)

    @classmethod
    def from_rules(cls, rules: Sequence[str], *, default_host_url: str | None) -> ScopeGuard:
        """Parse ``rules``; with none, allow only ``default_host_url``'s host and
        port. With neither, the guard refuses everything. ``ValueError`` on a bad rule."""
        parsed = [ScopeRule.parse(rule) for rule in rules]
        if not parsed and default_host_url is not None:
            try:
                parsed = [ScopeRule.parse(default_host_url)]
            except ValueError as exc:
                raise ValueError(f"default host: {exc}") from None
        return cls(parsed)

    def check_url(self, url: str) -> Decision:
        """Judge a URL's scheme, host and port (before name resolution)."""
        try:
            host, port = _url_host_port(url)
        except ValueError as exc:
            return Decision(False, None, f"invalid URL: {exc}")
        return self.check_host(host, port)

    def check_host(self, host: str, port: int) -> Decision:
        """Judge a host (name or address literal) and port, before resolution."""
        return self._judge_host(host, port)[0]

    def check_address(self, host: str, port: int, ip: str) -> Decision:
        """Judge connecting to ``ip`` (resolved from ``host``) on ``port``."""
        decision, via = self._judge_host(host, port)
        if not decision.allowed:
            return decision
        try:
            address = normalize_host(ip)
        except ValueError as exc:
            return Decision(False, None, f"refused resolved address: {exc}")
        if isinstance(address, str):
            return Decision(False, None, f"resolved address {ip!r} is not an IP address")
        return self._judge_ip(address, port, via)

    def _judge_host(self, raw: str, port: int) -> tuple[Decision, ScopeRule | None]:
        if not 0 < port < 65536:
            return Decision(False, None, f"port {port} out of range"), None
        if not self.rules:
            reason = "no target is allowed: give --host or --allow-target"
            return Decision(False, None, reason), None
        try:
            host = normalize_host(raw)
        except ValueError as exc:
            return Decision(False, None, f"refused host: {exc}"), None
        if not isinstance(host, str):
            return self._judge_ip(host, port, None), None
        wrong_port: ScopeRule | None = None
        for rule in self._name_rules:
            if rule.matches_name(host):
                if rule.allows_port(port):
                    return Decision(True, rule.text, f"{host} allowed by {rule.text!r}"), rule
                wrong_port = wrong_port or rule
        if wrong_port is not None:
            reason = f"port {port} of {host} is not allowed (rule {wrong_port.text!r})"
            return Decision(False, wrong_port.text, reason), None
        return Decision(False, None, f"{host} is not in the target allow-list"), None

    def _judge_ip(self, ip: IPAddress, port: int, via: ScopeRule | None) -> Decision:
        if via is not None and via.is_localhost and not _is_loopback(ip):
            return Decision(False, via.text, f"localhost resolved to {ip}, which is not loopback")
        guarded = _guarded_range(ip)
        if guarded is not None:
            network, label = guarded
            if via is not None and via.is_localhost and network in _LOOPBACK:
                return Decision(True, via.text, f"localhost ({ip}) allowed by {via.text!r}")
            for rule in self._network_rules:
                if rule.matches_ip(ip) and rule.allows_port(port) and rule.names_range(network):
                    return Decision(True, rule.text, f"{ip} allowed by {rule.text!r}")
            reason = (
                f"{ip} is {label} ({network}); refused unless an IP/CIDR rule inside "
                f"{network} allows it"
            )
            return Decision(False, str(network), reason)
        if via is not None:
            return Decision(True, via.text, f"{ip} allowed by {via.text!r}")
        wrong_port: ScopeRule | None = None
        for rule in self._network_rules:
            if rule.matches_ip(ip):
                if rule.allows_port(port):
                    return Decision(True, rule.text, f"{ip} allowed by {rule.text!r}")
                wrong_port = wrong_port or rule
        if wrong_port is not None:
            reason = f"port {port} of {ip} is not allowed (rule {wrong_port.text!r})"
            return Decision(False, wrong_port.text, reason)
        return Decision(False, None, f"{ip} is not in the target allow-list")


def _is_loopback(ip: IPAddress) -> bool:
    return any(ip.version == net.version and ip in net for net in _LOOPBACK)


def _guarded_range(ip: IPAddress) -> tuple[IPNetwork, str] | None:
    """The guarded network ``ip`` lies in and what it is, or ``None``."""
    for net in _LOOPBACK:
        if ip.version == net.version and ip in net:
            return net, "loopback"
    for net, label in _FORBIDDEN:
        if ip.version == net.version and ip in net:
            return net, label
    if isinstance(ip, ipaddress.IPv6Address):
        for form, embedded in _embedded_ipv4(ip):
            inner = _guarded_range(embedded)
            if inner is not None:
                single = ipaddress.IPv6Network(ip)
                return single, f"{form} of {embedded} ({inner[1]})"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_COMPATIBLE:
        found.append(("an IPv4-compatible form", low32))
    if ip in _NAT64:
        found.append(("the NAT64 form", low32))
    if ip.sixtofour is not None:
        found.append(("the 6to4 form", ip.sixtofour))
    if ip.teredo is not None:
        server, client = ip.teredo
        found.extend([("the Teredo form", server), ("the Teredo form", client)])
    return found


def _canonical(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:
            raise ValueError(f"IPv6 zone ids are not allowed ({ip})")
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
    return ip


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Decode ``host`` as ``inet_aton`` would when its last label is a number.

    ``None`` when the host is a name; ``ValueError`` when it is an address
    attempt that does not decode (``256.1.1.1``, ``1.2.3.4.5``, ``08.1.1.1``).
    """
    labels = host.split(".")
    if _NUMBER_LABEL.match(labels[-1]) is None:
        return None
    if len(labels) > 4:
        raise ValueError(f"invalid IPv4 address {host!r}")
    numbers = [_inet_aton_part(label, host) for label in labels]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 1 << (8 * (5 - len(numbers))):
        raise ValueError(f"invalid IPv4 address {host!r}")
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _inet_aton_part(label: str, host: str) -> int:
    try:
        if label.startswith("0x"):
            return int(label[2:] or "0", 16)
        if len(label) > 1 and label.startswith("0"):
            return int(label, 8)
        return int(label, 10)
    except ValueError:
        raise ValueError(f"invalid IPv4 address {host!r}") from None


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _url_host_port(url: str) -> tuple[str, int]:
    """The (host, port) an http(s) URL connects to. Never echoes the URL."""
    url = url.strip()
    if _CONTROL.search(url) is not None:
        raise ValueError("control characters in URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("malformed host or port") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"scheme {scheme!r} is not allowed (http or https only)")
    if "\\" in parts.netloc:
        raise ValueError("backslash in the URL authority")
    host = parts.hostname
    if not host:
        raise ValueError("no host")
    if port is None:
        port = _default_port(scheme)
    elif port == 0:
        raise ValueError("port 0")
    return host, port


def _parse_port(text: str) -> int:
    if _PORT.match(text) is None or not 0 < int(text) < 65536:
        raise ValueError(f"invalid port {text!r}")
    return int(text)


def _parse_rule(rule: str) -> ScopeRule:
    if "://" in rule:
        parts = urlsplit(rule)
        if parts.username is not None or parts.password is not None:
            raise ValueError("user info is not allowed in a rule")
        host, url_port = _url_host_port(rule)
        if ":" in host:
            host = f"[{host}]"
        return _host_rule(rule, host, url_port)
    bracketed = _BRACKETED.match(rule)
    if bracketed is not None:
        port: int | None = None
        if bracketed["port"] is not None:
            port = _parse_port(bracketed["port"])
        inner = bracketed["inner"]
        if bracketed["prefix"] is not None:
            inner = f"{inner}/{bracketed['prefix']}"
        return _network_rule(rule, inner, port, ipv6=True)
    if rule.startswith("["):
        raise ValueError("malformed bracketed IPv6 address")
    if rule.count(":") >= 2:
        return _network_rule(rule, rule, None, ipv6=True)
    host, colon, port_text = rule.partition(":")
    port = _parse_port(port_text) if colon else None
    if "/" in host:
        return _network_rule(rule, host, port, ipv6=False)
    return _host_rule(rule, host, port)


def _host_rule(rule: str, host: str, port: int | None) -> ScopeRule:
    if host.startswith("*."):
        suffix = normalize_host(host[2:])
        if not isinstance(suffix, str):
            raise ValueError("a wildcard applies to host names, not addresses")
        if len(suffix.split(".")) < _MIN_WILDCARD_LABELS:
            raise ValueError("wildcard too broad: name at least two labels after '*.'")
        return ScopeRule(rule, RuleKind.WILDCARD, suffix, None, port)
    if "*" in host:
        raise ValueError("a wildcard is allowed only as a leading '*.'")
    if not host.startswith("[") and _is_noncanonical_ipv4(host):
        raise ValueError("write IPv4 addresses as dotted quads (e.g. 10.0.0.1)")
    normalized = normalize_host(host)
    if isinstance(normalized, str):
        return ScopeRule(rule, RuleKind.NAME, normalized, None, port)
    return ScopeRule(rule, RuleKind.NETWORK, None, ipaddress.ip_network(normalized), port)


def _is_noncanonical_ipv4(host: str) -> bool:
    stripped = host.lower().removesuffix(".")
    if not stripped.isascii() or _NUMBER_LABEL.match(stripped.split(".")[-1]) is None:
        return False
    try:
        ipaddress.IPv4Address(stripped)
    except ValueError:
        return True
    return False


def _network_rule(rule: str, text: str, port: int | None, *, ipv6: bool) -> ScopeRule:
    if "%" in text:
        raise ValueError("IPv6 zone ids are not allowed")
    try:
        network: IPNetwork = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ValueError(f"not an IP address or CIDR ({exc})") from None
    if (network.version == 6) != ipv6:
        raise ValueError("brackets are only for IPv6" if ipv6 else "expected an IPv4 CIDR")
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None  # noqa: S101 - inside ::ffff:0:0/96
        network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return ScopeRule(rule, RuleKind.NETWORK, None, network, port)
