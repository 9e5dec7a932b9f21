"""WS-UsernameToken PasswordDigest is enforced on everything but GetSystemDateAndTime."""

from __future__ import annotations

import datetime as dt
import os

import httpx
from onvif import ONVIFCamera

from tests.simulator.conftest import PASSWORD
from tests.simulator.helpers import NS, body_child, fault_subcodes, soap_call
from xueliang.connectors.onvif.simulator import CameraSimulator

INFO = "<tds:GetDeviceInformation/>"


def _device(sim: CameraSimulator, index: int = 0) -> str:
    return f"http://{sim.cameras[index].address}:{sim.http_port}/onvif/device_service"


async def _camera_clock(http: httpx.AsyncClient, device: str) -> tuple[dt.datetime, dt.datetime]:
    """The camera's UTC clock from GetSystemDateAndTime, and our clock when the answer came.

    The whole date and time is compared, never one field (year, hour): a field read on either side
    of a boundary (New Year, the top of an hour) differs although the clocks agree.
    """
    status, root = await soap_call(http, device, "<tds:GetSystemDateAndTime/>")
    ours = dt.datetime.now(dt.UTC)
    assert status == 200
    fields = {
        name: int(root.findtext(f".//tt:UTCDateTime/tt:{part}/tt:{name}", namespaces=NS) or "-1")
        for part, names in (("Date", ("Year", "Month", "Day")), ("Time", ("Hour", "Minute", "Second")))
        for name in names
    }
    order = ("Year", "Month", "Day", "Hour", "Minute", "Second")
    return dt.datetime(*(fields[name] for name in order), tzinfo=dt.UTC), ours


async def test_clock_needs_no_credentials(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    camera, ours = await _camera_clock(http, _device(sim))
    assert abs((camera - ours).total_seconds()) < 5, (camera, ours)


async def test_missing_or_wrong_credentials_are_not_authorized(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    for credentials in ({}, {"username": "admin", "password": "guess"}, {"username": "root", "password": PASSWORD}):
        status, root = await soap_call(http, _device(sim), INFO, **credentials)
        assert status == 400
        assert fault_subcodes(root) == ["ter:NotAuthorized"]
        assert root.findtext(".//env:Code/env:Value", namespaces=NS) == "env:Sender"
    status, root = await soap_call(http, _device(sim), INFO, username="admin", password=PASSWORD)
    assert status == 200
    assert body_child(root).findtext("tds:SerialNumber", namespaces=NS) == sim.cameras[0].serial


async def test_every_service_requires_the_token(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    base = f"http://{sim.cameras[0].address}:{sim.http_port}"
    for path, call in (
        ("/onvif/media_service", "<trt:GetProfiles/>"),
        ("/onvif/ptz_service", "<tptz:GetNodes/>"),
        ("/onvif/events_service", "<tev:GetEventProperties/>"),
        ("/onvif/media2_service", "<tr2:GetProfiles/>"),
    ):
        status, root = await soap_call(http, base + path, call)
        assert (status, fault_subcodes(root)) == (400, ["ter:NotAuthorized"]), path


async def test_created_outside_five_minutes_is_refused(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    now = dt.datetime.now(dt.UTC)
    for offset in (dt.timedelta(minutes=6), dt.timedelta(minutes=-6)):
        status, root = await soap_call(
            http, _device(sim), INFO, username="admin", password=PASSWORD, created=now + offset
        )
        assert (status, fault_subcodes(root)) == (400, ["ter:NotAuthorized"])
    status, _ = await soap_call(
        http, _device(sim), INFO, username="admin", password=PASSWORD, created=now - dt.timedelta(minutes=4)
    )
    assert status == 200


async def test_replayed_nonce_is_refused(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    nonce = os.urandom(16)
    created = dt.datetime.now(dt.UTC)
    first, _ = await soap_call(
        http, _device(sim), INFO, username="admin", password=PASSWORD, nonce=nonce, created=created
    )
    again, root = await soap_call(
        http, _device(sim), INFO, username="admin", password=PASSWORD, nonce=nonce, created=created
    )
    assert (first, again) == (200, 400)
    assert "replayed" in (root.findtext(".//env:Reason/env:Text", namespaces=NS) or "")


async def test_skewed_camera_accepts_a_client_that_adjusts_its_clock(
    sim: CameraSimulator, http: httpx.AsyncClient
) -> None:
    camera = sim.cameras[4]
    camera.faults.clock_skew_s = 3600.0
    skewed_clock, ours = await _camera_clock(http, _device(sim, 4))
    assert abs((skewed_clock - ours).total_seconds() - 3600) < 5, (skewed_clock, ours)
    status, root = await soap_call(http, _device(sim, 4), INFO, username="admin", password=PASSWORD)
    assert (status, fault_subcodes(root)) == (400, ["ter:NotAuthorized"])
    skewed = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3600)
    status, _ = await soap_call(http, _device(sim, 4), INFO, username="admin", password=PASSWORD, created=skewed)
    assert status == 200
    client = ONVIFCamera(camera.address, sim.http_port, "admin", PASSWORD, adjust_time=True)
    try:
        await client.update_xaddrs()  # GetSystemDateAndTime, then signed calls shifted by the offset
        device = await client.create_devicemgmt_service()
        assert (await device.GetDeviceInformation()).SerialNumber == camera.serial
    finally:
        await client.close()
