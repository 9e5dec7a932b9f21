"""Each fault switch makes a camera misbehave as specified; its neighbours stay healthy."""

from __future__ import annotations

import httpx
import pytest
from lxml import etree
from onvif import ONVIFCamera

from tests.simulator.conftest import PASSWORD
from tests.simulator.helpers import NS, fault_subcodes, request_xml, soap_call
from xueliang.connectors.onvif.simulator import CameraSimulator

AUTH = {"username": "admin", "password": PASSWORD}
INFO = "<tds:GetDeviceInformation/>"
SNAPSHOT = "<trt:GetSnapshotUri><trt:ProfileToken>Profile_1</trt:ProfileToken></trt:GetSnapshotUri>"


def _url(sim: CameraSimulator, index: int, path: str = "/onvif/device_service") -> str:
    return f"http://{sim.cameras[index].address}:{sim.http_port}{path}"


async def _post(client: httpx.AsyncClient, url: str, body: str = INFO) -> httpx.Response:
    return await client.post(url, content=request_xml(body, **AUTH))


async def test_offline_resets_new_and_open_connections(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    assert (await _post(http, _url(sim, 1))).status_code == 200  # keep-alive connection now open
    sim.cameras[1].faults.offline = True
    with pytest.raises(httpx.TransportError):
        await _post(http, _url(sim, 1))
    async with httpx.AsyncClient(trust_env=False) as fresh:
        with pytest.raises(httpx.TransportError):
            await _post(fresh, _url(sim, 1))
        with pytest.raises(httpx.TransportError):
            await fresh.get(_url(sim, 1, "/onvif/snapshot/1.jpg"))
    assert (await _post(http, _url(sim, 2))).status_code == 200
    sim.cameras[1].faults.offline = False
    assert (await _post(http, _url(sim, 1))).status_code == 200


async def test_timeout_accepts_but_never_answers(sim: CameraSimulator) -> None:
    sim.cameras[3].faults.timeout = True
    async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(5.0, read=0.3)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await _post(client, _url(sim, 3))
        with pytest.raises(httpx.ReadTimeout):
            await client.get(_url(sim, 3, "/onvif/snapshot/1.jpg"))
        assert (await _post(client, _url(sim, 4))).status_code == 200
    assert sim.counters()["http"]["unanswered"] == 2


async def test_slow_answers_after_the_delay(sim: CameraSimulator) -> None:
    sim.cameras[0].faults.slow_s = 1.0
    async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(5.0, read=0.2)) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await _post(impatient, _url(sim, 0))
    async with httpx.AsyncClient(trust_env=False, timeout=10.0) as patient:
        response = await _post(patient, _url(sim, 0))
        assert response.status_code == 200
        assert (
            etree.fromstring(response.content).findtext(".//tds:SerialNumber", namespaces=NS) == sim.cameras[0].serial
        )


async def test_malformed_xml_cannot_be_parsed(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    sim.cameras[5].faults.malformed_xml = True
    response = await _post(http, _url(sim, 5))
    assert response.status_code == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content)


async def test_soap_fault_on_every_call(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    sim.cameras[6].faults.soap_fault = True
    for body in ("<tds:GetSystemDateAndTime/>", INFO):
        status, root = await soap_call(http, _url(sim, 6), body, **AUTH)
        assert status == 500
        assert root.findtext(".//env:Code/env:Value", namespaces=NS) == "env:Receiver"
        assert fault_subcodes(root) == ["ter:Action"]


async def test_no_get_services_falls_back_to_capabilities(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    camera = sim.cameras[2]
    camera.faults.no_get_services = True
    status, root = await soap_call(http, _url(sim, 2), "<tds:GetServices><tds:IncludeCapability>false"
                                   "</tds:IncludeCapability></tds:GetServices>", **AUTH)  # fmt: skip
    assert (status, fault_subcodes(root)) == (500, ["ter:ActionNotSupported"])
    client = ONVIFCamera(camera.address, sim.http_port, "admin", PASSWORD)
    try:
        await client.update_xaddrs()
        assert client.xaddrs["http://www.onvif.org/ver10/media/wsdl"] == _url(sim, 2, "/onvif/media_service")
        assert client.xaddrs["http://www.onvif.org/ver20/ptz/wsdl"] == _url(sim, 2, "/onvif/ptz_service")
    finally:
        await client.close()


async def test_no_snapshot(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    sim.cameras[7].faults.no_snapshot = True
    status, root = await soap_call(http, _url(sim, 7, "/onvif/media_service"), SNAPSHOT, **AUTH)
    assert (status, fault_subcodes(root)) == (500, ["ter:ActionNotSupported"])
    response = await http.get(_url(sim, 7, "/onvif/snapshot/1.jpg"), auth=httpx.DigestAuth("admin", PASSWORD))
    assert response.status_code == 404


async def test_wrong_password(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    sim.cameras[1].faults.wrong_password = True
    status, root = await soap_call(http, _url(sim, 1), INFO, **AUTH)
    assert (status, fault_subcodes(root)) == (400, ["ter:NotAuthorized"])
    snapshot = await http.get(_url(sim, 1, "/onvif/snapshot/1.jpg"), auth=httpx.DigestAuth("admin", PASSWORD))
    assert snapshot.status_code == 401
    status, _ = await soap_call(http, _url(sim, 0), INFO, **AUTH)
    assert status == 200


async def test_unknown_operation_and_garbage(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    status, root = await soap_call(http, _url(sim, 0), "<tds:GetDot11Status/>", **AUTH)
    assert (status, fault_subcodes(root)) == (500, ["ter:ActionNotSupported"])
    response = await http.post(_url(sim, 0), content=b"<not-soap")
    assert response.status_code == 400
    assert fault_subcodes(etree.fromstring(response.content)) == ["ter:WellFormed"]
    assert (await http.get(_url(sim, 0))).status_code == 405
