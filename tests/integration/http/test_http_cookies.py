"""Cookies through a real server: stored from Set-Cookie, sent back, per session."""

from __future__ import annotations

from urllib.parse import quote


async def test_cookies_set_by_the_server_are_sent_back(target, make_session):
    session = make_session(target.url)

    await session.get("/set-cookie?session=abc&theme=dark")
    echo = (await session.get("/cookies")).json()

    assert echo["cookie"] == "session=abc; theme=dark"
    assert session.cookies.get("session") == "abc"


async def test_cookie_jars_are_per_session(target, make_session):
    first = make_session(target.url)
    second = make_session(target.url)

    await first.get("/set-cookie?user=one")
    echo = (await second.get("/cookies")).json()

    assert echo["cookie"] is None


async def test_max_age_zero_removes_the_cookie(target, make_session):
    session = make_session(target.url)

    await session.get("/set-cookie?a=1")
    await session.get("/set-cookie-header?value=" + quote("a=gone; Max-Age=0; Path=/", safe=""))
    echo = (await session.get("/cookies")).json()

    assert echo["cookie"] is None


async def test_cookie_path_limits_where_it_is_sent(target, make_session):
    session = make_session(target.url)

    await session.get("/set-cookie-header?value=" + quote("scoped=1; Path=/echo", safe=""))
    on_cookies = (await session.get("/cookies")).json()
    on_echo = (await session.get("/echo")).json()

    assert on_cookies["cookie"] is None
    assert ["Cookie", "scoped=1"] in on_echo["headers"]


async def test_cookies_are_applied_on_each_redirect_hop(target, make_session):
    session = make_session(target.url)

    response = await session.get("/redirect-to?url=" + quote("/set-cookie?hop=1", safe=""))
    echo = (await session.get("/cookies")).json()

    assert response.ok
    assert echo["cookie"] == "hop=1"


async def test_secure_cookie_is_not_sent_over_plain_http(target, make_session):
    session = make_session(target.url)

    await session.get("/set-cookie-header?value=" + quote("s=1; Secure; Path=/", safe=""))
    echo = (await session.get("/cookies")).json()

    assert echo["cookie"] is None


async def test_user_cookie_header_is_merged_with_the_jar(target, make_session):
    session = make_session(target.url)

    await session.get("/set-cookie?jar=1")
    echo = (await session.get("/cookies", headers={"Cookie": "mine=2"})).json()

    assert echo["cookie"] == "mine=2; jar=1"
