"""Master and worker drivers in one process, over real CURVE sockets on 127.0.0.1.

Each test runs a real target (tests/support/target.py), a real MasterSocket
and WorkerSockets, real LocalRunners; only the processes are shared. The
process-level behaviours (kill -9, the CLI) are in tests/e2e/test_cli_cluster.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import zmq
import zmq.asyncio
from tests.support.target import TargetServer, serve
from tests.support.tcp_proxy import RecordingProxy

from phalanx import HttpUser, constant, task
from phalanx.cli.worker import run_factory
from phalanx.cluster.master_driver import ClusterError, ClusterPlan, MasterDriver
from phalanx.cluster.worker_driver import WorkerConfig, WorkerDriver, WorkerExit
from phalanx.config.settings import Settings
from phalanx.engine.dispatch import ClassSpec
from phalanx.engine.runner import RunResult, RunState, StopReason
from phalanx.protocol import (
    PROTOCOL_VERSION,
    Heartbeat,
    Hello,
    Rejoin,
    Stats,
    Welcome,
    encode,
)
from phalanx.security.redaction import Redactor
from phalanx.transport import (
    KeyDir,
    LinkLimits,
    MasterSocket,
    PlaintextDev,
    WorkerKey,
    WorkerSocket,
    fingerprint,
)

SHA = "ab" * 32
VERSION = "1.2.3"


class Browser(HttpUser):
    wait_time = constant(0.01)
    weight = 3

    @task
    async def items(self) -> None:
        await self.client.get("/items")


class Buyer(HttpUser):
    wait_time = constant(0.01)

    @task
    async def item(self) -> None:
        await self.client.get("/items/7", name="/items/[id]")


CLASSES: tuple[type[HttpUser], ...] = (Browser, Buyer)
SPECS = tuple(ClassSpec(cls.__name__, cls.weight, cls.fixed_count) for cls in CLASSES)


def plan_for(target: TargetServer, **changes: object) -> ClusterPlan:
    base = ClusterPlan(classes=SPECS, host=target.url, users=8, spawn_rate=200.0,
                       run_time=1.5, expect_workers=2, expect_workers_timeout=10.0,
                       heartbeat_interval=0.2, heartbeat_timeout=2.0, stats_interval=0.2,
                       final_grace=5.0,
                       # users finish the request they are in when a run stops: a request
                       # cut mid-flight reached the target but has no outcome to count
                       stop_timeout=5.0)
    return replace(base, **changes)  # type: ignore[arg-type]


def worker_config(name: str, **changes: object) -> WorkerConfig:
    base = WorkerConfig(name=name, script_sha256=SHA, phalanx_version=VERSION,
                        master_timeout=1.0, heartbeat_interval=0.2, report_interval=0.2,
                        hello_interval=0.2, send_timeout=2.0)
    return replace(base, **changes)  # type: ignore[arg-type]


@dataclass
class Worker:
    driver: WorkerDriver
    link: WorkerSocket
    task: asyncio.Task[WorkerExit]

    def kill(self) -> None:
        """Like kill -9: no Bye, no goodbye stats; the connection just drops."""
        self.task.cancel()


class Cluster:
    """A master and workers in this process; workers are added with :meth:`worker`."""

    def __init__(self, keys: KeyDir, target: TargetServer, tg: asyncio.TaskGroup,
                 plan: ClusterPlan, master_endpoint: str | None = None) -> None:
        self.keys = keys
        self.target = target
        self.tg = tg
        self.socket = MasterSocket(master_endpoint or "tcp://127.0.0.1:0",
                                   keys.curve_server())
        self.plan = plan
        self.driver: MasterDriver | None = None
        self.run: asyncio.Task[RunResult] | None = None
        self.workers: list[Worker] = []

    def master(self) -> MasterDriver:
        self.socket.open()
        self.driver = MasterDriver(self.socket, self.plan, script_sha256=SHA,
                                   phalanx_version=VERSION, run_id="test-run")
        return self.driver

    def start_master(self) -> asyncio.Task[RunResult]:
        self.run = self.tg.create_task(self.master().run())
        return self.run

    def worker(self, name: str, *, endpoint: str | None = None, **config: object) -> Worker:
        link = WorkerSocket(endpoint or self.socket.endpoint, self.keys.curve_client(name))
        link.open()
        make_run = run_factory(Settings(), CLASSES, Redactor())
        driver = WorkerDriver(link, worker_config(name, **config), make_run)
        worker = Worker(driver, link, self.tg.create_task(driver.serve()))
        self.workers.append(worker)
        return worker

    async def close(self) -> None:
        if self.run is not None and not self.run.done():
            self.run.cancel()
        for worker in self.workers:
            if not worker.task.done():
                worker.driver.request_shutdown()
                worker.driver.request_shutdown()
        for worker in self.workers:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(worker.task, timeout=10)
            worker.link.close()
        await self.socket.aclose()


@pytest.fixture
def keys(tmp_path: Path) -> KeyDir:
    keys = KeyDir(tmp_path / "keys")
    keys.init()
    keys.add_worker("w2")
    keys.add_worker("w3")
    return keys


@contextlib.asynccontextmanager
async def cluster(keys: KeyDir, **plan: object) -> AsyncIterator[Cluster]:
    async with serve() as target, asyncio.TaskGroup() as tg:
        running = Cluster(keys, target, tg, plan_for(target, **plan))
        try:
            yield running
        finally:
            await running.close()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (polling every 20 ms) until ``condition()`` holds; fail after ``timeout``."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_two_workers_share_the_load_and_the_totals_match_the_target(keys: KeyDir) -> None:
    async with cluster(keys) as c:
        run = c.start_master()
        c.worker("w1")
        c.worker("w2")
        result = await asyncio.wait_for(run, timeout=20)
        await c.close()
        counted = c.target.stats
    total = result.snapshot.total
    assert result.reason is StopReason.RUN_TIME
    assert total.num_requests > 20
    assert total.num_requests == counted.total_requests
    by_name = {entry.name: entry.num_requests for entry in result.snapshot.entries}
    assert by_name["/items"] == counted.requests("/items")
    assert by_name["/items/[id]"] == counted.requests("/items/7")
    assert total.num_failures == 0
    assert sorted(w.name for w in result.workers) == ["w1", "w2"]
    assert all(w.state == "ready" and len(w.fingerprint) == 16 for w in result.workers)
    assert result.status.workers == 2
    assert 0 < total.percentile(0.5) <= total.percentile(0.99) <= total.max * 1.01


async def test_users_are_spread_evenly_per_class_and_follow_a_target_change(
        keys: KeyDir) -> None:
    async with cluster(keys, run_time=None) as c:
        run = c.start_master()
        w1, w2 = c.worker("w1"), c.worker("w2")
        assert c.driver is not None
        driver = c.driver
        await until(lambda: w1.driver.running_users + w2.driver.running_users == 8)
        shares = driver.assignments()
        assert sorted(shares.values(), key=str) == sorted(
            [{"Browser": 3, "Buyer": 1}, {"Browser": 3, "Buyer": 1}], key=str)
        driver.change_target(13)
        await until(lambda: w1.driver.running_users + w2.driver.running_users == 13)
        totals = sorted(sum(share.values()) for share in driver.assignments().values())
        assert totals == [6, 7]
        driver.request_stop()
        result = await asyncio.wait_for(run, timeout=20)
    assert result.reason is StopReason.REQUESTED


async def test_a_worker_with_another_script_is_refused_and_both_sides_say_why(
        keys: KeyDir, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with cluster(keys, expect_workers=1) as c:
        run = c.start_master()
        stranger = c.worker("w2", script_sha256="cd" * 32)
        assert await asyncio.wait_for(stranger.task, timeout=10) is WorkerExit.REFUSED
        assert "script sha256" in stranger.driver.exit_reason
        c.worker("w1")
        result = await asyncio.wait_for(run, timeout=20)
    refusals = [r.getMessage() for r in caplog.records if "refused worker" in r.getMessage()]
    assert refusals
    assert "script sha256" in refusals[0]
    w2_key = keys.curve_client("w2").keypair.public.decode()
    assert fingerprint(w2_key) in refusals[0]
    assert result.snapshot.total.num_requests == c.target.stats.total_requests


async def test_a_worker_of_another_phalanx_version_is_refused(keys: KeyDir) -> None:
    async with cluster(keys, expect_workers=1, run_time=0.5) as c:
        run = c.start_master()
        old = c.worker("w2", phalanx_version="0.9.0")
        assert await asyncio.wait_for(old.task, timeout=10) is WorkerExit.REFUSED
        assert "phalanx version 0.9.0" in old.driver.exit_reason
        c.worker("w1")
        await asyncio.wait_for(run, timeout=20)


async def test_too_few_workers_in_time_is_a_clear_error(keys: KeyDir) -> None:
    async with cluster(keys, expect_workers=2, expect_workers_timeout=0.5) as c:
        master = c.master()
        c.worker("w1")
        with pytest.raises(ClusterError, match="only 1 of 2 workers joined"):
            await asyncio.wait_for(master.run(), timeout=10)


async def test_a_missing_worker_is_marked_and_its_users_go_to_the_others(
        keys: KeyDir, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with cluster(keys, run_time=None) as c:
        run = c.start_master()
        w1, w2 = c.worker("w1"), c.worker("w2")
        assert c.driver is not None
        driver = c.driver
        await until(lambda: w1.driver.running_users == 4 and w2.driver.running_users == 4)
        w2.kill()
        w2.link.close()
        await until(lambda: w1.driver.running_users == 8)
        w1_key = keys.curve_client("w1").keypair.public.decode()
        assert driver.assignments() == {w1_key: {"Browser": 6, "Buyer": 2}}
        missing = [r.getMessage() for r in caplog.records if "is missing" in r.getMessage()]
        assert len(missing) == 1
        assert "w2" in missing[0]
        assert "4 users" in missing[0]
        driver.request_stop()
        await asyncio.wait_for(run, timeout=20)


async def test_a_worker_stops_all_load_when_its_master_goes_silent(
        keys: KeyDir, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with cluster(keys, run_time=None, expect_workers=1) as c:
        run = c.start_master()
        w1 = c.worker("w1", master_timeout=1.0)
        await until(lambda: w1.driver.running_users == 8)
        run.cancel()  # the master process is gone: no Stop, no heartbeat
        with contextlib.suppress(asyncio.CancelledError):
            await run
        await c.socket.aclose()
        # The invariant's bound: master_timeout plus one check interval (0.25 s), 1 s slack.
        await until(lambda: not w1.driver.run_active, timeout=1.0 + 0.25 + 1.0)
        assert w1.driver.running_users == 0  # no user task is left to send anything
        assert not w1.task.done()  # it keeps waiting for a master, without load
    assert any("stopping all load now" in r.getMessage() for r in caplog.records)


async def test_a_worker_that_comes_back_after_being_missing_is_told_to_rejoin(
        keys: KeyDir) -> None:
    async with cluster(keys, run_time=None, expect_workers=1) as c:
        run = c.start_master()
        c.worker("w1")
        assert c.driver is not None
        raw = WorkerSocket(c.socket.endpoint, keys.curve_client("w2"))
        async with raw:
            hello = Hello(protocol_version=PROTOCOL_VERSION, worker_name="w2",
                          script_sha256=SHA, phalanx_version=VERSION, cpu_count=1)
            assert await raw.send(hello, timeout=5)
            assert isinstance(await _next(raw, Welcome), Welcome)
            # Silent past heartbeat_timeout (2 s): the master marks it missing.
            w2_key = keys.curve_client("w2").keypair.public.decode()
            driver = c.driver
            await until(lambda: (info := driver.worker_info(w2_key)) is not None
                        and info.state.value == "missing")
            beat = Heartbeat(seq=1, users=4, state="running", cpu_percent=1.0, rss_bytes=1)
            assert await raw.send(beat, timeout=5)
            rejoin = await _next(raw, Rejoin)
            assert isinstance(rejoin, Rejoin)
            assert "missing" in rejoin.reason
        driver.request_stop()
        await asyncio.wait_for(run, timeout=20)


async def _next(link: WorkerSocket, kind: type) -> object:
    async with asyncio.timeout(10):
        while True:
            message = await link.recv(timeout=1.0)
            if isinstance(message, kind):
                return message


async def test_garbage_from_an_authenticated_worker_never_crashes_the_master(
        keys: KeyDir, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with cluster(keys, expect_workers=1, run_time=2.0, message_rate=100.0) as c:
        run = c.start_master()
        c.worker("w1")
        w3 = keys.curve_client("w3")
        context = zmq.asyncio.Context()
        dealer = context.socket(zmq.DEALER)
        try:
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.setsockopt(zmq.CURVE_SERVERKEY, w3.master_public)
            dealer.setsockopt(zmq.CURVE_PUBLICKEY, w3.keypair.public)
            assert w3.keypair.secret is not None
            dealer.setsockopt(zmq.CURVE_SECRETKEY, w3.keypair.secret)
            dealer.connect(c.socket.endpoint)
            hello = encode(Hello(protocol_version=PROTOCOL_VERSION, worker_name="w3",
                                 script_sha256=SHA, phalanx_version=VERSION, cpu_count=1))
            junk: list[list[bytes]] = [
                [os.urandom(64)], [b""], [hello[: len(hello) // 2]], [bytes([99]) + hello[1:]],
                [hello, b"extra part"], [hello[:1] + b"\xdc\xff\xff" * 20],
                [encode(Stats(seq=1, delta=b"not a delta"))],
                [encode(Stats(seq=2, delta=os.urandom(300)))],
            ]
            await dealer.send_multipart([hello])
            for frames in junk * 5:
                await dealer.send_multipart(frames)
            beat = encode(Heartbeat(seq=1, users=0, state="ready", cpu_percent=0.0,
                                    rss_bytes=0))
            for _ in range(1_000):  # a flood, far above 100 messages/s
                await dealer.send_multipart([beat])
            # Bigger than the limit: ZeroMQ drops the connection before buffering it.
            await dealer.send_multipart([hello[:1] + bytes(LinkLimits().max_message_bytes + 10)])
            result = await asyncio.wait_for(run, timeout=20)
        finally:
            dealer.close(0)
            context.term()
    assert result.reason is StopReason.RUN_TIME
    assert result.snapshot.total.num_requests == c.target.stats.total_requests
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert "dropped an invalid message" in messages
    assert "dropped an invalid stats delta" in messages
    assert "messages/s" in messages


@pytest.mark.parametrize("secure", [True, False], ids=["curve", "plaintext-control"])
async def test_the_link_carries_no_readable_endpoint_or_host_unless_plaintext(
        keys: KeyDir, tmp_path: Path, secure: bool) -> None:
    async with serve() as target:
        plan = plan_for(target, expect_workers=1, run_time=1.0)
        security = keys.curve_server() if secure else PlaintextDev()
        socket = MasterSocket("tcp://127.0.0.1:0", security)
        async with socket:
            port = int(socket.endpoint.rsplit(":", 1)[1])
            async with RecordingProxy("127.0.0.1", port) as proxy:
                proxy_port = proxy.port
                client = keys.curve_client("w1") if secure else PlaintextDev()
                link = WorkerSocket(f"tcp://127.0.0.1:{proxy_port}", client)
                driver = MasterDriver(socket, plan, script_sha256=SHA, phalanx_version=VERSION)
                async with link, asyncio.TaskGroup() as tg:
                    worker = WorkerDriver(link, worker_config("w1"),
                                          run_factory(Settings(), CLASSES, Redactor()))
                    serving = tg.create_task(worker.serve())
                    result = await driver.run()
                    worker.request_shutdown()
                    await serving
                captured = proxy.captured()
    assert result.snapshot.total.num_requests > 0
    assert proxy.connections >= 1
    assert len(captured) > 1000
    host = target.url.removeprefix("http://").encode()
    readable = [text for text in (b"/items", host, b"Browser") if text in captured]
    if secure:
        assert readable == []
    else:
        assert readable == [b"/items", host, b"Browser"]


async def test_workers_beyond_max_workers_are_refused_and_shares_respect_the_per_worker_cap(
        keys: KeyDir, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with cluster(keys, run_time=None, expect_workers=1, max_workers=1,
                       max_users_per_worker=3) as c:
        run = c.start_master()
        w1 = c.worker("w1")
        await until(lambda: w1.driver.running_users == 3)
        extra = c.worker("w2")
        assert await asyncio.wait_for(extra.task, timeout=10) is WorkerExit.REFUSED
        assert "maximum of 1 workers" in extra.driver.exit_reason
        assert c.driver is not None
        c.driver.request_stop()
        await asyncio.wait_for(run, timeout=20)
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert "--max-users-per-worker 3: running 3" in messages


async def test_a_resent_hello_is_not_taken_for_a_restart(
        keys: KeyDir, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with cluster(keys, run_time=None, expect_workers=1) as c:
        run = c.start_master()
        raw = WorkerSocket(c.socket.endpoint, keys.curve_client("w2"))
        async with raw:
            hello = Hello(protocol_version=PROTOCOL_VERSION, worker_name="w2",
                          script_sha256=SHA, phalanx_version=VERSION, cpu_count=1)
            assert await raw.send(hello, timeout=5)
            assert await raw.send(hello, timeout=5)  # our Welcome was slow: sent again
            await _next(raw, Welcome)
            await _next(raw, Welcome)
            assert c.driver is not None
            c.driver.request_stop()
            await asyncio.wait_for(run, timeout=20)
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("worker w2") and "joined" in m for m in messages) == 1
    assert not any("rejoined" in m for m in messages)


class _BusySocket:
    """A socket whose queue is never empty: one worker joins, then heartbeats forever."""

    endpoint = "tcp://127.0.0.1:1"

    def __init__(self) -> None:
        self.drained_at = 0.0  # never seen empty
        self._sent_hello = False

    async def recv_batch(self, timeout: float) -> list[tuple[str, object]]:
        await asyncio.sleep(0)
        if not self._sent_hello:
            self._sent_hello = True
            return [("busy-key", Hello(protocol_version=PROTOCOL_VERSION, worker_name="busy",
                                       script_sha256=SHA, phalanx_version=VERSION,
                                       cpu_count=1))]
        return [("busy-key", Heartbeat(seq=1, users=0, state="running", cpu_percent=1.0,
                                       rss_bytes=1))] * 8

    def send(self, key: str, message: object) -> bool:
        return True

    def send_all(self, keys: Iterable[str], message: object) -> int:
        return len(list(keys))

    def name_of(self, key: str) -> str:
        return ""

    def forget(self, key: str) -> None:
        pass


def _busy_driver(final_grace: float) -> MasterDriver:
    """A master on a :class:`_BusySocket`: a 0.2 s run whose one worker never confirms
    its stop, with limits that never throttle or expire it."""
    plan = ClusterPlan(classes=SPECS, host="http://127.0.0.1:9", users=1, spawn_rate=1.0,
                       run_time=0.2, expect_workers=1, heartbeat_interval=0.2,
                       heartbeat_timeout=60.0, stats_interval=0.2, final_grace=final_grace,
                       message_rate=100_000.0)
    return MasterDriver(_BusySocket(), plan, script_sha256=SHA,  # type: ignore[arg-type]
                        phalanx_version=VERSION)


async def test_a_master_behind_a_backlog_at_the_end_keeps_its_loop_responsive(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from phalanx.cluster import master_driver

    monkeypatch.setattr(master_driver, "MAX_BACKLOG_WAIT", 1.0)
    driver = _busy_driver(final_grace=0.2)
    turns_while_stopping = 0

    async def probe() -> None:
        nonlocal turns_while_stopping
        while driver.state is not RunState.STOPPED:
            if driver.state is RunState.STOPPING:
                turns_while_stopping += 1
            await asyncio.sleep(0.01)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(probe())
        result = await asyncio.wait_for(driver.run(), timeout=10)
    # The worker never confirmed its stop: the master waited (final grace, then the
    # backlog wait) and gave up, and meanwhile other tasks on its loop kept running.
    # A spinning loop lets the probe run at most once or twice in that phase.
    assert result.reason is StopReason.RUN_TIME
    assert turns_while_stopping >= 10


async def test_a_master_handling_a_slow_batch_lets_other_tasks_run_between_messages(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from phalanx.cluster import master_driver

    monkeypatch.setattr(master_driver, "MAX_BACKLOG_WAIT", 0.3)
    driver = _busy_driver(final_grace=0.1)
    turns = 0
    seen: list[int] = []
    handle_heartbeat = driver._heartbeat

    def slow_heartbeat(key: WorkerKey, beat: Heartbeat, now: float) -> None:
        time.sleep(3 * master_driver.YIELD_INTERVAL_S / 2)  # longer than the yield interval
        seen.append(turns)
        handle_heartbeat(key, beat, now)

    monkeypatch.setattr(driver, "_heartbeat", slow_heartbeat)

    async def probe() -> None:
        nonlocal turns
        while driver.state is not RunState.STOPPED:
            turns += 1
            await asyncio.sleep(0)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(probe())
        await asyncio.wait_for(driver.run(), timeout=10)
    # The fake socket hands over 8 heartbeats at a time; the probe ran between any two.
    assert len(seen) >= 16
    assert len(set(seen)) == len(seen)


async def test_a_ui_driven_master_runs_test_after_test_with_the_same_workers(
        keys: KeyDir) -> None:
    from phalanx.cli.master_session import MasterSession
    from phalanx.web.app import RunConflict, RunRequestError, StartRequest

    async with cluster(keys, run_time=None, expect_workers=1) as c:
        lobby = c.master()
        settings = Settings(host=c.target.url, max_users=1000)
        session = MasterSession(settings, CLASSES, c.plan, lobby, Redactor())
        serving = c.tg.create_task(session.serve())
        w1, w2 = c.worker("w1"), c.worker("w2")
        await until(lambda: session.status().workers == 2)
        with pytest.raises(RunRequestError, match="outside the allowed targets"):
            session.start(StartRequest(4, 100.0, "http://127.0.0.2:9", None))
        with pytest.raises(RunRequestError, match="max-users"):
            session.start(StartRequest(5000, 100.0, None, None))
        with pytest.raises(RunConflict, match="no test is running"):
            session.request_stop()
        session.start(StartRequest(4, 100.0, None, None))
        with pytest.raises(RunConflict, match="running"):
            session.start(StartRequest(4, 100.0, None, None))
        await until(lambda: w1.driver.running_users + w2.driver.running_users == 4)
        session.change_target(6, 100.0)
        await until(lambda: w1.driver.running_users + w2.driver.running_users == 6)
        session.request_stop()
        await until(lambda: session.last_result is not None and not session._running)
        first = session.last_result
        assert session.latest is first.snapshot  # between tests the last one shows
        session.start(StartRequest(2, 100.0, None, 0.5))
        await until(lambda: session.last_result is not first, timeout=15)
        runs = session.runs()
        assert [run["reason"] for run in runs] == ["requested", "run_time"]
        assert all(run["workers"] == 2 for run in runs)
        session.shutdown(now=False)
        assert await asyncio.wait_for(serving, timeout=10) is session.last_result
        counted = sum(int(run["requests"]) for run in runs)  # type: ignore[call-overload]
        assert counted == c.target.stats.total_requests
