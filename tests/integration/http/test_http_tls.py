"""TLS: verified by default; a self-signed target needs its CA or verify_tls=False."""

from __future__ import annotations

from phalanx.core.results import ErrorKind
from phalanx.http import TlsContexts


async def test_self_signed_target_is_refused_by_default(tls_target, make_session, recorder):
    session = make_session(tls_target.url)

    response = await session.get("/")

    assert response.error is not None
    assert response.error.kind == ErrorKind.TLS
    assert recorder.kinds == [ErrorKind.TLS]


async def test_ca_file_makes_the_target_trusted(tls_target, make_session, recorder):
    session = make_session(tls_target.url, ca_file=tls_target.ca_file)

    responses = [await session.get("/items/1") for _ in range(3)]

    assert [r.json() for r in responses] == [{"id": 1}] * 3
    assert recorder.kinds == [None, None, None]
    assert tls_target.stats.connections == 1


async def test_verify_off_accepts_the_target(tls_target, make_session, recorder):
    session = make_session(tls_target.url, verify_tls=False)

    response = await session.get("/gzip")

    assert response.ok
    assert response.json()["compressed"] is True


async def test_missing_ca_file_is_a_tls_failure(tls_target, make_session, tmp_path, recorder):
    session = make_session(tls_target.url, ca_file=str(tmp_path / "missing.pem"))

    response = await session.get("/")

    assert response.error is not None
    assert response.error.kind == ErrorKind.TLS


def test_tls_contexts_are_built_once_per_setting(tmp_path):
    contexts = TlsContexts()

    verified = contexts.get(True)
    unverified = contexts.get(False)

    assert contexts.get(True) is verified
    assert contexts.get(False, "ignored-when-off.pem") is unverified
    assert unverified.check_hostname is False
    assert verified.check_hostname is True
