"""Sessions (ids, timeouts, rotation, epochs) and the login throttle, with explicit ``now``."""

from __future__ import annotations

import pytest

from phalanx.web.sessions import ABSOLUTE_TIMEOUT, IDLE_TIMEOUT, SessionStore
from phalanx.web.throttle import LoginThrottle


def store(epochs: dict[str, int] | None = None, **kwargs: float) -> SessionStore:
    known = epochs if epochs is not None else {"ada": 1}
    return SessionStore(known.get, **kwargs)  # type: ignore[arg-type]


def test_each_login_gets_a_new_random_id_and_csrf_token() -> None:
    sessions = store()
    first = sessions.create("ada", "admin", 1, now=0.0)
    second = sessions.create("ada", "admin", 1, now=0.0)
    assert first.id != second.id
    assert first.csrf != second.csrf
    assert len(first.id) >= 43
    assert sessions.get(first.id, 1.0) is not None


def test_idle_and_absolute_timeouts_end_a_session() -> None:
    sessions = store()
    idle = sessions.create("ada", "admin", 1, now=0.0)
    assert sessions.get(idle.id, IDLE_TIMEOUT - 1) is not None  # use refreshes it
    assert sessions.get(idle.id, 2 * IDLE_TIMEOUT - 2) is not None
    assert sessions.get(idle.id, 3 * IDLE_TIMEOUT) is None
    busy = sessions.create("ada", "admin", 1, now=0.0)
    now = 0.0
    while now < ABSOLUTE_TIMEOUT - 60:
        now += IDLE_TIMEOUT / 2
        assert sessions.get(busy.id, now) is not None
    assert sessions.get(busy.id, ABSOLUTE_TIMEOUT + 1) is None


def test_an_epoch_change_or_a_removed_user_ends_sessions() -> None:
    epochs = {"ada": 1, "bob": 1}
    sessions = store(epochs)
    ada = sessions.create("ada", "admin", 1, now=0.0)
    bob = sessions.create("bob", "viewer", 1, now=0.0)
    epochs["ada"] = 2
    del epochs["bob"]
    assert sessions.get(ada.id, 1.0) is None
    assert sessions.get(bob.id, 1.0) is None
    assert len(sessions) == 0


def test_logout_end_user_and_unknown_ids() -> None:
    sessions = store()
    one = sessions.create("ada", "admin", 1, now=0.0)
    two = sessions.create("ada", "admin", 1, now=0.0)
    sessions.logout(one.id)
    assert sessions.get(one.id, 0.0) is None
    assert sessions.end_user("ada") == 1
    assert sessions.get(two.id, 0.0) is None
    assert sessions.get(None, 0.0) is None
    assert sessions.get("forged", 0.0) is None


def test_the_store_is_bounded_least_recently_used_first() -> None:
    sessions = store(max_sessions=2)
    old = sessions.create("ada", "admin", 1, now=0.0)
    kept = sessions.create("ada", "admin", 1, now=1.0)
    assert sessions.get(old.id, 2.0) is not None  # now the most recent
    sessions.create("ada", "admin", 1, now=3.0)
    assert sessions.get(kept.id, 4.0) is None
    assert sessions.get(old.id, 4.0) is not None


def test_csrf_comparison() -> None:
    session = store().create("ada", "admin", 1, now=0.0)
    assert session.csrf_matches(session.csrf)
    assert not session.csrf_matches(None)
    assert not session.csrf_matches(session.csrf[:-1])


def test_invalid_timeouts_are_refused() -> None:
    with pytest.raises(ValueError, match="timeouts"):
        store(idle_timeout=10.0, absolute_timeout=5.0)


def test_the_throttle_lets_a_few_failures_through_then_doubles_the_wait() -> None:
    throttle = LoginThrottle(free_failures=2, base_delay=1.0, max_delay=8.0)
    for second in range(2):
        assert throttle.wait_needed("ada", "10.0.0.1", float(second)) == 0.0
        throttle.failed("ada", "10.0.0.1", float(second))
    assert throttle.wait_needed("ada", "10.0.0.1", 2.0) == 0.0
    throttle.failed("ada", "10.0.0.1", 2.0)  # third failure: 1 s
    assert throttle.wait_needed("ada", "10.0.0.1", 2.5) == pytest.approx(0.5)
    throttle.failed("ada", "10.0.0.1", 3.0)  # fourth: 2 s
    assert throttle.wait_needed("ada", "10.0.0.1", 3.0) == pytest.approx(2.0)
    for _ in range(10):
        throttle.failed("ada", "10.0.0.1", 3.0)
    assert throttle.wait_needed("ada", "10.0.0.1", 3.0) == pytest.approx(8.0)  # capped


def test_accounts_and_addresses_are_throttled_separately_and_case_blind() -> None:
    throttle = LoginThrottle(free_failures=0, base_delay=5.0)
    throttle.failed("Ada", "10.0.0.1", 0.0)
    assert throttle.wait_needed("ada", "10.0.0.9", 1.0) > 0  # same account, other address
    assert throttle.wait_needed("bob", "10.0.0.1", 1.0) > 0  # other account, same address
    assert throttle.wait_needed("bob", "10.0.0.9", 1.0) == 0.0
    throttle.succeeded("ada")
    assert throttle.wait_needed("ada", "10.0.0.9", 1.0) == 0.0
    assert throttle.wait_needed("bob", "10.0.0.1", 1.0) > 0  # a success does not clear the address


def test_failures_are_forgotten_and_memory_is_bounded() -> None:
    throttle = LoginThrottle(free_failures=0, base_delay=5.0, forget_after=60.0, max_keys=4)
    throttle.failed("ada", "10.0.0.1", 0.0)
    assert throttle.wait_needed("ada", "10.0.0.1", 61.0) == 0.0
    for n in range(10):
        throttle.failed(f"user{n}", f"10.0.1.{n}", 100.0)
    assert len(throttle._failures) <= 4


def test_one_attempt_at_a_time_per_account_and_per_address() -> None:
    throttle = LoginThrottle()
    assert throttle.try_begin("ada", "10.0.0.1")
    assert not throttle.try_begin("ADA", "10.0.0.2")  # same account
    assert not throttle.try_begin("bob", "10.0.0.1")  # same address
    assert throttle.try_begin("bob", "10.0.0.2")
    throttle.end("ada", "10.0.0.1")
    assert throttle.try_begin("ada", "10.0.0.3")
