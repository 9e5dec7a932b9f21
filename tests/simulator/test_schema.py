"""Every SOAP answer validates against the ONVIF schemas shipped with the onvif package (lxml XMLSchema)."""

from __future__ import annotations

import copy

import httpx
import pytest
from lxml import etree

from tests.simulator.conftest import PASSWORD
from tests.simulator.helpers import NS, assert_valid, body_child, fault_subcodes, soap_call
from xueliang.connectors.onvif.simulator import CameraSimulator

DEVICE_CALLS = [
    "<tds:GetSystemDateAndTime/>",
    "<tds:GetDeviceInformation/>",
    "<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability></tds:GetServices>",
    "<tds:GetServices><tds:IncludeCapability>true</tds:IncludeCapability></tds:GetServices>",
    "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>",
    "<tds:GetHostname/>",
    "<tds:GetNetworkInterfaces/>",
    "<tds:GetScopes/>",
]
MEDIA_CALLS = [
    "<trt:GetProfiles/>",
    "<trt:GetProfile><trt:ProfileToken>Profile_2</trt:ProfileToken></trt:GetProfile>",
    "<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP"
    "</tt:Protocol></tt:Transport></trt:StreamSetup><trt:ProfileToken>Profile_1</trt:ProfileToken></trt:GetStreamUri>",
    "<trt:GetSnapshotUri><trt:ProfileToken>Profile_1</trt:ProfileToken></trt:GetSnapshotUri>",
    "<trt:GetVideoSources/>",
]
PROFILE = "<tptz:ProfileToken>Profile_1</tptz:ProfileToken>"
PTZ_CALLS = [
    "<tptz:GetConfigurations/>",
    "<tptz:GetConfiguration><tptz:PTZConfigurationToken>PTZConfig_1</tptz:PTZConfigurationToken></tptz:GetConfiguration>",
    "<tptz:GetNodes/>",
    "<tptz:GetNode><tptz:NodeToken>PTZNode_1</tptz:NodeToken></tptz:GetNode>",
    f"<tptz:GetPresets>{PROFILE}</tptz:GetPresets>",
    f'<tptz:ContinuousMove>{PROFILE}<tptz:Velocity><tt:PanTilt x="0.2" y="0.1"/></tptz:Velocity></tptz:ContinuousMove>',
    f"<tptz:GetStatus>{PROFILE}</tptz:GetStatus>",
    f"<tptz:Stop>{PROFILE}</tptz:Stop>",
    f"<tptz:GotoPreset>{PROFILE}<tptz:PresetToken>1</tptz:PresetToken></tptz:GotoPreset>",
    f'<tptz:AbsoluteMove>{PROFILE}<tptz:Position><tt:Zoom x="0.5"/></tptz:Position></tptz:AbsoluteMove>',
    f'<tptz:RelativeMove>{PROFILE}<tptz:Translation><tt:PanTilt x="0.1" y="0"/></tptz:Translation></tptz:RelativeMove>',
    f"<tptz:SetPreset>{PROFILE}<tptz:PresetName>north</tptz:PresetName></tptz:SetPreset>",
    f"<tptz:GotoHomePosition>{PROFILE}</tptz:GotoHomePosition>",
    # a name with XML metacharacters: the stored preset must come back escaped, still valid XML
    f"<tptz:SetPreset>{PROFILE}<tptz:PresetName>gate &amp; &lt;north&gt;</tptz:PresetName></tptz:SetPreset>",
    f"<tptz:GetPresets>{PROFILE}</tptz:GetPresets>",
]


def _url(sim: CameraSimulator, index: int, path: str) -> str:
    return f"http://{sim.cameras[index].address}:{sim.http_port}{path}"


@pytest.mark.parametrize(
    ("wsdl", "path", "calls"),
    [
        ("devicemgmt.wsdl", "/onvif/device_service", DEVICE_CALLS),
        ("media.wsdl", "/onvif/media_service", MEDIA_CALLS),
        ("ptz.wsdl", "/onvif/ptz_service", PTZ_CALLS),
    ],
)
async def test_answers_are_schema_valid(
    sim: CameraSimulator, http: httpx.AsyncClient, wsdl: str, path: str, calls: list[str]
) -> None:
    for call in calls:
        status, root = await soap_call(http, _url(sim, 0, path), call, username="admin", password=PASSWORD)
        assert status == 200, etree.tostring(root)
        assert_valid(body_child(root), wsdl)


async def test_event_answers_are_schema_valid(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    url = _url(sim, 1, "/onvif/events_service")
    auth = {"username": "admin", "password": PASSWORD}
    _, properties = await soap_call(http, url, "<tev:GetEventProperties/>", **auth)
    assert_valid(body_child(properties), "events.wsdl")
    _, created = await soap_call(
        http,
        url,
        "<tev:CreatePullPointSubscription><tev:InitialTerminationTime>PT30S</tev:InitialTerminationTime>"
        "</tev:CreatePullPointSubscription>",
        **auth,
    )
    assert_valid(body_child(created), "events.wsdl")
    address = created.findtext(".//wsa:Address", namespaces=NS)
    assert address is not None and address.startswith(f"http://{sim.cameras[1].address}:{sim.http_port}/")
    pull = "<tev:PullMessages><tev:Timeout>PT1S</tev:Timeout><tev:MessageLimit>5</tev:MessageLimit></tev:PullMessages>"
    _, pulled = await soap_call(http, address, pull, **auth)
    assert_valid(body_child(pulled), "events.wsdl")
    assert len(pulled.findall(".//wsnt:NotificationMessage", NS)) == 1
    renew = "<wsnt:Renew><wsnt:TerminationTime>PT60S</wsnt:TerminationTime></wsnt:Renew>"
    _, renewed = await soap_call(http, address, renew, **auth)
    assert_valid(body_child(renewed), "events.wsdl")
    _, gone = await soap_call(http, address, "<wsnt:Unsubscribe/>", **auth)
    assert_valid(body_child(gone), "events.wsdl")
    status, again = await soap_call(http, address, pull, **auth)
    assert status == 400
    assert "ter:ResourceUnknown" in fault_subcodes(again)


async def test_validator_rejects_a_broken_answer(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    """Guard against a validator that accepts anything: drop a required element and expect a failure."""
    _, root = await soap_call(
        http, _url(sim, 0, "/onvif/device_service"), "<tds:GetDeviceInformation/>", username="admin", password=PASSWORD
    )
    broken = copy.deepcopy(body_child(root))
    broken.remove(broken.find("tds:Model", NS))
    with pytest.raises(AssertionError, match="not schema-valid"):
        assert_valid(broken, "devicemgmt.wsdl")


async def test_media2_profiles_and_uris(sim: CameraSimulator, http: httpx.AsyncClient) -> None:
    url = _url(sim, 2, "/onvif/media2_service")
    auth = {"username": "admin", "password": PASSWORD}
    _, profiles = await soap_call(http, url, "<tr2:GetProfiles><tr2:Type>All</tr2:Type></tr2:GetProfiles>", **auth)
    tokens = [p.get("token") for p in profiles.iterfind(".//tr2:Profiles", NS)]
    assert tokens == ["Profile_1", "Profile_2"]
    encoder = profiles.find(".//tr2:Profiles/tr2:Configurations/tr2:VideoEncoder", NS)
    assert encoder is not None and encoder.findtext("tt:Encoding", namespaces=NS) == "H264"
    assert encoder.findtext("tt:Resolution/tt:Width", namespaces=NS) == "768"
    assert profiles.find(".//tr2:Configurations/tr2:PTZ", NS) is not None  # camera 2 has PTZ
    _, stream = await soap_call(
        http,
        url,
        "<tr2:GetStreamUri><tr2:Protocol>RtspUnicast</tr2:Protocol><tr2:ProfileToken>Profile_1</tr2:ProfileToken>"
        "</tr2:GetStreamUri>",
        **auth,
    )
    assert stream.findtext(".//tr2:Uri", namespaces=NS) == (
        f"rtsp://{sim.cameras[2].address}:{sim.rtsp_port}/Streaming/Channels/101"
    )
    _, snap = await soap_call(
        http, url, "<tr2:GetSnapshotUri><tr2:ProfileToken>Profile_2</tr2:ProfileToken></tr2:GetSnapshotUri>", **auth
    )
    assert snap.findtext(".//tr2:Uri", namespaces=NS) == _url(sim, 2, "/onvif/snapshot/1.jpg")
