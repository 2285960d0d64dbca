"""The scope-guard seam: every new connection, each redirect hop included, passes
through connector.admit_addresses after resolution and before connecting."""

from __future__ import annotations

from urllib.parse import quote

from tests.support.target import serve

from phalanx.core.results import ErrorKind, RequestFailure
from phalanx.http import connector
from phalanx.http.failures import TransportError
from phalanx.http.url import Origin


async def test_admit_sees_each_origin_once_and_can_refuse_a_redirect_hop(
    target, make_session, recorder, monkeypatch
):
    admitted: list[tuple[Origin, list[connector.ResolvedAddress]]] = []
    async with serve() as forbidden:

        def admit(
            origin: Origin, addresses: list[connector.ResolvedAddress]
        ) -> list[connector.ResolvedAddress]:
            admitted.append((origin, addresses))
            if origin.port == forbidden.port:
                raise TransportError(
                    RequestFailure(ErrorKind.TARGET_NOT_ALLOWED, "outside the test scope")
                )
            return addresses

        monkeypatch.setattr(connector, "admit_addresses", admit)
        session = make_session(target.url)

        await session.get("/")
        await session.get("/items")
        response = await session.get(
            "/redirect-to?url=" + quote(f"{forbidden.url}/", safe=""), name="hop"
        )

        assert forbidden.stats.connections == 0

    assert [origin.port for origin, _ in admitted] == [target.port, forbidden.port]
    assert admitted[0][1][0][1] == ("127.0.0.1", target.port)
    assert response.error is not None
    assert response.error.kind == ErrorKind.TARGET_NOT_ALLOWED
    assert recorder.kinds == [None, None, None, ErrorKind.TARGET_NOT_ALLOWED]
