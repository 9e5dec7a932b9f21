"""Many cameras told apart by address, and the /_sim control API driving them from outside."""

from __future__ import annotations

import asyncio

import httpx

from tests.simulator.conftest import PASSWORD
from tests.simulator.helpers import NS, soap_call
from xueliang.connectors.onvif.simulator import CameraSimulator


async def test_two_hundred_cameras_each_answer_their_own_serial(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim: CameraSimulator = await start_sim(count=200, base_address="127.1.2.1")
    assert len({c.address for c in sim.cameras}) == 200
    assert sim.cameras[199].address == "127.1.2.200"
    semaphore = asyncio.Semaphore(32)
    limits = httpx.Limits(max_connections=64)

    async with httpx.AsyncClient(trust_env=False, timeout=10.0, limits=limits) as client:

        async def serial(index: int) -> str:
            camera = sim.cameras[index]
            async with semaphore:
                _, root = await soap_call(
                    client,
                    f"http://{camera.address}:{sim.http_port}/onvif/device_service",
                    "<tds:GetDeviceInformation/>",
                    username="admin",
                    password=PASSWORD,
                )
            return root.findtext(".//tds:SerialNumber", namespaces=NS) or ""

        serials = await asyncio.gather(*(serial(i) for i in range(200)))
    assert serials == [c.serial for c in sim.cameras]
    assert len(set(serials)) == 200


async def test_address_without_camera_is_not_found(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    response = await http.post(f"http://127.0.0.1:{sim.http_port}/onvif/device_service", content=b"<x/>")
    assert response.status_code == 404
    assert "no simulated camera" in response.text


async def test_connections_off_loopback_are_refused(sim: CameraSimulator) -> None:
    """The HTTP listener binds the wildcard: the router it hands each new connection to refuses one
    that came in on the machine's network address (not a lab camera's 127.x.y.z), so the server
    resets it before any request, the control API included."""
    router = sim._router
    assert router.accept(sim.cameras[0].address) and router.accept("127.0.0.1")
    assert not router.accept("192.0.2.7") and not router.accept("::ffff:10.0.0.8")


async def test_control_api_lists_and_switches_faults(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    control = f"http://127.0.0.1:{sim.http_port}/_sim"
    health = (await http.get(f"{control}/health")).json()
    assert health["cameras"] == 8 and health["http_port"] == sim.http_port
    listing = (await http.get(f"{control}/cameras", params={"offset": 2, "limit": 3})).json()
    assert [c["address"] for c in listing["cameras"]] == ["127.1.0.3", "127.1.0.4", "127.1.0.5"]
    assert listing["cameras"][0]["serial"] == sim.cameras[2].serial
    changed = await http.patch(f"{control}/cameras/127.1.0.4/faults", json={"offline": True, "slow_s": 0.5})
    assert changed.status_code == 200 and changed.json()["offline"] is True
    assert sim.cameras[3].faults.offline and sim.cameras[3].faults.slow_s == 0.5
    rejected = await http.patch(f"{control}/cameras/3/faults", json={"slow_s": -1})
    assert rejected.status_code == 400 and "slow_s" in rejected.text
    unknown = await http.patch(f"{control}/cameras/3/faults", json={"explode": True})
    assert unknown.status_code == 400
    assert (await http.get(f"{control}/cameras/127.9.9.9")).status_code == 404
    bulk = await http.post(f"{control}/faults", json={"cameras": ["0", "127.1.0.2"], "faults": {"soap_fault": True}})
    assert bulk.json() == {"updated": 2}
    assert sim.cameras[0].faults.soap_fault and sim.cameras[1].faults.soap_fault
    assert (await http.delete(f"{control}/faults")).json() == {"reset": 8}
    assert not any(c.faults.any_active() for c in sim.cameras)


async def test_control_api_reads_the_ptz_log(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    camera = sim.cameras[4]
    url = f"http://{camera.address}:{sim.http_port}/onvif/ptz_service"
    body = ('<tptz:ContinuousMove><tptz:ProfileToken>Profile_1</tptz:ProfileToken><tptz:Velocity>'
            '<tt:PanTilt x="-0.3" y="0.2"/><tt:Zoom x="0.1"/></tptz:Velocity><tptz:Timeout>PT5S</tptz:Timeout>'
            "</tptz:ContinuousMove>")  # fmt: skip
    status, _ = await soap_call(http, url, body, username="admin", password=PASSWORD)
    assert status == 200
    log = (await http.get(f"http://127.0.0.1:{sim.http_port}/_sim/cameras/4/ptz")).json()
    assert log["moving"] is True and log["last_move"] == "ContinuousMove"
    assert log["commands"][-1] | {"at": 0} == {
        "at": 0, "operation": "ContinuousMove", "profile_token": "Profile_1", "pan": -0.3, "tilt": 0.2,
        "zoom": 0.1, "preset_token": None, "timeout_s": 5.0,
    }  # fmt: skip
    no_ptz = await http.get(f"http://127.0.0.1:{sim.http_port}/_sim/cameras/5/ptz")
    assert no_ptz.status_code == 404
