"""The run-wide cap on open connections: refused beyond it, released when connections go."""

from __future__ import annotations

import asyncio
import resource

from phalanx.core.results import ErrorKind
from phalanx.http.budget import ConnectionBudget, default_connection_limit


def test_budget_reserves_up_to_the_limit_and_counts_refusals() -> None:
    budget = ConnectionBudget(2)
    assert budget.reserve()
    assert budget.reserve()
    assert budget.full
    assert not budget.reserve()
    assert budget.refused == 1
    budget.release()
    assert not budget.full
    budget.release()
    budget.release()  # never below zero
    assert budget.open == 0


def test_default_limit_stays_under_the_file_descriptor_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = default_connection_limit()
    assert 16 <= limit <= 100_000
    if soft != resource.RLIM_INFINITY:
        assert limit < soft


async def test_a_connection_beyond_the_limit_fails_and_frees_up_after_close(
    target, make_session, recorder
):
    budget = ConnectionBudget(1)
    first = make_session(target.url, connections=budget)
    second = make_session(target.url, connections=budget)
    assert (await first.get("/")).status_code == 200
    assert budget.open == 1  # kept alive by the first session
    refused = await second.get("/")
    assert refused.error is not None
    assert refused.error.kind == ErrorKind.CONNECTION_LIMIT
    assert "--max-connections" in refused.error.message
    await first.close()
    assert budget.open == 0
    assert (await second.get("/")).status_code == 200
    assert recorder.kinds == [None, ErrorKind.CONNECTION_LIMIT, None]


class WatchedBudget(ConnectionBudget):
    """A budget whose ``emptied`` event fires when the last unit comes back."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.emptied = asyncio.Event()

    def release(self) -> None:
        super().release()
        if self.open == 0:
            self.emptied.set()


async def test_a_cancelled_close_still_gives_every_unit_back(target, make_session):
    budget = WatchedBudget(4)
    session = make_session(target.url, connections=budget)
    assert (await session.get("/")).status_code == 200
    assert budget.open == 1
    closing = asyncio.ensure_future(session.close())
    await asyncio.sleep(0)
    closing.cancel()
    await asyncio.wait_for(budget.emptied.wait(), timeout=5)
    assert budget.open == 0


async def test_a_connection_the_server_closes_gives_its_unit_back(target, make_session):
    budget = WatchedBudget(4)
    session = make_session(target.url, connections=budget)
    assert (await session.get("/close")).status_code == 200  # Connection: close
    await asyncio.wait_for(budget.emptied.wait(), timeout=5)
    assert budget.open == 0


async def test_refused_targets_never_lower_the_count(target, make_session):
    from phalanx.security.scope import ScopeGuard

    budget = ConnectionBudget(2)
    guard = ScopeGuard.from_rules([], default_host_url=target.url)
    session = make_session(target.url, connections=budget, scope=guard)
    assert (await session.get("/")).status_code == 200
    for _ in range(3):
        refused = await session.get("http://127.0.0.2:9/")
        assert refused.error is not None
        assert refused.error.kind == ErrorKind.TARGET_NOT_ALLOWED
    assert budget.open == 1
