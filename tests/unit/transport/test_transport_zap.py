"""ZAP decisions (pure): allow-list keys only, User-Id is the key, refusals logged."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import zmq.asyncio
from zmq.utils import z85

from phalanx.transport import AllowEntry, AllowList, LinkLimits, fingerprint, generate_keypair
from phalanx.transport.allowlist import write_allow_list
from phalanx.transport.zap import (
    CurveAuthorizer,
    PlaintextAuthorizer,
    ZapRequest,
    ZapServer,
    parse_request,
)


def request(mechanism: bytes = b"CURVE", credentials: tuple[bytes, ...] = (),
            domain: bytes = b"phalanx") -> ZapRequest:
    return ZapRequest(b"id-1", domain, "127.0.0.1", mechanism, credentials)


@pytest.fixture
def allowed(tmp_path: Path) -> tuple[CurveAuthorizer, bytes]:
    key = generate_keypair().public
    path = tmp_path / "authorized_workers"
    write_allow_list(path, [AllowEntry(key, "w1")])
    return CurveAuthorizer(AllowList(path)), key


def test_a_key_on_the_allow_list_is_accepted_with_the_key_as_user_id(
        allowed: tuple[CurveAuthorizer, bytes]) -> None:
    authorizer, key = allowed
    verdict = authorizer.decide(request(credentials=(z85.decode(key),)), now=0.0)
    assert verdict.accepted
    assert verdict.user_id == key


def test_a_key_not_on_the_allow_list_is_refused_and_logged_by_fingerprint_once_a_minute(
        allowed: tuple[CurveAuthorizer, bytes], caplog: pytest.LogCaptureFixture) -> None:
    authorizer, _key = allowed
    rogue = generate_keypair().public
    with caplog.at_level(logging.WARNING, logger="phalanx.transport"):
        for now in (0.0, 1.0, 59.0, 61.0):
            assert not authorizer.decide(request(credentials=(z85.decode(rogue),)), now).accepted
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert all(fingerprint(rogue) in m and "127.0.0.1" in m for m in messages)
    assert authorizer.refused == 4


@pytest.mark.parametrize(
    "bad",
    [request(mechanism=b"NULL"), request(mechanism=b"PLAIN", credentials=(b"u", b"p")),
     request(credentials=()), request(credentials=(b"short",))],
    ids=["null", "plain", "no-key", "short-key"],
)
def test_anything_but_a_curve_key_is_refused(allowed: tuple[CurveAuthorizer, bytes],
                                             bad: ZapRequest) -> None:
    authorizer, _key = allowed
    assert not authorizer.decide(bad, now=0.0).accepted


def test_another_zap_domain_is_refused_even_with_an_allowed_key(
        allowed: tuple[CurveAuthorizer, bytes]) -> None:
    authorizer, key = allowed
    verdict = authorizer.decide(request(credentials=(z85.decode(key),), domain=b"x"), now=0.0)
    assert not verdict.accepted


def test_plaintext_authorizer_gives_each_connection_a_fresh_identity_and_refuses_curve() -> None:
    authorizer = PlaintextAuthorizer()
    first = authorizer.decide(request(mechanism=b"NULL"), now=0.0)
    second = authorizer.decide(request(mechanism=b"NULL"), now=0.0)
    assert first.user_id == b"plaintext-1"
    assert second.user_id == b"plaintext-2"
    assert not authorizer.decide(request(credentials=(b"k" * 32,)), now=0.0).accepted


def test_zap_requests_that_are_not_version_1_0_are_not_parsed() -> None:
    assert parse_request([b"1.0", b"id", b"phalanx", b"addr", b"", b"NULL"]) is not None
    assert parse_request([b"2.0", b"id", b"phalanx", b"addr", b"", b"NULL"]) is None
    assert parse_request([b"1.0", b"id"]) is None


def test_zap_server_answers_every_request_even_malformed_or_when_the_decision_fails() -> None:
    class Broken:
        refused = 0

        def decide(self, request: ZapRequest, now: float) -> object:
            raise RuntimeError("bug")

    context = zmq.asyncio.Context()
    try:
        server = ZapServer(context, Broken(), lambda: 0.0)  # type: ignore[arg-type]
        assert server.answer([b"1.0", b"rid"])[1:3] == [b"rid", b"400"]
        reply = server.answer([b"1.0", b"rid", b"phalanx", b"a", b"", b"NULL"])
        assert reply[1:3] == [b"rid", b"500"]
    finally:
        context.destroy(linger=0)


@pytest.mark.parametrize(
    "field", ["max_message_bytes", "send_hwm", "recv_hwm", "max_peers", "handshake_timeout"])
def test_link_limits_refuse_nonsense_values(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        LinkLimits(**{field: 0})
