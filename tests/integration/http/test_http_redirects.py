"""Redirects: each hop recorded, the limit, method rules, credentials on origin change."""

from __future__ import annotations

from urllib.parse import quote

from tests.support.target import serve

from phalanx.core.results import ErrorKind


async def test_each_hop_is_recorded_under_its_own_name(target, make_session, recorder):
    session = make_session(target.url)

    response = await session.get("/redirect/3", name="start")

    assert response.status_code == 200
    assert response.url == f"{target.url}/"
    assert recorder.names == ["start", "/redirect/2", "/redirect/1", "/"]
    assert recorder.kinds == [None, None, None, None]
    assert [h.status_code for h in response.history] == [302, 302, 302]
    assert [h.url for h in response.history] == [
        f"{target.url}/redirect/3",
        f"{target.url}/redirect/2",
        f"{target.url}/redirect/1",
    ]
    assert target.stats.connections == 1


async def test_redirect_limit_gives_too_many_redirects(target, make_session, recorder):
    session = make_session(target.url, max_redirects=2)

    response = await session.get("/redirect/5")

    assert response.status_code == 302
    assert not response.ok
    assert response.error is not None
    assert response.error.kind == ErrorKind.TOO_MANY_REDIRECTS
    assert recorder.names == ["/redirect/5", "/redirect/4", "/redirect/3"]
    assert recorder.kinds == [None, None, ErrorKind.TOO_MANY_REDIRECTS]


async def test_allow_redirects_false_returns_the_redirect(target, make_session, recorder):
    session = make_session(target.url)

    response = await session.get("/redirect/2", allow_redirects=False)

    assert response.status_code == 302
    assert response.headers["location"] == "/redirect/1"
    assert response.ok
    assert recorder.names == ["/redirect/2"]


async def test_303_turns_post_into_get_without_body(target, make_session, recorder):
    session = make_session(target.url)

    response = await session.post("/redirect-to?url=/echo&status=303", json={"a": 1})

    echo = response.json()
    assert echo["method"] == "GET"
    assert echo["body_length"] == 0
    assert "content-type" not in {n.lower() for n, _ in echo["headers"]}
    assert [(r.method, r.name) for r in recorder.requests] == [
        ("POST", "/redirect-to"),
        ("GET", "/echo"),
    ]


async def test_302_turns_post_into_get(target, make_session):
    session = make_session(target.url)

    echo = (await session.post("/redirect-to?url=/echo&status=302", data=b"x")).json()

    assert echo["method"] == "GET"
    assert echo["body_length"] == 0


async def test_307_and_308_keep_method_and_body(target, make_session):
    session = make_session(target.url)

    for status in (307, 308):
        echo = (await session.post(f"/redirect-to?url=/echo&status={status}", data=b"keep")).json()

        assert echo["method"] == "POST"
        assert echo["body"] == "keep"


async def test_cross_origin_hop_drops_authorization(target, make_session, recorder):
    async with serve() as other:
        session = make_session(target.url)
        location = quote(f"{other.url}/echo", safe="")

        response = await session.get(
            f"/redirect-to?url={location}",
            headers={"Authorization": "Bearer secret", "X-Keep": "1"},
        )

    names = {n.lower() for n, _ in response.json()["headers"]}
    assert "authorization" not in names
    assert "x-keep" in names
    assert recorder.names == ["/redirect-to", f"{other.url}/echo"]


async def test_same_origin_hop_keeps_authorization(target, make_session):
    session = make_session(target.url)

    response = await session.get(
        "/redirect-to?url=/echo", headers={"Authorization": "Bearer secret"}
    )

    headers = dict((n.lower(), v) for n, v in response.json()["headers"])
    assert headers["authorization"] == "Bearer secret"


async def test_redirect_to_unsupported_scheme_is_invalid_url(target, make_session, recorder):
    session = make_session(target.url)

    response = await session.get("/redirect-to?url=" + quote("ftp://127.0.0.1/x", safe=""))

    assert response.status_code == 302
    assert response.error is not None
    assert response.error.kind == ErrorKind.INVALID_URL
    assert recorder.kinds == [ErrorKind.INVALID_URL]
