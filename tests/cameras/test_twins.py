"""The connector (provisioning) and the sweep's lean SOAP path read one camera the same way: a
SOAP fault is the same error class on both (one ``classify_fault``), and an advertised address is
repaired and rewritten the same way (one ``reached_service``/``reached_stream``)."""

from __future__ import annotations

import pytest

from xueliang.connectors.onvif import (
    AuthFailed,
    DeviceFault,
    OnvifClient,
    OnvifError,
    OnvifSettings,
    Unsupported,
)
from xueliang.connectors.onvif import ns as onvif_ns
from xueliang.connectors.onvif.errors import classify_fault
from xueliang.connectors.onvif.replay import CaptureReplayServer
from xueliang.connectors.onvif.urls import AddressFixer, reached_service, reached_stream
from xueliang.gateway.cameras.health import GET_TIME
from xueliang.gateway.cameras.lean_soap import CameraConnection
from xueliang.gateway.cameras.mapping import status_for
from xueliang.gateway.cameras.models import CameraSpec
from xueliang.gateway.cameras.service import CameraService
from xueliang.gateway.cameras.sweep import HealthSweep
from xueliang.gateway.models import CameraStatus
from xueliang.gateway.node import Node

from .conftest import CAPTURES

FAULT = """<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error">
 <env:Body><env:Fault>
  <env:Code><env:Value>env:{code}</env:Value>{subcode}</env:Code>
  <env:Reason><env:Text xml:lang="en">{reason}</env:Text></env:Reason>
 </env:Fault></env:Body></env:Envelope>"""

FAULTS = [
    # (code, subcode, reason, class): the first is the case the two paths once disagreed on
    ("Sender", "", "Unauthorized", AuthFailed),
    ("Sender", "ter:NotAuthorized", "Sender not Authorized", AuthFailed),
    ("Sender", "wsse:FailedAuthentication", "", AuthFailed),
    ("Receiver", "ter:ActionNotSupported", "Optional Action Not Implemented", Unsupported),
    ("Receiver", "", "Method not implemented", Unsupported),
    ("Sender", "ter:InvalidArgVal", "Argument value invalid", DeviceFault),
]


def fault(code: str, subcode: str, reason: str) -> bytes:
    sub = f"<env:Subcode><env:Value>{subcode}</env:Value></env:Subcode>" if subcode else ""
    return FAULT.format(code=code, subcode=sub, reason=reason).encode()


@pytest.mark.parametrize(("code", "subcode", "reason", "expected"), FAULTS)
async def test_both_paths_classify_a_fault_the_same_way(
    hikvision: CaptureReplayServer, code: str, subcode: str, reason: str, expected: type[OnvifError]
) -> None:
    hikvision.live_clock = False  # the override below answers GetSystemDateAndTime
    hikvision.answer("core", "GetSystemDateAndTime", fault(code, subcode, reason), status=400)
    async with OnvifClient("127.0.0.1", hikvision.port, "admin", "pw", settings=OnvifSettings()) as client:
        with pytest.raises(OnvifError) as by_connector:
            await client.probe()
    camera = f"127.0.0.1:{hikvision.port}"
    connection = CameraConnection(camera, 2, 5, OnvifSettings().parse_in_executor_bytes)
    try:
        with pytest.raises(OnvifError) as by_sweep:
            await connection.call(
                f"{hikvision.url()}/onvif/device_service", onvif_ns.DEVICE, "GetSystemDateAndTime", GET_TIME
            )
    finally:
        connection.close()
    codes = tuple(c.rpartition(":")[2] for c in (code, subcode) if c)
    assert classify_fault(codes, reason) is expected
    assert type(by_connector.value) is type(by_sweep.value) is expected
    assert status_for(by_connector.value) is status_for(by_sweep.value)


async def test_both_paths_repair_and_rewrite_advertised_addresses_the_same_way(
    hikvision: CaptureReplayServer, service: CameraService, node: Node
) -> None:
    # Firmware quirk: the media XAddr carries its port twice (host:port:port).
    services = (CAPTURES / "hikvision" / "core" / "GetServices.Response.xml").read_bytes()
    quirky = services.replace(b"http://10.10.1.60/onvif/Media", b"http://10.10.1.60:80:80/onvif/Media")
    assert quirky != services
    hikvision.answer("core", "GetServices", quirky)
    spec = CameraSpec(host="127.0.0.1", port=hikvision.port, username="admin", password="pw", name="海康")
    provisioned = await service.provision(spec, "tech")
    assert provisioned.record.status is CameraStatus.ONLINE, provisioned.reason

    hikvision.requests.clear()
    service.endpoints = type(service.endpoints)()  # the sweep learns the media address itself
    report = await HealthSweep(node, service).sweep_once()
    assert report.by_status == {"online": 1} and report.reprobed == 0, report
    assert hikvision.methods() == ["GetSystemDateAndTime", "GetServices", "GetStreamUri"]
    assert hikvision.requests[-1].path == "/onvif/Media"


@pytest.mark.parametrize(
    ("url", "kind", "expected"),
    [
        ("http://10.10.1.60/onvif/Media", "service", "http://cam.example:8080/onvif/Media"),
        ("http://10.10.1.60:80:80/onvif/Media", "service", "http://cam.example:8080/onvif/Media"),
        ("http://cam.example:8080:8080/onvif/Media", "service", "http://cam.example:8080/onvif/Media"),
        ("http://u:p@10.0.0.9/snap.jpg", "service", "http://u:p@cam.example:8080/snap.jpg"),
        ("http://CAM.example:8999/onvif/Events", "service", "http://CAM.example:8999/onvif/Events"),
        ("rtsp://10.10.1.60:554/ch1", "stream", "rtsp://cam.example:554/ch1"),
        ("rtsp://cam.example/ch1", "stream", "rtsp://cam.example/ch1"),
    ],
)
def test_the_connector_fixer_is_the_shared_pure_rule(url: str, kind: str, expected: str) -> None:
    fixer = AddressFixer("cam.example", 8080, enabled=True)
    if kind == "service":
        assert fixer.service(url) == reached_service(url, "cam.example", 8080) == expected
    else:
        assert fixer.stream(url) == reached_stream(url, "cam.example") == expected
    assert reached_stream("rtsp://10.1.1.1/x", "cam.example", rewrite=False) == "rtsp://10.1.1.1/x"
