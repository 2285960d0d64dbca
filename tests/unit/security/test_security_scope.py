"""The target scope guard: rules, URL judgement, resolved-address judgement.

Pure: nothing here resolves a name or sends a packet.
"""

from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phalanx.security.scope import Decision, RuleKind, ScopeGuard, ScopeRule, normalize_host

RULES = [
    "api.example.com",
    "*.staging.example.com:8443",
    "10.0.0.0/8:443",
    "[fd00::]/8:443",
    "bücher.example",
    "203.0.113.7",
    "2001:db8::/32",
]
GUARD = ScopeGuard.from_rules(RULES, default_host_url=None)


def allowed(decision: Decision) -> bool:
    return decision.allowed


# --- rule parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "host", "network", "port"),
    [
        ("api.example.com", RuleKind.NAME, "api.example.com", None, None),
        ("API.Example.COM.", RuleKind.NAME, "api.example.com", None, None),
        ("api.example.com:8443", RuleKind.NAME, "api.example.com", None, 8443),
        ("bücher.example", RuleKind.NAME, "xn--bcher-kva.example", None, None),
        ("localhost", RuleKind.NAME, "localhost", None, None),
        ("*.staging.example.com", RuleKind.WILDCARD, "staging.example.com", None, None),
        ("*.co.uk:443", RuleKind.WILDCARD, "co.uk", None, 443),
        ("10.1.2.3", RuleKind.NETWORK, None, "10.1.2.3/32", None),
        ("10.1.2.3:80", RuleKind.NETWORK, None, "10.1.2.3/32", 80),
        ("10.0.0.0/8", RuleKind.NETWORK, None, "10.0.0.0/8", None),
        ("10.0.0.0/8:443", RuleKind.NETWORK, None, "10.0.0.0/8", 443),
        ("::1", RuleKind.NETWORK, None, "::1/128", None),
        ("[::1]", RuleKind.NETWORK, None, "::1/128", None),
        ("[::1]:8080", RuleKind.NETWORK, None, "::1/128", 8080),
        ("fd00::/8", RuleKind.NETWORK, None, "fd00::/8", None),
        ("[fd00::]/8:443", RuleKind.NETWORK, None, "fd00::/8", 443),
        ("[fd00::/8]:443", RuleKind.NETWORK, None, "fd00::/8", 443),
        ("::ffff:10.0.0.1", RuleKind.NETWORK, None, "10.0.0.1/32", None),
        ("::ffff:10.0.0.0/104", RuleKind.NETWORK, None, "10.0.0.0/8", None),
        ("https://api.example.com:8443", RuleKind.NAME, "api.example.com", None, 8443),
        ("https://api.example.com", RuleKind.NAME, "api.example.com", None, 443),
        ("http://api.example.com/some/path", RuleKind.NAME, "api.example.com", None, 80),
        ("http://[::1]:8089", RuleKind.NETWORK, None, "::1/128", 8089),
        ("http://127.0.0.1:8089", RuleKind.NETWORK, None, "127.0.0.1/32", 8089),
    ],
)
def test_rule_parses_to_kind_host_network_and_port(
    text: str, kind: RuleKind, host: str | None, network: str | None, port: int | None
) -> None:
    rule = ScopeRule.parse(text)
    assert rule.text == text
    assert rule.kind is kind
    assert rule.host == host
    assert rule.network == (ipaddress.ip_network(network) if network else None)
    assert rule.port == port


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty rule"),
        ("   ", "empty rule"),
        ("*.com", "wildcard too broad"),
        ("*", "leading '*.'"),
        ("*.*.example.com", "invalid host name"),
        ("api.*.example.com", "leading '*.'"),
        ("*.10.0.0.1", "not addresses"),
        ("10.0.0.1/8", "host bits set"),
        ("10.0.0.0/33", "not an IP address or CIDR"),
        ("api.example.com:0", "invalid port"),
        ("api.example.com:65536", "invalid port"),
        ("api.example.com:http", "invalid port"),
        ("[::1]:x", "invalid port"),
        ("[::1", "malformed bracketed"),
        ("[zz::1]", "not an IP address"),
        ("[10.0.0.1]", "only for IPv6"),
        ("fe80::1%eth0", "zone ids"),
        ("127.1", "dotted quads"),
        ("2130706433", "dotted quads"),
        ("0x7f.0.0.1", "dotted quads"),
        ("bad_host!.example", "invalid host name"),
        ("api example.com", "whitespace"),
        ("http://user:pw@api.example.com", "user info"),
        ("ftp://api.example.com", "scheme"),
        ("-bad.example.com", "invalid host name"),
    ],
)
def test_invalid_rule_raises_value_error_naming_the_rule(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        ScopeRule.parse(text)
    assert repr(text) in str(info.value)


def test_from_rules_reports_the_bad_rule() -> None:
    with pytest.raises(ValueError, match=r"'\*\.com'"):
        ScopeGuard.from_rules(["api.example.com", "*.com"], default_host_url=None)


def test_bad_default_host_is_reported_as_the_default_host() -> None:
    with pytest.raises(ValueError, match="default host"):
        ScopeGuard.from_rules([], default_host_url="ftp://x.example")


# --- default host ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("default", "url", "expected"),
    [
        ("https://api.example.com", "https://api.example.com/x", True),
        ("https://api.example.com", "https://api.example.com:443/x", True),
        ("https://api.example.com", "http://api.example.com/x", False),
        ("https://api.example.com", "https://api.example.com:8443/", False),
        ("https://api.example.com", "https://www.example.com/", False),
        ("http://api.example.com", "http://api.example.com:80/", True),
        ("http://api.example.com:8080/base/", "http://api.example.com:8080/other", True),
        ("http://127.0.0.1:8089", "http://127.0.0.1:8089/", True),
        ("http://127.0.0.1:8089", "http://127.0.0.2:8089/", False),
        ("http://127.0.0.1:8089", "http://127.0.0.1:8090/", False),
        ("http://127.0.0.1:8089", "http://localhost:8089/", False),
        ("http://localhost:8089", "http://localhost:8089/", True),
        ("http://localhost:8089", "http://127.0.0.1:8089/", False),
    ],
)
def test_without_rules_only_the_default_host_and_port_are_allowed(
    default: str, url: str, expected: bool
) -> None:
    guard = ScopeGuard.from_rules([], default_host_url=default)
    assert guard.check_url(url).allowed is expected


def test_rules_replace_the_default_host() -> None:
    guard = ScopeGuard.from_rules(["other.example"], default_host_url="http://api.example.com")
    assert not guard.check_url("http://api.example.com/").allowed
    assert guard.check_url("http://other.example/").allowed


def test_no_rules_and_no_default_host_refuses_everything_with_advice() -> None:
    guard = ScopeGuard.from_rules([], default_host_url=None)
    decision = guard.check_url("http://api.example.com/")
    assert not decision.allowed
    assert "--allow-target" in decision.reason
    assert not guard.check_address("api.example.com", 80, "203.0.113.1").allowed


# --- URL judgement --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected", "rule"),
    [
        ("http://api.example.com/", True, "api.example.com"),
        ("https://api.example.com:9999/x?y#z", True, "api.example.com"),
        ("HTTP://API.EXAMPLE.COM/", True, "api.example.com"),
        ("http://api.example.com./", True, "api.example.com"),
        ("http://api.example.com../", False, None),
        ("http://www.example.com/", False, None),
        ("http://example.com/", False, None),
        ("http://api.example.com.evil.com/", False, None),
        ("http://evilapi.example.com/", False, None),
        # wildcards: any depth below the suffix, not the apex, port must match
        ("https://a.staging.example.com:8443/", True, "*.staging.example.com:8443"),
        ("https://a.b.c.staging.example.com:8443/", True, "*.staging.example.com:8443"),
        ("https://staging.example.com:8443/", False, None),
        ("https://a.staging.example.com/", False, "*.staging.example.com:8443"),
        ("https://xstaging.example.com:8443/", False, None),
        # IDNA: unicode and punycode are the same host
        ("http://bücher.example/", True, "bücher.example"),
        ("http://BÜCHER.example./", True, "bücher.example"),
        ("http://xn--bcher-kva.example/", True, "bücher.example"),
        ("http://XN--BCHER-KVA.EXAMPLE/", True, "bücher.example"),
        ("http://bucher.example/", False, None),
        # IP literals match IP rules only
        ("https://10.1.2.3/", True, "10.0.0.0/8:443"),
        ("http://10.1.2.3/", False, "10.0.0.0/8:443"),
        ("https://11.0.0.1/", False, None),
        ("http://203.0.113.7:1234/", True, "203.0.113.7"),
        ("http://203.0.113.8/", False, None),
        ("https://[fd00::1]/", True, "[fd00::]/8:443"),
        ("https://[fd00::1]:444/", False, "[fd00::]/8:443"),
        ("https://[FD12:3456::1]/", True, "[fd00::]/8:443"),
        ("http://[2001:db8::42]:81/", True, "2001:db8::/32"),
        ("http://[2001:db9::42]/", False, None),
        ("http://[::ffff:203.0.113.7]/", True, "203.0.113.7"),
        ("http://[::ffff:cb00:7107]/", True, "203.0.113.7"),
        # userinfo and parser-confusion tricks are judged by the real host
        ("http://api.example.com@evil.com/", False, None),
        ("http://api.example.com:80@evil.com/", False, None),
        ("http://u:p@api.example.com/", True, "api.example.com"),
        ("http://a@b@evil.com/", False, None),
        ("http://evil.com#@api.example.com/", False, None),
        ("http://evil.com?@api.example.com/", False, None),
        ("http://evil.com/@api.example.com/", False, None),
        ("http://api.example.com\\@evil.com/", False, None),
        ("http://evil.com\\.api.example.com/", False, None),
        ("http://api.example.com\t@evil.com/", False, None),
        ("http://api.exa\nmple.com/", False, None),
        ("http://%61pi.example.com/", False, None),
        ("http://api.example.com%2f@evil.com/", False, None),
        ("http://api.example.com%00.evil.com/", False, None),
        # schemes and malformed URLs
        ("ftp://api.example.com/", False, None),
        ("file:///etc/passwd", False, None),
        ("javascript:alert(1)", False, None),
        ("//api.example.com/", False, None),
        ("api.example.com", False, None),
        ("http:///path", False, None),
        ("http://api.example.com:0/", False, None),
        ("http://api.example.com:65536/", False, None),
        ("http://api.example.com:-1/", False, None),
        ("http://api.example.com:8a/", False, None),
        ("http://[::1/", False, None),
        ("http://[fe80::1%25eth0]/", False, None),
        ("http://[fe80::1%eth0]/", False, None),
    ],
)
def test_check_url_judges_the_real_host_and_port(
    url: str, expected: bool, rule: str | None
) -> None:
    decision = GUARD.check_url(url)
    assert decision.allowed is expected, decision
    assert decision.rule == rule
    assert decision.reason


def test_refusal_reason_never_contains_url_credentials() -> None:
    decision = GUARD.check_url("http://user:hunter2secret@evil.com/?token=abc")
    assert not decision.allowed
    assert "hunter2secret" not in decision.reason
    assert "abc" not in decision.reason
    assert "evil.com" in decision.reason


def test_port_mismatch_names_the_rule_and_port() -> None:
    decision = GUARD.check_url("http://a.staging.example.com:8080/")
    assert decision.rule == "*.staging.example.com:8443"
    assert "port 8080" in decision.reason


# --- legacy numeric IPv4 forms: decoded as inet_aton does -----------------------------------


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7F.0x0.0x0.0x1", "127.0.0.1"),
        ("169.254.43518", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("2852039166", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("10.0x10203", "10.1.2.3"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("1.2.3.4.", "1.2.3.4"),
    ],
)
def test_numeric_hosts_are_decoded_like_inet_aton(host: str, address: str) -> None:
    assert normalize_host(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "host",
    [
        "256.1.1.1",
        "1.2.3.256",
        "1.2.65536",
        "4294967296",
        "1.2.3.4.5",
        "08.1.1.1",
        "1..2",
        "0x1g.1",
        "example.123",
        "foo.0x10",
    ],
)
def test_malformed_numeric_hosts_are_refused(host: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        normalize_host(host)
    assert not GUARD.check_url(f"http://{host}/").allowed


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://0xa9fea9fe/",
        "http://169.254.43518/",
        "http://0/",
    ],
)
def test_numeric_forms_of_guarded_addresses_are_refused_even_with_broad_rules(url: str) -> None:
    guard = ScopeGuard.from_rules(["0.0.0.0/0", "*.example.com"], default_host_url=None)
    decision = guard.check_url(url)
    assert not decision.allowed
    assert decision.rule in ("127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/8")


def test_numeric_form_matches_the_ip_rule_of_its_address() -> None:
    guard = ScopeGuard.from_rules(["10.1.2.3"], default_host_url=None)
    assert guard.check_url("http://167838211/").allowed
    assert guard.check_url("http://10.0x10203/").allowed


# --- guarded ranges -------------------------------------------------------------------------

METADATA_AND_FORBIDDEN = [
    ("169.254.169.254", "169.254.0.0/16"),
    ("169.254.0.1", "169.254.0.0/16"),
    ("100.100.100.200", "100.100.100.200/32"),
    ("192.0.0.192", "192.0.0.192/32"),
    ("0.0.0.0", "0.0.0.0/8"),
    ("0.1.2.3", "0.0.0.0/8"),
    ("224.0.0.1", "224.0.0.0/4"),
    ("239.255.255.250", "224.0.0.0/4"),
    ("255.255.255.255", "240.0.0.0/4"),
    ("::", "::/128"),
    ("fe80::1", "fe80::/10"),
    ("febf::1", "fe80::/10"),
    ("fd00:ec2::254", "fd00:ec2::254/128"),
    ("ff02::1", "ff00::/8"),
    ("64:ff9b:1::1", "64:ff9b:1::/48"),
    ("::ffff:169.254.169.254", "169.254.0.0/16"),
    ("::ffff:a9fe:a9fe", "169.254.0.0/16"),
    ("::ffff:100.100.100.200", "100.100.100.200/32"),
    ("::ffff:0.0.0.0", "0.0.0.0/8"),
    ("::169.254.169.254", "::a9fe:a9fe/128"),
    ("64:ff9b::169.254.169.254", "64:ff9b::a9fe:a9fe/128"),
    ("64:ff9b::100.100.100.200", "64:ff9b::6464:64c8/128"),
    ("2002:a9fe:a9fe::1", "2002:a9fe:a9fe::1/128"),
    ("2002:7f00:1::", "2002:7f00:1::/128"),
    ("2001:0:a9fe:a9fe::1", "2001:0:a9fe:a9fe::1/128"),
    ("2001:0:4136:e378:8000:63bf:5601:5601", "2001:0:4136:e378:8000:63bf:5601:5601/128"),
]


@pytest.mark.parametrize(("ip", "guarded"), METADATA_AND_FORBIDDEN)
def test_forbidden_addresses_are_refused_for_name_rules(ip: str, guarded: str) -> None:
    guard = ScopeGuard.from_rules(["api.example.com", "0.0.0.0/0", "::/0"], default_host_url=None)
    decision = guard.check_address("api.example.com", 443, ip)
    assert not decision.allowed
    assert decision.rule == guarded
    assert "refused unless" in decision.reason


@pytest.mark.parametrize(("ip", "guarded"), METADATA_AND_FORBIDDEN)
def test_forbidden_addresses_are_refused_as_literals_under_catch_all_cidrs(
    ip: str, guarded: str
) -> None:
    guard = ScopeGuard.from_rules(["0.0.0.0/0", "::/0"], default_host_url=None)
    decision = guard.check_url(f"http://[{ip}]/" if ":" in ip else f"http://{ip}/")
    assert not decision.allowed
    assert decision.rule == guarded


@pytest.mark.parametrize(
    ("rule", "host", "ip"),
    [
        ("169.254.169.254", "169.254.169.254", "169.254.169.254"),
        ("169.254.0.0/16:80", "169.254.1.1", "169.254.1.1"),
        ("[fd00:ec2::254]:80", "fd00:ec2::254", "fd00:ec2::254"),
        ("100.100.100.200", "100.100.100.200", "100.100.100.200"),
        ("169.254.169.254", "::ffff:169.254.169.254", "::ffff:169.254.169.254"),
        ("64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe"),
    ],
)
def test_an_explicit_ip_rule_inside_a_forbidden_range_unlocks_it(
    rule: str, host: str, ip: str
) -> None:
    guard = ScopeGuard.from_rules([rule], default_host_url=None)
    assert guard.check_address(host, 80, ip).allowed


def test_an_explicit_metadata_rule_unlocks_it_for_a_name_too() -> None:
    guard = ScopeGuard.from_rules(["metadata.internal", "169.254.169.254"], default_host_url=None)
    assert guard.check_address("metadata.internal", 80, "169.254.169.254").allowed
    assert not guard.check_address("metadata.internal", 80, "169.254.169.253").allowed


def test_a_cidr_wider_than_a_forbidden_range_does_not_unlock_it() -> None:
    guard = ScopeGuard.from_rules(["169.0.0.0/8", "fd00::/8"], default_host_url=None)
    assert guard.check_address("169.1.2.3", 80, "169.1.2.3").allowed
    assert not guard.check_address("169.254.169.254", 80, "169.254.169.254").allowed
    assert guard.check_address("fd00::1", 80, "fd00::1").allowed
    assert not guard.check_address("fd00:ec2::254", 80, "fd00:ec2::254").allowed


def test_an_unlocking_rule_still_checks_its_port() -> None:
    guard = ScopeGuard.from_rules(["169.254.169.254:80"], default_host_url=None)
    assert not guard.check_address("169.254.169.254", 8080, "169.254.169.254").allowed


# --- loopback and localhost -----------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "127.0.0.2",
        "127.255.255.254",
        "::1",
        "::ffff:127.0.0.1",
        "64:ff9b::127.0.0.1",
        "2002:7f00:1::1",
    ],
)
def test_name_rules_never_reach_loopback(ip: str) -> None:
    decision = GUARD.check_address("api.example.com", 443, ip)
    assert not decision.allowed
    assert "loopback" in decision.reason


def test_loopback_rule_allows_exactly_that_address_and_port() -> None:
    guard = ScopeGuard.from_rules([], default_host_url="http://127.0.0.1:8089")
    assert guard.check_address("127.0.0.1", 8089, "127.0.0.1").allowed
    assert not guard.check_address("127.0.0.2", 8089, "127.0.0.2").allowed
    assert not guard.check_address("127.0.0.3", 8089, "127.0.0.3").allowed
    assert not guard.check_address("127.0.0.1", 8090, "127.0.0.1").allowed
    assert not guard.check_address("::1", 8089, "::1").allowed


def test_localhost_rule_allows_localhost_resolving_to_loopback_only() -> None:
    guard = ScopeGuard.from_rules(["localhost:8089"], default_host_url=None)
    assert guard.check_address("localhost", 8089, "127.0.0.1").allowed
    assert guard.check_address("LOCALHOST.", 8089, "::1").allowed
    assert not guard.check_address("localhost", 8090, "127.0.0.1").allowed
    rebound = guard.check_address("localhost", 8089, "10.0.0.1")
    assert not rebound.allowed
    assert "not loopback" in rebound.reason
    assert not guard.check_address("localhost", 8089, "169.254.169.254").allowed
    assert not guard.check_url("http://127.0.0.1:8089/").allowed


def test_a_name_resolving_to_loopback_needs_an_explicit_loopback_rule() -> None:
    guard = ScopeGuard.from_rules(["app.test:8080", "127.0.0.1:8080"], default_host_url=None)
    assert guard.check_address("app.test", 8080, "127.0.0.1").allowed
    assert not guard.check_address("app.test", 8080, "127.0.0.2").allowed
    only_name = ScopeGuard.from_rules(["app.test:8080"], default_host_url=None)
    assert not only_name.check_address("app.test", 8080, "127.0.0.1").allowed


def test_localhost_name_matches_only_a_localhost_rule() -> None:
    guard = ScopeGuard.from_rules(["127.0.0.0/8", "*.example.com"], default_host_url=None)
    assert not guard.check_url("http://localhost/").allowed
    assert not guard.check_url("http://localhost.example/").allowed
    assert guard.check_url("http://127.0.0.5/").allowed


# --- check_address for ordinary addresses ---------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "ip", "expected"),
    [
        ("api.example.com", 443, "203.0.113.10", True),
        ("api.example.com", 443, "10.9.8.7", True),
        ("api.example.com", 443, "192.168.1.1", True),
        ("api.example.com", 443, "2001:db8::1", True),
        ("api.example.com.", 80, "198.51.100.1", True),
        ("evil.com", 443, "10.9.8.7", False),
        ("10.1.2.3", 443, "10.1.2.3", True),
        ("10.1.2.3", 80, "10.1.2.3", False),
        ("10.1.2.3", 443, "11.1.2.3", False),
        ("fd00::1", 443, "fd00::1", True),
        ("[fd00::1]", 443, "fd00::1", True),
        ("a.staging.example.com", 8443, "192.0.2.1", True),
        ("a.staging.example.com", 443, "192.0.2.1", False),
        ("api.example.com", 443, "fe80::1%eth0", False),
        ("api.example.com", 443, "not-an-ip", False),
        ("api.example.com", 443, "", False),
        ("api.example.com", 0, "203.0.113.10", False),
        ("api.example.com", 70000, "203.0.113.10", False),
    ],
)
def test_check_address_judges_the_connected_ip(
    host: str, port: int, ip: str, expected: bool
) -> None:
    assert GUARD.check_address(host, port, ip).allowed is expected


def test_check_host_matches_check_url() -> None:
    assert GUARD.check_host("api.example.com", 443) == GUARD.check_url("https://api.example.com/")
    assert not GUARD.check_host("evil.com", 443).allowed


def test_decision_is_frozen() -> None:
    decision = GUARD.check_url("http://api.example.com/")
    with pytest.raises(AttributeError):
        decision.allowed = False  # type: ignore[misc]


# --- properties -----------------------------------------------------------------------------

FORBIDDEN_NETWORKS = [
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",
        "127.0.0.0/8",
        "0.0.0.0/8",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "fe80::/10",
        "ff00::/8",
        "::1/128",
        "100.100.100.200/32",
        "192.0.0.192/32",
    )
]


@st.composite
def forbidden_ips(draw: st.DrawFn) -> str:
    network = draw(st.sampled_from(FORBIDDEN_NETWORKS))
    offset = draw(st.integers(min_value=0, max_value=network.num_addresses - 1))
    address = network.network_address + offset
    form = draw(st.sampled_from(["plain", "mapped", "nat64", "6to4"]))
    if address.version == 6 or form == "plain":
        return str(address)
    value = int(address)
    if form == "mapped":
        return str(ipaddress.IPv6Address((0xFFFF << 32) | value))
    if form == "nat64":
        return str(ipaddress.IPv6Address((0x64FF9B << 96) | value))
    return str(ipaddress.IPv6Address((0x2002 << 112) | (value << 80)))


@given(ip=forbidden_ips(), port=st.integers(min_value=1, max_value=65535))
def test_property_name_rules_never_allow_forbidden_addresses(ip: str, port: int) -> None:
    guard = ScopeGuard.from_rules(
        ["api.example.com", "*.example.com", "0.0.0.0/0", "::/0"], default_host_url=None
    )
    assert not guard.check_address("api.example.com", port, ip).allowed
    assert not guard.check_address("x.y.example.com", port, ip).allowed
    assert not guard.check_address(ip, port, ip).allowed


@given(value=st.integers(min_value=0, max_value=2**32 - 1))
def test_property_decimal_and_hex_forms_decode_to_the_same_address(value: int) -> None:
    expected = ipaddress.IPv4Address(value)
    assert normalize_host(str(value)) == expected
    assert normalize_host(hex(value)) == expected
    assert normalize_host(str(expected)) == expected


@given(url=st.text(max_size=60))
def test_property_check_url_never_raises_and_refuses_what_it_cannot_parse(url: str) -> None:
    decision = GUARD.check_url(url)
    assert isinstance(decision, Decision)
    if decision.allowed:
        assert decision.rule in RULES
