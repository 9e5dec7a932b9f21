"""Provisioning one camera at a time against the real camera simulator: identity, profiles and
URIs, idempotency by address, every failure's status and reason, the guard, status events."""

from __future__ import annotations

import pytest

from xueliang.connectors.onvif.simulator import CameraSimulator
from xueliang.gateway.cameras.errors import AddressNotAllowed
from xueliang.gateway.cameras.models import CameraChanges, CameraSpec
from xueliang.gateway.cameras.service import CameraService
from xueliang.gateway.errors import Conflict
from xueliang.gateway.models import CameraQuery, CameraStatus, Location
from xueliang.gateway.node import Node

from .conftest import SIM_PASSWORD


def spec(sim: CameraSimulator, index: int, **overrides: object) -> CameraSpec:
    values: dict[str, object] = {
        "host": sim.cameras[index].address,
        "port": sim.http_port,
        "username": "admin",
        "password": SIM_PASSWORD,
        "name": f"cam {index}",
    }
    values.update(overrides)
    return CameraSpec.model_validate(values)


async def test_add_reads_identity_profiles_uris_and_ptz(
    sim: CameraSimulator, service: CameraService, node: Node
) -> None:
    camera = sim.cameras[0]  # index 0: a PTZ dome
    record = await service.add(spec(sim, 0, location=Location(region_code="511902", township="东城街道")), "tech")

    assert record.status is CameraStatus.ONLINE and record.last_error == ""
    assert (record.manufacturer, record.model, record.firmware, record.serial) == (
        camera.manufacturer,
        camera.model,
        camera.firmware,
        camera.serial,
    )
    assert record.hardware_id == camera.hardware_id
    assert sim.streams is not None  # the video's size, known even without RTSP cameras
    width, height = sim.streams.main_size
    assert [(p.token, p.name, p.encoding, p.width, p.height) for p in record.profiles] == [
        ("Profile_1", "mainStream", "H264", width, height),
        ("Profile_2", "subStream", "H264", 640, 360),
    ]
    host = camera.address
    assert [p.stream_uri for p in record.profiles] == [
        f"rtsp://{host}:{sim.rtsp_port}/Streaming/Channels/101",
        f"rtsp://{host}:{sim.rtsp_port}/Streaming/Channels/102",
    ]
    assert {p.snapshot_uri for p in record.profiles} == {f"http://{host}:{sim.http_port}/onvif/snapshot/1.jpg"}
    assert record.analysis_profile == "Profile_2"  # the sub-stream is analysed
    assert record.live_profile == "Profile_1"  # the main stream goes to the wall
    assert record.ptz and record.ptz_presets == {"1": "大门 Gate", "2": "广场 Square", "3": "路口 Crossing"}
    assert abs(record.clock_offset_s) < 2 and record.last_seen is not None
    assert record.location.region_code == "511902"

    stored = await node.stores.cameras.get(record.id)
    assert stored == record
    assert SIM_PASSWORD not in stored.model_dump_json()  # encrypted at rest
    assert node.cipher.decrypt(stored.password_enc) == SIM_PASSWORD

    plain = await service.add(spec(sim, 1), "tech")
    assert not plain.ptz and plain.ptz_presets == {}


async def test_adding_an_address_again_updates_the_same_camera(sim: CameraSimulator, service: CameraService) -> None:
    first = await service.add(spec(sim, 2, name="old name"), "tech")
    again = await service.add(spec(sim, 2, name="新名称", category="school"), "tech")
    assert again.id == first.id and again.created_at == first.created_at
    assert (again.name, again.category) == ("新名称", "school")
    assert await service.count(CameraQuery()) == 1

    # A description without a password keeps the one on record (an exported list has none).
    kept = await service.add(spec(sim, 2, password=""), "tech")
    assert kept.status is CameraStatus.ONLINE and service.password_of(kept) == SIM_PASSWORD


async def test_a_given_id_moves_the_camera_and_a_clash_is_a_conflict(
    sim: CameraSimulator, service: CameraService
) -> None:
    placed = await service.add(spec(sim, 3, id="511902-0003"), "tech")
    moved = await service.add(spec(sim, 5, id="511902-0003"), "tech")  # re-addressed on site
    assert moved.id == placed.id == "511902-0003" and moved.host == sim.cameras[5].address
    assert await service.count(CameraQuery()) == 1
    with pytest.raises(Conflict, match="registered as camera 511902-0003"):
        await service.add(spec(sim, 5, id="another-id"), "tech")


@pytest.mark.parametrize(
    ("faults", "status", "reason"),
    [
        ({"wrong_password": True}, CameraStatus.AUTH_FAILED, "refused the username or password"),
        ({"offline": True}, CameraStatus.OFFLINE, "Camera unreachable"),
        ({"malformed_xml": True}, CameraStatus.DEGRADED, "broken answer"),
        ({"soap_fault": True}, CameraStatus.DEGRADED, "rejected the request"),
    ],
)
async def test_a_failed_probe_registers_the_camera_with_the_status_the_error_implies(
    sim: CameraSimulator, service: CameraService, faults: dict[str, bool], status: CameraStatus, reason: str
) -> None:
    for name, value in faults.items():
        setattr(sim.cameras[1].faults, name, value)
    provisioned = await service.provision(spec(sim, 1), "tech")
    record = provisioned.record
    assert record.status is status
    assert reason in record.last_error and reason in provisioned.reason
    assert "摄像机" in record.last_error.split(" / ")[0]  # Chinese first, English second
    assert record.profiles == [] and record.manufacturer == ""
    assert (await service.get(record.id)).status is status


async def test_quirks_that_still_provision(sim: CameraSimulator, service: CameraService) -> None:
    sim.cameras[2].faults.clock_skew_s = 3600.0
    sim.cameras[3].faults.no_get_services = True
    sim.cameras[5].faults.no_snapshot = True

    skewed = await service.provision(spec(sim, 2), "tech")
    assert skewed.record.status is CameraStatus.ONLINE
    assert skewed.record.clock_offset_s == pytest.approx(3600, abs=3)
    assert "NTP" in skewed.reason

    fallback = await service.provision(spec(sim, 3), "tech")
    assert fallback.record.status is CameraStatus.ONLINE and len(fallback.record.profiles) == 2
    assert "GetCapabilities" in fallback.reason

    no_snapshot = await service.provision(spec(sim, 5), "tech")
    assert no_snapshot.record.status is CameraStatus.ONLINE
    assert all(p.snapshot_uri == "" and p.stream_uri for p in no_snapshot.record.profiles)
    assert "no snapshot URI" in no_snapshot.reason


async def test_addresses_outside_the_allowed_networks_are_refused(service: CameraService) -> None:
    with pytest.raises(AddressNotAllowed) as caught:
        await service.add(CameraSpec(host="127.9.9.9", port=80), "tech")
    assert str(caught.value) == (
        "127.9.9.9 is outside the allowed networks 127.0.0.0/16, 127.1.0.0/16: "
        "add it to security.allowed_networks or fix the address"
    )
    with pytest.raises(AddressNotAllowed, match=r"localhost resolves to 127\.0\.0\.1"):
        service.guard.networks = (service.guard.networks[1],)
        await service.add(CameraSpec(host="localhost", port=80), "tech")
    assert await service.count(CameraQuery()) == 0


async def test_status_changes_reach_the_bus_and_live_feed(
    sim: CameraSimulator, service: CameraService, node: Node
) -> None:
    with node.live.subscribe(kinds=frozenset({"camera_status"})) as live:
        record = await service.add(spec(sim, 4), "tech")
        sim.cameras[4].faults.offline = True
        offline = await service.reprobe(record.id, "tech")
        assert offline.status is CameraStatus.OFFLINE
        again = await service.reprobe(record.id, "tech")  # no change: nothing published
        assert again.status is CameraStatus.OFFLINE
        seen = [live.queue.get_nowait() for _ in range(live.queue.qsize())]
    assert [(i.camera_id, i.data["old"], i.data["new"]) for i in seen] == [
        (record.id, "provisioning", "online"),
        (record.id, "online", "offline"),
    ]

    messages = await node.stores.bus.read("camera.status", "test", "t1", block_s=0)
    assert [(m.payload["camera_id"], m.payload["new"]) for m in messages] == [
        (record.id, "online"),
        (record.id, "offline"),
    ]
    assert "Camera unreachable" in messages[1].payload["error"]
    anomalies = await node.stores.bus.read("anomalies", "test", "t1", block_s=0)
    assert len(anomalies) == 1
    anomaly = anomalies[0].payload
    assert (anomaly["camera_id"], anomaly["rule"], anomaly["source"]) == (record.id, "camera.offline", "camera")
    assert anomaly["detail"]["previous"] == "online"


async def test_update_and_delete(sim: CameraSimulator, service: CameraService, node: Node) -> None:
    record = await service.add(spec(sim, 6), "tech")
    renamed = await service.update(record.id, CameraChanges(name="校门口", category="school"), "tech")
    assert (renamed.name, renamed.category, renamed.status) == ("校门口", "school", CameraStatus.ONLINE)

    wrong = await service.update(record.id, CameraChanges(password="not-the-password"), "tech")
    assert wrong.status is CameraStatus.AUTH_FAILED  # new credentials are probed at once
    fixed = await service.update(record.id, CameraChanges(password=SIM_PASSWORD), "tech")
    assert fixed.status is CameraStatus.ONLINE

    await service.delete(record.id, "tech")
    assert await service.count(CameraQuery()) == 0
    actions = [e.action for e in await node.stores.audit.query(actor="tech")]
    assert actions[:2] == ["cameras.delete", "cameras.reprobe"] and "cameras.update" in actions
