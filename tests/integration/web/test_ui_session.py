"""A UI-driven session (``phalanx run --web``): starts, conflicts, resets, the scope guard.

Real runs against a real target on 127.0.0.1; the forbidden host is a listener
on 127.0.0.2 that proves nothing reached it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.target import serve

from phalanx.cli.session import LocalSession, SessionSignals
from phalanx.config.settings import Settings
from phalanx.engine.runner import RunState
from phalanx.scripting.loader import load_script
from phalanx.security.redaction import Redactor
from phalanx.web.app import RunConflict, RunRequestError, StartRequest

SCRIPT = """
from phalanx import HttpUser, task, constant

class Browse(HttpUser):
    wait_time = constant(0.01)

    @task
    async def items(self):
        await self.client.get("/items")
"""


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_a_session_runs_what_the_ui_starts_inside_the_scope_only(tmp_path: Path) -> None:
    (tmp_path / "browse.py").write_text(SCRIPT)
    script = load_script(str(tmp_path / "browse.py"))
    async with serve() as target, serve(host="127.0.0.2") as forbidden:
        settings = Settings(file=str(tmp_path / "browse.py"), host=target.url,
                            stats_interval=0.05)
        session = LocalSession(settings, script, script.user_classes, Redactor())
        with pytest.raises(RunConflict, match="not accepting"):
            session.start(StartRequest(1, 10.0, None, None))  # before the task group exists
        async with asyncio.TaskGroup() as tg:
            session.attach(tg)
            assert session.status().state is RunState.READY
            with pytest.raises(RunRequestError, match="outside the allowed targets"):
                session.start(StartRequest(2, 100.0, forbidden.url, None))
            with pytest.raises(RunRequestError, match="credentials"):
                session.start(StartRequest(2, 100.0, "http://user:pw@127.0.0.1:1", None))
            with pytest.raises(RunRequestError, match="max-users"):
                session.start(StartRequest(10**6, 100.0, None, None))
            with pytest.raises(RunConflict, match="no test is running"):
                session.request_stop()
            session.start(StartRequest(2, 100.0, None, None))
            with pytest.raises(RunConflict, match="running"):
                session.start(StartRequest(2, 100.0, None, None))
            await until(lambda: target.stats.total_requests > 20)
            await until(lambda: (latest := session.latest) is not None
                        and latest.total.num_requests > 0)
            session.reset_stats()
            latest = session.latest
            assert latest is not None
            assert latest.total.num_requests == 0
            session.change_target(3, 100.0)
            await until(lambda: session.status().users == 3)
            session.request_stop()
            await until(lambda: not session.running)
            first = session.last_result
            assert first is not None
            # A second test in the same session, with a run time this time.
            session.start(StartRequest(1, 100.0, target.url, 0.3))
            await until(lambda: not session.running)
            assert session.last_result is not first
            runs = session.runs()
            assert [run["reason"] for run in runs] == ["requested", "run_time"]
            assert all(isinstance(run["requests"], int) for run in runs)
            session.shutdown(now=False)
            assert await session.wait_closed() is session.last_result
        assert forbidden.stats.connections == 0
        assert forbidden.stats.total_requests == 0


async def test_ctrl_c_stops_a_running_test_and_ends_the_session(tmp_path: Path) -> None:
    (tmp_path / "browse.py").write_text(SCRIPT)
    script = load_script(str(tmp_path / "browse.py"))
    async with serve() as target:
        session = LocalSession(Settings(host=target.url), script, script.user_classes,
                               Redactor())
        signals = SessionSignals(session)
        async with asyncio.TaskGroup() as tg:
            session.attach(tg)
            session.start(StartRequest(2, 100.0, None, None))
            await until(lambda: target.stats.total_requests > 5)
            signals.request_stop()
            assert signals.stop_requested
            result = await asyncio.wait_for(session.wait_closed(), timeout=10)
        assert result is not None
        assert result.snapshot.total.num_requests > 0
        with pytest.raises(RunConflict):
            session.start(StartRequest(1, 1.0, None, None))
