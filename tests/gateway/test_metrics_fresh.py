"""/metrics reads the registry's counts at scrape time, not as of the last health-sweep round.

Real gateways (uvicorn on loopback; SQLite, or a real redis-server in scale-out) and the camera
simulator: cameras added over the API show in the very next scrape, on any node of a scale-out; a
store that fails during the scrape leaves the last counts in an HTTP 200 answer and one warning; two
scrapes in a row read the store once. Then ``Metrics.refresh`` alone: concurrent scrapes share one
run, and a refresher that hangs or fails keeps its last values, warned once per outage.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import RunningGateway, dev_settings, serving
from tests.cameras.conftest import ALLOWED, SIM_PASSWORD, sim_config
from tests.conftest import RedisProcess
from xueliang.api.routes.health import metrics as metrics_route
from xueliang.connectors.onvif.simulator import CameraSimulator
from xueliang.gateway.cameras.runtime import attach_cameras
from xueliang.gateway.errors import StoreUnavailable
from xueliang.gateway.metrics import Metrics
from xueliang.gateway.models import CameraRecord, CameraStatus, PatrolPolicy
from xueliang.gateway.node import open_node
from xueliang.gateway.settings import Settings

NO_SWEEP = {"probe_timeout_s": 3, "sweep": {"enabled": False}}  # no round can refresh the counts here


def gateway_settings(data_dir: Path, **overrides: object) -> Settings:
    return dev_settings(data_dir, security={"allowed_networks": ALLOWED}, cameras=NO_SWEEP, **overrides)


def scaleout(name: str, redis_url: str, prefix: str) -> dict[str, object]:
    return {
        "node": {"mode": "scaleout", "name": name},
        "storage": {"redis_url": redis_url, "redis_prefix": prefix},
        "events": {"codes": {"node_tag": name.upper() * 2}},
    }


def families_of(text: str) -> dict[str, dict[str, float]]:
    """A scrape's samples: family name -> the first label's value -> value."""
    families: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            label = next(iter(sample.labels.values()), "")
            families.setdefault(sample.name, {})[label] = sample.value
    return families


async def scrape(gw: RunningGateway) -> dict[str, dict[str, float]]:
    """``GET /metrics`` of ``gw``, HTTP 200 asserted."""
    async with gw.client() as anonymous:
        response = await anonymous.get("/metrics")
    assert response.status_code == 200, response.text
    return families_of(response.text)


def nonzero(counts: dict[str, float]) -> dict[str, int]:
    return {status: int(n) for status, n in counts.items() if n}


async def add_over_api(gw: RunningGateway, sim: CameraSimulator, indexes: range) -> dict[str, int]:
    """Cameras ``indexes`` of ``sim`` added through ``POST /api/cameras``; the registry's summary after."""
    token = await gw.login(*gw.admin)
    async with gw.client(token) as client:
        for index in indexes:
            camera = sim.cameras[index]
            body = {"host": camera.address, "port": sim.http_port, "username": "admin", "password": SIM_PASSWORD}
            added = await client.post("/api/cameras", json={**body, "policy": {"enabled": False}})
            assert added.status_code == 201, added.text
        summary = await client.get("/api/cameras/summary")
    assert summary.status_code == 200, summary.text
    return {status: n for status, n in summary.json()["by_status"].items() if n}


async def test_cameras_added_over_the_api_show_in_the_next_scrape(tmp_path: Path) -> None:
    """Failed on the old code: the scrape still said what the last round counted (no camera)."""
    async with CameraSimulator(sim_config(count=4)) as sim, serving(gateway_settings(tmp_path)) as gw:
        assert gw.node.cameras is not None
        await gw.node.cameras.sweep.refresh_counts()  # a round's end: the counts as of then (none)
        sim.cameras[2].faults.wrong_password = True
        sim.cameras[3].faults.offline = True
        summary = await add_over_api(gw, sim, range(4))
        assert summary == {"online": 2, "auth_failed": 1, "offline": 1}
        cameras = (await scrape(gw))["xueliang_cameras"]
    assert nonzero(cameras) == summary
    assert set(cameras) == {str(status) for status in CameraStatus}  # every status, zeros included


async def test_any_node_of_a_scaleout_serves_the_shared_counts(tmp_path: Path, redis_url: str) -> None:
    """Failed on the old code: node b, which added nothing and swept nothing, exported no counts."""
    async with (
        CameraSimulator(sim_config(count=2)) as sim,
        serving(gateway_settings(tmp_path / "a", **scaleout("a", redis_url, "fresh:"))) as a,
        open_node(gateway_settings(tmp_path / "b", **scaleout("b", redis_url, "fresh:"))) as b,
    ):
        runtime = await attach_cameras(b)  # the camera side of a second node, wired as a serving node wires it
        try:
            sim.cameras[1].faults.wrong_password = True
            summary = await add_over_api(a, sim, range(2))
            assert summary == {"online": 1, "auth_failed": 1}
            answer = await metrics_route(b)  # node b's /metrics (it serves no HTTP here: a holds the admin)
            assert answer.status_code == 200
            assert nonzero(families_of(bytes(answer.body).decode())["xueliang_cameras"]) == summary
            assert nonzero((await scrape(a))["xueliang_cameras"]) == summary
        finally:
            await runtime.service.close()


def record(index: int, status: CameraStatus) -> CameraRecord:
    host = f"127.1.0.{index + 1}"
    return CameraRecord(id=f"cam-{index}", name=host, host=host, status=status, policy=PatrolPolicy(enabled=False))


async def test_a_store_failing_during_the_scrape_leaves_the_last_counts_and_one_warning(
    tmp_path: Path, disposable_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """Failed on the old code: the scrape read no store, so it neither tried nor warned nor counted."""
    settings = gateway_settings(tmp_path, **scaleout("a", disposable_redis.url, "down:"))
    async with serving(settings) as gw:
        assert gw.node.cameras is not None
        for index, status in enumerate([CameraStatus.ONLINE, CameraStatus.ONLINE, CameraStatus.OFFLINE]):
            await gw.node.stores.cameras.upsert(record(index, status))
        await gw.node.cameras.sweep.refresh_counts()  # the last values: a round's end
        disposable_redis.stop()
        try:
            with caplog.at_level(logging.WARNING, logger="xueliang.gateway.metrics"):
                families = await scrape(gw)
        finally:
            disposable_redis.start()  # back (empty) on the same port, so the node stops cleanly
    assert nonzero(families["xueliang_cameras"]) == {"online": 2, "offline": 1}
    assert families["xueliang_metrics_refresh_failures_total"] == {"camera-counts": 1.0}
    warnings = [r for r in caplog.records if r.name == "xueliang.gateway.metrics" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "camera-counts not refreshed" in warnings[0].getMessage(), warnings


async def test_two_scrapes_in_a_row_count_the_registry_once(tmp_path: Path) -> None:
    """Failed on the old code: the scrapes read no store at all (0 counts, not 1)."""
    async with serving(gateway_settings(tmp_path)) as gw:
        registry = gw.node.stores.cameras
        await registry.upsert(record(0, CameraStatus.ONLINE))
        queries = 0
        status_counts = registry.status_counts

        async def counted() -> dict[CameraStatus, int]:
            nonlocal queries
            queries += 1
            return await status_counts()

        registry.status_counts = counted  # type: ignore[method-assign]  # a spy, the real query underneath
        gw.node.metrics.refresh_every_s = 3600.0  # far above the test's run time: no machine is slow enough
        first, second = await scrape(gw), await scrape(gw)
    assert queries == 1
    assert nonzero(first["xueliang_cameras"]) == nonzero(second["xueliang_cameras"]) == {"online": 1}


async def test_concurrent_refreshes_share_one_run() -> None:
    metrics = Metrics("t", refresh_every_s=0.0)
    runs = 0
    started, release = asyncio.Event(), asyncio.Event()

    async def gated() -> None:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()

    metrics.add_refresher("gated", gated)
    scrapes = [asyncio.create_task(metrics.refresh()) for _ in range(3)]
    await started.wait()  # the three scrapes have all asked by now (they ran before the refresh task)
    release.set()
    await asyncio.gather(*scrapes)
    assert runs == 1
    await metrics.refresh()  # refresh_every_s is 0: the next scrape runs it again
    assert runs == 2


async def test_a_hanging_or_failing_refresher_keeps_its_values_and_warns_once_per_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics("t", refresh_every_s=0.0, refresh_timeout_s=0.05)
    gauge = metrics.gauge("xueliang_test_value", "A value a refresher reads")
    answers: list[float | str] = [3.0, "hang", "fail", 5.0]

    async def refresher() -> None:
        answer = answers.pop(0)
        if answer == "hang":
            await asyncio.Event().wait()  # never answers: cut at refresh_timeout_s
        if answer == "fail":
            raise StoreUnavailable("the registry cannot be reached")
        gauge.set(float(answer))

    metrics.add_refresher("value", refresher)
    seen = []
    with caplog.at_level(logging.DEBUG, logger="xueliang.gateway.metrics"):
        for _ in range(4):
            await metrics.refresh()
            seen.append(metrics.registry.get_sample_value("xueliang_test_value"))
    assert seen == [3.0, 3.0, 3.0, 5.0]
    assert metrics.registry.get_sample_value("xueliang_metrics_refresh_failures_total", {"refresher": "value"}) == 2
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "xueliang.gateway.metrics"]
    assert [level for level, _ in lines] == ["WARNING", "DEBUG", "INFO"], lines
    assert "no answer within 0.05 s" in lines[0][1]
    assert "the registry cannot be reached" in lines[1][1]


async def test_a_refresher_with_a_defect_costs_the_scrape_nothing_else(caplog: pytest.LogCaptureFixture) -> None:
    """Old code: only store errors and timeouts were caught; any other exception (a Redis NOPERM
    ResponseError, a bug) escaped the task group, and /metrics answered 500 with none of the node's
    metrics, the healthy refreshers' included."""
    metrics = Metrics("t", refresh_every_s=0.0)
    good = metrics.gauge("xueliang_test_good", "Set by a healthy refresher")
    broken = metrics.gauge("xueliang_test_broken", "Set by a refresher that breaks after its first run")
    runs = [0]
    healthy_runs = [0]

    async def healthy() -> None:
        healthy_runs[0] += 1
        good.set(float(healthy_runs[0]))

    async def defective() -> None:
        runs[0] += 1
        if runs[0] > 1:
            raise RuntimeError("a defect in the refresher")
        broken.set(7.0)

    metrics.add_refresher("healthy", healthy)
    metrics.add_refresher("defective", defective)
    with caplog.at_level(logging.WARNING, logger="xueliang.gateway.metrics"):
        await metrics.refresh()
        await metrics.refresh()  # raises nothing
    assert metrics.registry.get_sample_value("xueliang_test_broken") == 7.0  # its last value is served
    assert metrics.registry.get_sample_value("xueliang_test_good") == 2.0  # the other one ran both times
    assert metrics.registry.get_sample_value("xueliang_metrics_refresh_failures_total", {"refresher": "defective"}) == 1
    [warning] = [r for r in caplog.records if r.name == "xueliang.gateway.metrics"]
    assert "a defect in the refresher" in warning.getMessage() and warning.exc_info is not None
