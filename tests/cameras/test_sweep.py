"""The health sweep against the real simulator: faults toggled on the cameras show up as status
changes (stored, published on the bus, offline ones as anomalies), the lean SOAP path finds the
same statuses as provisioning, stale or missing profiles are probed again, metrics are exported."""

from __future__ import annotations

import asyncio

from xueliang.connectors.onvif.simulator import CameraSimulator
from xueliang.gateway.cameras.models import CameraSpec
from xueliang.gateway.cameras.service import CameraService
from xueliang.gateway.cameras.sweep import HealthSweep, SweepState
from xueliang.gateway.models import CameraRecord, CameraStatus
from xueliang.gateway.node import Node

from .conftest import SIM_PASSWORD


async def add(sim: CameraSimulator, service: CameraService, index: int) -> CameraRecord:
    camera = sim.cameras[index]
    spec = CameraSpec(host=camera.address, port=sim.http_port, username="admin", password=SIM_PASSWORD)
    return await service.add(spec, "tech")


async def statuses(service: CameraService, records: list[CameraRecord]) -> list[str]:
    return [(await service.get(r.id)).status.value for r in records]


async def test_sweep_flips_a_camera_offline_online_offline_and_publishes(
    sim: CameraSimulator, service: CameraService, node: Node
) -> None:
    records = [await add(sim, service, i) for i in range(4)]
    sweep = HealthSweep(node, service)
    first = await sweep.sweep_once()
    assert first.checked == 4 and first.by_status == {"online": 4}
    assert first.written == 0  # healthy, unchanged, seen moments ago: nothing rewritten

    flips = []
    for offline in (True, False, True):
        sim.cameras[1].faults.offline = offline
        report = await sweep.sweep_once()
        flips.append((await statuses(service, records))[1])
        assert report.written == 1
    assert flips == ["offline", "online", "offline"]
    assert await statuses(service, records) == ["online", "offline", "online", "online"]
    stored = await service.get(records[1].id)
    assert "Camera unreachable" in stored.last_error and "无法连接摄像机" in stored.last_error

    changes = await node.stores.bus.read("camera.status", "test", "t", count=100, block_s=0)
    camera_1 = [(m.payload["old"], m.payload["new"]) for m in changes if m.payload["camera_id"] == records[1].id]
    assert camera_1 == [("provisioning", "online"), ("online", "offline"), ("offline", "online"), ("online", "offline")]
    anomalies = await node.stores.bus.read("anomalies", "test", "t", count=100, block_s=0)
    assert [(a.payload["camera_id"], a.payload["rule"]) for a in anomalies] == [(records[1].id, "camera.offline")] * 2

    metrics = node.metrics.render().decode()
    assert 'xueliang_cameras{status="offline"} 1.0' in metrics
    assert 'xueliang_cameras{status="online"} 3.0' in metrics
    assert "xueliang_camera_sweep_duration_seconds" in metrics
    assert "xueliang_camera_sweep_checked 4.0" in metrics


async def test_lean_checks_find_what_provisioning_finds(
    sim: CameraSimulator, service: CameraService, node: Node
) -> None:
    records = [await add(sim, service, i) for i in range(6)]
    service.endpoints = type(service.endpoints)()  # as after a restart: media services unknown
    sim.cameras[0].faults.wrong_password = True
    sim.cameras[1].faults.malformed_xml = True
    sim.cameras[2].faults.clock_skew_s = -900.0
    sim.cameras[3].faults.no_get_services = True  # the media service is learned from GetCapabilities
    sim.cameras[4].faults.soap_fault = True
    report = await HealthSweep(node, service).sweep_once()
    assert report.errors == 0
    assert await statuses(service, records) == ["auth_failed", "degraded", "online", "online", "degraded", "online"]
    skewed = await service.get(records[2].id)
    assert abs(skewed.clock_offset_s + 900) < 3  # signed with the offset, and the offset stored
    assert "refused the username or password" in (await service.get(records[0].id)).last_error
    assert len(service.endpoints) == 3  # learned on the way from the cameras 2, 3 and 5 that answered properly


async def test_stale_or_missing_profiles_are_probed_again(
    sim: CameraSimulator, service: CameraService, node: Node
) -> None:
    sim.cameras[5].faults.offline = True
    never_probed = await add(sim, service, 5)
    assert never_probed.status is CameraStatus.OFFLINE and never_probed.profiles == []
    changed = await add(sim, service, 6)
    stale = changed.model_copy(
        update={"profiles": [p.model_copy(update={"stream_uri": "rtsp://old/uri"}) for p in changed.profiles]}
    )
    await node.stores.cameras.upsert(stale)

    sim.cameras[5].faults.offline = False
    report = await HealthSweep(node, service).sweep_once()
    assert report.reprobed == 2
    probed = await service.get(never_probed.id)
    assert probed.status is CameraStatus.ONLINE and len(probed.profiles) == 2 and probed.manufacturer
    assert (await service.get(changed.id)).profiles == changed.profiles  # the URIs the camera gives now


async def test_sweep_service_runs_rounds_while_holding_the_lease(
    sim: CameraSimulator, service: CameraService, node: Node
) -> None:
    await add(sim, service, 0)
    service.settings = service.settings.model_copy(
        update={"sweep": service.settings.sweep.model_copy(update={"first_delay_s": 0, "interval_s": 0.2})}
    )
    sweep = HealthSweep(node, service)
    task = asyncio.create_task(sweep.run())
    async with asyncio.timeout(20):
        while sweep.rounds < 2:
            await asyncio.sleep(0.05)
    assert await node.stores.leases.holder("camera-sweep") == node.name
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sweep.state is SweepState.STOPPED

    await node.stores.leases.release("camera-sweep", node.name)
    assert await node.stores.leases.acquire("camera-sweep", "other-node", 60)
    rounds = sweep.rounds
    task = asyncio.create_task(sweep.run())
    async with asyncio.timeout(20):
        while sweep.standby_rounds < 2:
            await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sweep.rounds == rounds  # another node holds the lease: this one only waits


async def test_refused_credentials_are_not_tried_again_by_the_sweep(
    sim: CameraSimulator, service: CameraService, node: Node
) -> None:
    record = await add(sim, service, 2)
    sim.cameras[2].faults.wrong_password = True
    sweep = HealthSweep(node, service)
    await sweep.sweep_once()
    assert (await service.get(record.id)).status is CameraStatus.AUTH_FAILED
    refused = sim.counters()["soap"]["auth_failures"]
    await sweep.sweep_once()
    await sweep.sweep_once()
    assert sim.counters()["soap"]["auth_failures"] == refused  # cameras lock accounts after failures
    assert (await service.get(record.id)).status is CameraStatus.AUTH_FAILED

    sim.cameras[2].faults.offline = True
    await sweep.sweep_once()
    assert (await service.get(record.id)).status is CameraStatus.OFFLINE
    sim.cameras[2].faults.offline = False
    sim.cameras[2].faults.wrong_password = False  # fixed on site while it was away
    await sweep.sweep_once()
    assert (await service.get(record.id)).status is CameraStatus.ONLINE
