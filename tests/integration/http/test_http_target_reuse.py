"""A session reuses what it resolved for a URL string (URL, default name, plain
request head) only where that cannot change what is sent or recorded."""

from __future__ import annotations

import json


async def test_same_url_with_different_params_sends_each_query_and_one_name(
    target, make_session, recorder
):
    session = make_session(target.url)

    first = await session.get("/echo", params={"token": "a1"})
    plain = await session.get("/echo")
    second = await session.get("/echo", params={"token": "b2", "x": 3})

    assert [json.loads(r.content)["query"] for r in (first, plain, second)] == [
        "token=a1",
        "",
        "token=b2&x=3",
    ]
    assert recorder.names == ["/echo", "/echo", "/echo"]
    assert "a1" not in repr(recorder.requests)
    assert "b2" not in repr(recorder.requests)


async def test_same_url_with_different_names_records_each_name(target, make_session, recorder):
    session = make_session(target.url)

    await session.get("/items/1", name="/items/[id]")
    await session.get("/items/1")
    await session.get("/items/1", name="one")

    assert recorder.names == ["/items/[id]", "/items/1", "one"]


async def test_headers_body_and_method_after_a_plain_request_are_sent(target, make_session):
    session = make_session(target.url)

    await session.get("/echo")
    with_header = json.loads((await session.get("/echo", headers={"X-Probe": "1"})).content)
    posted = json.loads((await session.post("/echo", data=b"abc")).content)
    empty_post = json.loads((await session.post("/echo")).content)
    again = json.loads((await session.get("/echo")).content)

    assert ["X-Probe", "1"] in with_header["headers"]
    assert (posted["method"], posted["body"]) == ("POST", "abc")
    assert empty_post["method"] == "POST"
    assert ["Content-Length", "0"] in empty_post["headers"]
    assert again["method"] == "GET"
    assert all(name != "X-Probe" for name, _ in again["headers"])


async def test_cookies_set_later_are_sent_on_a_url_already_requested(target, make_session):
    session = make_session(target.url)

    before = json.loads((await session.get("/cookies")).content)
    await session.get("/set-cookie", params={"a": "1"})
    after = json.loads((await session.get("/cookies")).content)

    assert before == {"cookie": None}
    assert after == {"cookie": "a=1"}
