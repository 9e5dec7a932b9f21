"""Redis going away and coming back under a running scale-out node, over a real redis-server.

- A stalled Redis (a proxy that stops forwarding one node's traffic): the leader's renewal hangs
  in the socket; its work must stop before its lease runs out, so that the other node, which takes
  the role once the lease expires, never runs the work alongside it.
- Redis killed and started again (empty) on the same port: one warning for the whole outage, one
  line when it answers again, and the node leads again.
- Redis back EMPTY: the consumer groups of the job queue and of a bus topic a consumer already
  read are created again on the next read (NOGROUP), and work queued after the restart flows.
- Redis back with its data (AOF) while a job and an outbox item were claimed: both are handed out
  again once their visibility/lease ends, and can be acknowledged then.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RedisProcess, free_port
from tests.contract.conftest import settings_for
from tests.stalling_proxy import StallingProxy
from xueliang.events.forwarder import Forwarder, ForwarderState
from xueliang.events.settings import ForwarderSettings
from xueliang.gateway import patrol as patrol_module
from xueliang.gateway.casework import CaseWork
from xueliang.gateway.errors import StoreUnavailable
from xueliang.gateway.leadership import Role, lead
from xueliang.gateway.models import CameraRecord, CameraStatus, PatrolPolicy, StreamProfile
from xueliang.gateway.node import Node, open_node
from xueliang.gateway.patrol import Patrol
from xueliang.gateway.settings import Settings
from xueliang.gateway.settings_loading import load_settings
from xueliang.gateway.stores import open_stores
from xueliang.gateway.stores.base import Job, OutboxStatus
from xueliang.inference.anomaly import Anomaly
from xueliang.inference.patrol.stats import PipelineState


def node_settings(tmp_path: Path, name: str, url: str) -> Settings:
    return load_settings(
        environ={},
        environment="development",
        node={"mode": "scaleout", "name": name, "data_dir": str(tmp_path / name)},
        storage={"redis_url": url, "redis_prefix": "outage:"},
        events={"codes": {"node_tag": name.upper() * 2}},
    )


class Works:
    """The role's work on each node; ``seen`` records who else ran when each one started."""

    def __init__(self) -> None:
        self.running: list[str] = []
        self.seen: list[tuple[str, list[str]]] = []

    def of(self, name: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def work() -> None:
            self.seen.append((name, list(self.running)))
            self.running.append(name)
            try:
                await asyncio.Event().wait()
            finally:
                self.running.remove(name)

        return work

    async def until(self, check: Callable[[], bool]) -> None:
        try:
            async with asyncio.timeout(10):
                while not check():
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise AssertionError(f"not reached in 10 s: running {self.running}, seen {self.seen}") from None


@contextlib.asynccontextmanager
async def leading(
    node: Node, role: Role, work: Callable[[], Coroutine[Any, Any, None]], **timing: float
) -> AsyncIterator[None]:
    task = asyncio.create_task(lead(node, role, work, **timing))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_leader_whose_redis_stalls_stops_before_another_node_takes_the_role(
    tmp_path: Path, disposable_redis: RedisProcess
) -> None:
    """Failed on the old code: the renewal waited for the socket timeout (10 s, retried), the work ran
    on, and node b started the same work once the lease expired: two schedulers at once."""
    works = Works()
    timing = {"renew_s": 0.25, "ttl_s": 1.5}
    redis_url = disposable_redis.url  # a Redis of its own: nothing else in the suite touches its keys
    async with (
        StallingProxy(redis_url) as proxy,
        open_node(node_settings(tmp_path, "a", proxy.url)) as a,
        open_node(node_settings(tmp_path, "b", redis_url)) as b,
    ):
        role_a, role_b = Role("scheduler"), Role("scheduler")
        async with leading(a, role_a, works.of("a"), **timing):
            await works.until(lambda: works.running == ["a"])
            async with leading(b, role_b, works.of("b"), **timing):
                proxy.stall()  # a's renewals now hang in the socket
                try:
                    await works.until(lambda: "b" in works.running)
                except AssertionError:
                    proxy.resume()  # or closing node a would wait on the stalled socket
                    raise
                assert works.seen == [("a", []), ("b", [])], "b started while a still ran the work"
                assert not role_a.leading and role_b.leading
                proxy.resume()
                for _ in range(4):  # a, answered again, finds the role taken and stays out
                    await asyncio.sleep(timing["renew_s"])
                    assert works.running == ["b"] and not role_a.leading


async def test_redis_killed_and_restarted_empty_one_warning_then_the_node_leads_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, disposable_redis: RedisProcess
) -> None:
    """Failed on the old code: a warning every ``renew_s`` for as long as Redis was down."""
    works = Works()
    async with open_node(node_settings(tmp_path, "a", disposable_redis.url)) as a:
        attempts = 0
        acquire = a.stores.leases.acquire

        async def counted(role: str, holder: str, ttl_s: float) -> bool:
            nonlocal attempts
            attempts += 1
            return await acquire(role, holder, ttl_s)

        a.stores.leases.acquire = counted  # type: ignore[method-assign]  # a spy, the real call underneath
        role = Role("scheduler")
        async with leading(a, role, works.of("a"), renew_s=0.05, ttl_s=1.0):
            await works.until(lambda: works.running == ["a"])
            caplog.set_level(logging.DEBUG, logger="xueliang.gateway.leadership")
            caplog.clear()
            disposable_redis.stop()
            await works.until(lambda: works.running == [] and not role.leading)
            before = attempts
            await works.until(lambda: attempts >= before + 5)  # several failed attempts in the outage
            disposable_redis.start()  # the same port, no persistence: Redis comes back empty
            await works.until(lambda: works.running == ["a"] and role.leading)
            assert await a.stores.leases.holder("scheduler") == "a"
    warnings = [r for r in caplog.records if r.name == "xueliang.gateway.leadership" and r.levelno >= logging.WARNING]
    taken = [r for r in warnings if "lease not taken" in r.getMessage()]
    assert len(taken) == 1, [r.getMessage() for r in warnings]
    assert disposable_redis.url.removeprefix("redis://").removesuffix("/0") in taken[0].getMessage()
    assert any("answers again" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert works.seen == [("a", []), ("a", [])]


async def test_redis_back_empty_consumer_groups_are_created_again_and_work_flows(
    tmp_path: Path, disposable_redis: RedisProcess
) -> None:
    """Pins what nothing tested: after an empty restart the job queue's group and a bus group this
    node had already created (and cached) are gone; reads recreate them instead of failing on NOGROUP."""
    async with await open_stores(settings_for("redis", tmp_path / "data", disposable_redis.url)) as stores:
        assert await stores.jobs.put("cam-1", {"n": 1})
        assert (await stores.jobs.take("w1", 0.1)) is not None
        await stores.bus.publish("anomalies", {"n": 1})
        assert len(await stores.bus.read("anomalies", "cases", "w1", block_s=0.1)) == 1
        disposable_redis.stop()
        with pytest.raises(StoreUnavailable, match="cannot be reached while taking a job"):
            await stores.jobs.take("w1", 0.1)
        with pytest.raises(StoreUnavailable, match="reading bus topic anomalies"):
            await stores.bus.read("anomalies", "cases", "w1", block_s=0.1)
        disposable_redis.start()  # empty: no stream, no group
        assert await stores.jobs.put("cam-2", {"n": 2})
        job = await stores.jobs.take("w1", 0.5)
        assert job is not None and job.key == "cam-2" and job.deliveries == 1
        await stores.jobs.ack(job)
        assert (await stores.jobs.stats()).in_flight == 0
        await stores.bus.publish("anomalies", {"n": 2})
        messages = await stores.bus.read("anomalies", "cases", "w1", block_s=0.5)
        assert [m.payload for m in messages] == [{"n": 2}]
        await stores.bus.ack("anomalies", "cases", [m.id for m in messages])
        assert await stores.bus.pending("anomalies", "cases") == 0


async def test_redis_back_with_its_data_claimed_job_and_outbox_item_come_back(tmp_path: Path) -> None:
    """Pins what nothing tested: Redis killed while a job and an outbox item are claimed, started again
    with its AOF; nothing is lost: both are handed out again once their visibility/lease ends."""
    server = RedisProcess(tmp_path / "redis", appendonly=True)
    try:
        settings = settings_for("redis", tmp_path / "data", server.url, job_visibility_s=0.3)
        async with await open_stores(settings) as stores:
            assert await stores.jobs.put("cam-1", {"n": 1})
            first = await stores.jobs.take("node-a", 0.1)
            assert first is not None
            assert await stores.outbox.add("XL-1", {"case": 1})
            assert [i.key for i in await stores.outbox.claim("node-a", limit=5, lease_s=0.3)] == ["XL-1"]
            server.stop()  # node-a's claims were in flight
            server.start()
            again = await stores.jobs.take("node-b", 2.0)  # waits out the visibility timeout
            assert again is not None and (again.key, again.deliveries) == ("cam-1", 2)
            await stores.jobs.ack(again)
            assert (await stores.jobs.stats()).in_flight == 0
            async with asyncio.timeout(5):
                while not (items := await stores.outbox.claim("node-b", limit=5, lease_s=30)):
                    await asyncio.sleep(0.05)
            assert [i.key for i in items] == ["XL-1"]
            await stores.outbox.mark_delivered("XL-1", {"ok": True})
            assert (await stores.outbox.get("XL-1")).status == OutboxStatus.DELIVERED
    finally:
        server.stop()


def records(caplog: pytest.LogCaptureFixture, logger: str, level: int, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and r.levelno == level and text in r.getMessage()]


def one_outage(caplog: pytest.LogCaptureFixture, logger: str, down: str, back: str) -> logging.LogRecord:
    """The one warning (no traceback) and the one line when the store answered again, of one outage."""
    warned = records(caplog, logger, logging.WARNING, down)
    assert len(warned) == 1, [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned[0].exc_info is None
    assert len(records(caplog, logger, logging.INFO, back)) == 1
    assert not [r for r in caplog.records if r.name == logger and r.levelno >= logging.ERROR]
    return warned[0]


async def until(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.02)


async def test_a_patrolling_scaleout_node_rides_out_a_redis_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed on the old code: a worker's take raised StoreUnavailable, the pipeline task ended, its task
    group cancelled the scheduler and the watch sessions (the supervisor restarted them all, with a
    traceback each time); and the scheduler, whose lease was lost, could not run a second time."""
    monkeypatch.setattr(patrol_module, "lead", functools.partial(lead, renew_s=0.1, ttl_s=2.0))
    server = RedisProcess(tmp_path / "redis", appendonly=True)  # the camera registry survives the restart
    try:
        settings = load_settings(
            environ={},
            environment="development",
            node={"mode": "scaleout", "name": "a", "data_dir": str(tmp_path / "a")},
            storage={"redis_url": server.url, "redis_prefix": "outage:", "job_visibility_s": 1.0},
            events={"codes": {"node_tag": "AA"}},
            detector={"model_path": str(tmp_path / "no-model.onnx")},
            analytics={
                "scheduler": {"tick_s": 0.05, "refresh_s": 0.2, "min_interval_s": 0.1},
                "pipeline": {"workers": 2, "take_timeout_s": 0.1, "grab_timeout_s": 1.0},
            },
        )
        async with open_node(settings) as node:
            await node.stores.cameras.upsert(
                CameraRecord(
                    id="cam-1",
                    name="cam-1",
                    host="127.0.0.1",
                    username="admin",
                    password_enc=node.cipher.encrypt("pw"),
                    # nothing listens there: each visit is a refused connection, counted, and acknowledged
                    profiles=[StreamProfile(token="sub", snapshot_uri=f"http://127.0.0.1:{free_port()}/snap.jpg")],
                    analysis_profile="sub",
                    status=CameraStatus.ONLINE,
                    policy=PatrolPolicy(interval_s=0.2),
                )
            )
            patrol = Patrol(
                node, CaseWork(node, settings.events), settings.detector, settings.sources, settings.analytics
            )
            await patrol.start()
            failed_takes = 0
            take = node.stores.jobs.take

            async def counted(consumer: str, timeout_s: float) -> Job | None:
                nonlocal failed_takes
                try:
                    return await take(consumer, timeout_s)
                except StoreUnavailable:
                    failed_takes += 1
                    raise

            node.stores.jobs.take = counted  # type: ignore[method-assign]  # a spy, the real call underneath
            task = asyncio.create_task(patrol.run())
            try:
                await until(lambda: patrol.pipeline.stats().jobs >= 2)
                caplog.set_level(logging.DEBUG, logger="xueliang.gateway.patrol")
                caplog.clear()
                server.stop()
                await until(lambda: failed_takes >= 4 or task.done())  # several failed takes in the outage
                assert not task.done(), task
                server.start()  # with its AOF: the registry, the lease and the queued jobs are back
                visits = patrol.pipeline.stats().jobs
                await until(lambda: patrol.pipeline.stats().jobs >= visits + 2 or task.done())
                assert not task.done(), task
                assert patrol.pipeline.state is PipelineState.RUNNING
                assert patrol.scheduler_role.leading
            finally:
                task.cancel()
                async with asyncio.timeout(15):  # stopping the patrol must not hang after an outage
                    await asyncio.gather(task, return_exceptions=True)
        down = one_outage(caplog, "xueliang.gateway.patrol", "job queue unavailable", "the job queue answers again")
        assert "visibility timeout" in down.getMessage()
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "a traceback: the patrol failed"
    finally:
        server.stop()


async def test_the_forwarder_logs_one_warning_per_outbox_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, disposable_redis: RedisProcess
) -> None:
    """Failed on the old code: ``log.exception`` with a traceback every ``poll_interval_s``."""
    async with await open_stores(settings_for("redis", tmp_path / "data", disposable_redis.url)) as stores:
        settings = ForwarderSettings(poll_interval_s=0.05, sender="fw-1")
        forwarder = Forwarder(settings, stores.outbox)
        claimed = 0
        claim = stores.outbox.claim

        async def counted(sender: str, *, limit: int, lease_s: float) -> Any:
            nonlocal claimed
            items = await claim(sender, limit=limit, lease_s=lease_s)
            claimed += 1
            return items

        stores.outbox.claim = counted  # type: ignore[method-assign]  # a spy, the real call underneath
        task = asyncio.create_task(forwarder.run())
        try:
            await until(lambda: forwarder.state is ForwarderState.RUNNING)
            caplog.set_level(logging.DEBUG, logger="xueliang.events.forwarder")
            disposable_redis.stop()
            await until(lambda: forwarder.stats.outbox_errors >= 5)  # several failed claims
            disposable_redis.start()
            errors, before = forwarder.stats.outbox_errors, claimed
            await until(lambda: claimed > before)  # a claim went through
            await asyncio.sleep(0.2)  # a few more claims, all answered
            assert forwarder.stats.outbox_errors == errors and not task.done()
        finally:
            forwarder.stop()
            await asyncio.wait_for(task, 10)
    name = "xueliang.events.forwarder"
    down = one_outage(caplog, name, "claiming from the outbox failed", "the outbox answers again")
    assert "StoreUnavailable" in down.getMessage()
    assert len(records(caplog, name, logging.DEBUG, "still fails")) >= 3


async def test_the_case_consumer_logs_one_warning_per_bus_outage_and_consumes_after(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, disposable_redis: RedisProcess
) -> None:
    """Failed on the old code: a warning every 2 s for as long as the bus could not be read."""
    settings = node_settings(tmp_path, "a", disposable_redis.url)
    async with open_node(settings) as node:
        cases = CaseWork(node, settings.events)
        await cases.start()
        attempts = 0
        claim_stale = node.stores.bus.claim_stale

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal attempts
            attempts += 1
            return await claim_stale(*args, **kwargs)

        node.stores.bus.claim_stale = counted  # type: ignore[method-assign]  # a spy, the real call underneath
        task = asyncio.create_task(cases.run())
        try:
            await until(lambda: attempts >= 1)
            caplog.set_level(logging.DEBUG, logger="xueliang.gateway.casework")
            disposable_redis.stop()
            before = attempts
            await until(lambda: attempts >= before + 3)  # several failed reads in the outage
            disposable_redis.start()  # empty: the group is created again on the next read
            anomaly = Anomaly(camera_id="cam-9", rule="camera.unreachable", value=3.0, threshold=3.0, source="camera")
            await cases.publish(anomaly)
            await until(lambda: cases.consumed == 1 or task.done())
            assert not task.done(), task
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    one_outage(caplog, "xueliang.gateway.casework", "cannot read anomalies from the bus", "the bus answers again")
