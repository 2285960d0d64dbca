"""TargetCache: a bounded per-session memo of resolved URL strings that keeps
no query strings and no credentials."""

from __future__ import annotations

import pytest

from phalanx.http.targets import DEFAULT_TARGET_LIMIT, TargetCache
from phalanx.http.url import InvalidUrl, parse_base_url, resolve_url


def _cache(limit: int = DEFAULT_TARGET_LIMIT) -> TargetCache:
    return TargetCache(parse_base_url("http://127.0.0.1:8080/api"), limit)


def test_a_known_string_returns_the_same_target_with_url_and_default_name() -> None:
    cache = _cache()

    first = cache["/items/7"]

    assert cache["/items/7"] is first
    assert first.url == resolve_url("/items/7", parse_base_url("http://127.0.0.1:8080/api"))
    assert first.url.target == "/api/items/7"
    assert first.name == "/api/items/7"
    assert first.head_method == ""
    assert first.head == b""


def test_size_never_exceeds_the_limit_and_later_strings_still_resolve() -> None:
    cache = _cache(limit=4)

    targets = [cache[f"/items/{n}"] for n in range(10)]

    assert len(cache) == 4
    assert sorted(cache) == [f"/items/{n}" for n in range(4)]
    assert [t.url.target for t in targets] == [f"/api/items/{n}" for n in range(10)]
    assert cache["/items/9"] is not targets[9]  # resolved again, not kept


def test_strings_with_a_query_are_resolved_but_never_kept() -> None:
    cache = _cache()

    target = cache["/search?token=secret&q=1"]

    assert target.url.target == "/api/search?token=secret&q=1"
    assert target.name == "/api/search"
    assert len(cache) == 0
    assert "secret" not in repr(list(cache.items()))


def test_strings_with_user_info_are_never_kept() -> None:
    cache = _cache()

    target = cache["http://user:pass@127.0.0.1:9000/x"]

    assert target.url.authorization is not None
    assert target.name == "http://127.0.0.1:9000/x"
    assert len(cache) == 0


def test_another_origin_is_named_with_its_origin() -> None:
    cache = _cache()

    assert cache["http://127.0.0.1:9000/x"].name == "http://127.0.0.1:9000/x"
    assert cache["http://127.0.0.1:8080/x"].name == "/x"


def test_an_invalid_url_raises_and_is_not_kept() -> None:
    cache = TargetCache(None)

    with pytest.raises(InvalidUrl):
        cache["/needs-a-base"]
    assert len(cache) == 0
