"""The target scope guard in the real client: refused targets get no packet, the run goes on.

Forbidden targets here are themselves loopback listeners (127.0.0.2, 127.0.0.3)
outside the allow-list, so that even a broken guard sends nothing off this
machine, and their counters prove that nothing arrived. Name resolution is
stubbed (``connector.resolve``) to play DNS rebinding.
"""

from __future__ import annotations

from urllib.parse import quote

from tests.support.target import serve

from phalanx.core.results import ErrorKind
from phalanx.http import connector
from phalanx.http.url import Origin
from phalanx.security.scope import ScopeGuard


async def test_redirect_to_a_forbidden_host_is_refused_and_nothing_arrives_there(
    target, make_session, recorder
):
    async with serve(host="127.0.0.2") as forbidden:
        guard = ScopeGuard.from_rules([], default_host_url=target.url)
        session = make_session(target.url, scope=guard)
        ok = await session.get("/items")
        hop = await session.get("/redirect-to?url=" + quote(f"{forbidden.url}/", safe=""),
                                name="hop")
        after = await session.get("/")
        assert forbidden.stats.connections == 0
    assert ok.status_code == 200
    assert after.status_code == 200  # the run goes on
    assert hop.error is not None
    assert hop.error.kind == ErrorKind.TARGET_NOT_ALLOWED
    assert "127.0.0.2" in hop.error.message
    assert recorder.kinds == [None, None, ErrorKind.TARGET_NOT_ALLOWED, None]


async def test_a_direct_request_outside_the_scope_is_not_sent(target, make_session, recorder):
    async with serve(host="127.0.0.3") as forbidden:
        guard = ScopeGuard.from_rules([target.url], default_host_url=None)
        session = make_session(target.url, scope=guard)
        response = await session.get(f"{forbidden.url}/items")
        assert forbidden.stats.connections == 0
    assert response.status_code == 0
    assert response.error is not None
    assert response.error.kind == ErrorKind.TARGET_NOT_ALLOWED


async def test_a_name_that_resolves_into_a_guarded_range_is_refused(
    target, make_session, monkeypatch
):
    async with serve(host="127.0.0.2") as rebound:

        async def rebinding_resolve(loop, host, port):  # type: ignore[no-untyped-def]
            return [(2, ("127.0.0.2", rebound.port))]  # AF_INET, the name now points here

        monkeypatch.setattr(connector, "resolve", rebinding_resolve)
        guard = ScopeGuard.from_rules([f"api.example.test:{rebound.port}"], default_host_url=None)
        session = make_session(f"http://api.example.test:{rebound.port}", scope=guard)
        response = await session.get("/")
        assert rebound.stats.connections == 0
    assert response.error is not None
    assert response.error.kind == ErrorKind.TARGET_NOT_ALLOWED


async def test_an_explicit_address_rule_lets_a_resolved_name_through(make_session, monkeypatch):
    async with serve(host="127.0.0.2") as allowed:

        async def resolve_to_allowed(loop, host, port):  # type: ignore[no-untyped-def]
            return [(2, ("127.0.0.2", allowed.port))]

        monkeypatch.setattr(connector, "resolve", resolve_to_allowed)
        guard = ScopeGuard.from_rules(
            [f"api.example.test:{allowed.port}", f"127.0.0.2:{allowed.port}"],
            default_host_url=None,
        )
        session = make_session(f"http://api.example.test:{allowed.port}", scope=guard)
        response = await session.get("/")
        assert allowed.stats.connections == 1
    assert response.status_code == 200


async def test_without_a_guard_every_address_is_admitted() -> None:
    addresses: list[connector.ResolvedAddress] = [(2, ("127.0.0.9", 1))]
    origin = Origin("http", "example.test", 1)
    assert connector.admit_addresses(origin, addresses, None) == addresses
