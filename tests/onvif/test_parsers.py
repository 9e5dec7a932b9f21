"""Parsers on the real captures, the profile heuristics, and Media2 through a probe."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from xueliang.connectors.onvif import MediaProfile, OnvifClient, OnvifSettings, parsers
from xueliang.connectors.onvif import ns as onvif_ns
from xueliang.connectors.onvif.media import choose_profiles, mark_sub_streams
from xueliang.connectors.onvif.replay import CaptureReplayServer

from .conftest import capture


def _answer(camera: str, service: str, name: str) -> parsers.Element:
    return parsers.first_child(parsers.soap_body(parsers.parse_xml(capture(camera, service, name))))


def test_faults_from_both_cameras() -> None:
    axis = parsers.parse_fault(_answer("axis", "core", "GetServices.Error"))
    assert axis.codes == ("Receiver", "Action") and axis.reason == "Action failed"
    assert axis.detail == "The requested SOAP action failed"
    hik = parsers.parse_fault(_answer("hikvision", "core", "GetServices.Error"))
    assert hik.codes == ("Sender", "InvalidArgVal", "InvalidParameter")
    assert hik.reason == "the parameter value is illegal"
    assert "InvalidArgVal/InvalidParameter" in hik.describe()


def test_capabilities_map_categories_to_service_namespaces() -> None:
    found = parsers.parse_capabilities(_answer("hikvision", "core", "GetCapabilities.Response"))
    assert found.xaddrs[onvif_ns.ANALYTICS] == "http://10.10.1.60/onvif/Analytics"
    assert found.xaddrs[onvif_ns.DEVICEIO] == "http://10.10.1.60/onvif/DeviceIO"  # under <Extension>
    assert found.xaddrs[onvif_ns.IMAGING] == "http://10.10.1.60/onvif/Imaging"
    assert len(found.xaddrs) == 7  # the vendor's hikCapabilities has no ONVIF namespace: skipped
    assert found.pullpoint is True


def test_system_clock_and_device_information() -> None:
    clock = parsers.parse_system_date_time(_answer("axis", "core", "GetSystemDateAndTime.Response"))
    assert clock == datetime(2018, 2, 27, 23, 9, 59, tzinfo=UTC)  # UTC, not the camera's MST local time
    with pytest.raises(parsers.ParseError, match="GetDeviceInformationResponse"):
        parsers.parse_device_information(_answer("axis", "core", "GetSystemDateAndTime.Response"))


def test_subscription_with_reference_parameters() -> None:
    info = parsers.parse_subscription(_answer("axis", "events", "CreatePullPointSubscription.Response"))
    assert info.address == "http://192.168.0.19/onvif/services"
    assert [parsers.local_name(p) for p in info.reference_parameters] == ["SubscriptionId"]
    assert info.termination_time == datetime(2018, 3, 27, 23, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2018-02-27T18:28:52Z", datetime(2018, 2, 27, 18, 28, 52, tzinfo=UTC)),
        ("2018-02-27T19:28:52+01:00", datetime(2018, 2, 27, 18, 28, 52, tzinfo=UTC)),
        ("2018-02-27T18:28:52", datetime(2018, 2, 27, 18, 28, 52, tzinfo=UTC)),  # no zone: UTC
        ("2018-02-27 18:28:52Z", datetime(2018, 2, 27, 18, 28, 52, tzinfo=UTC)),  # space for T
        ("2018-02-27-18:28:52Z", datetime(2018, 2, 27, 18, 28, 52, tzinfo=UTC)),  # dash for T
        ("yesterday", None),
        ("", None),
    ],
)
def test_datetime_quirks(text: str, expected: datetime | None) -> None:
    assert parsers.parse_datetime(text) == expected


def test_topic_prefix_is_normalised_only_for_the_onvif_topic_namespace() -> None:
    topics = {"x": onvif_ns.ONVIF_TOPICS, "tnshik": "http://www.hikvision.com/2011/event/topics"}
    assert parsers.normalise_topic("x:VideoSource/MotionAlarm", topics) == "tns1:VideoSource/MotionAlarm"
    assert parsers.normalise_topic("tnshik:AlarmIn", topics) == "tnshik:AlarmIn"


def _profile(token: str, encoding: str, width: int, height: int, name: str = "", source: str = "vs") -> MediaProfile:
    return MediaProfile(token, name, encoding, width, height, 25.0, video_source=source)


def test_sub_streams_and_profile_choice() -> None:
    profiles = mark_sub_streams(
        [
            _profile("main", "H264", 1920, 1080),
            _profile("mjpeg", "JPEG", 640, 360),
            _profile("sub", "H264", 960, 540),
            _profile("tiny", "H264", 352, 288),
            _profile("other-camera-head", "H265", 2560, 1440, source="vs2"),
        ]
    )
    assert [p.is_sub_stream for p in profiles] == [False, True, True, True, False]
    assert choose_profiles(profiles) == ("sub", "main")  # "tiny" is under 640 px wide


def test_profile_choice_without_sub_streams_or_h264() -> None:
    assert choose_profiles(mark_sub_streams([_profile("a", "H265", 1920, 1080), _profile("b", "H265", 640, 480)])) == (
        "a",
        "a",
    )
    assert choose_profiles([]) == ("", "")
    # a profile named like a sub-stream counts as one even at the same size
    named = mark_sub_streams([_profile("p1", "H264", 1280, 720), _profile("p2", "H264", 1280, 720, name="SubStream")])
    assert choose_profiles(named) == ("p2", "p1")


MEDIA2_SERVICE = b"""
      <tds:Service>
        <tds:Namespace>http://www.onvif.org/ver20/media/wsdl</tds:Namespace>
        <tds:XAddr>http://10.10.1.60/onvif/Media2</tds:XAddr>
        <tds:Version><tt:Major>2</tt:Major><tt:Minor>10</tt:Minor></tds:Version>
      </tds:Service>
    </tds:GetServicesResponse>"""
MEDIA2_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:tr2="http://www.onvif.org/ver20/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema">'
    "<env:Body>{}</env:Body></env:Envelope>"
)
MEDIA2_PROFILES = MEDIA2_ENVELOPE.format(
    """<tr2:GetProfilesResponse>
  <tr2:Profiles token="Profile_1" fixed="true"><tr2:Name>mainStream</tr2:Name><tr2:Configurations>
    <tr2:VideoSource token="VideoSourceToken"><tt:Name>VideoSourceConfig</tt:Name><tt:UseCount>2</tt:UseCount>
      <tt:SourceToken>VideoSource_1</tt:SourceToken>
      <tt:Bounds x="0" y="0" width="2560" height="1440"/></tr2:VideoSource>
    <tr2:VideoEncoder token="VideoEncoderToken_1" GovLength="50" Profile="Main"><tt:Name>VideoEncoder_1</tt:Name>
      <tt:UseCount>1</tt:UseCount><tt:Encoding>H265</tt:Encoding>
      <tt:Resolution><tt:Width>2560</tt:Width><tt:Height>1440</tt:Height></tt:Resolution>
      <tt:RateControl ConstantBitRate="false"><tt:FrameRateLimit>25</tt:FrameRateLimit>
      <tt:BitrateLimit>4096</tt:BitrateLimit></tt:RateControl></tr2:VideoEncoder>
    <tr2:PTZ token="PTZToken"><tt:Name>PTZ</tt:Name><tt:UseCount>2</tt:UseCount>
      <tt:NodeToken>PTZNODETOKEN</tt:NodeToken></tr2:PTZ>
  </tr2:Configurations></tr2:Profiles>
  <tr2:Profiles token="Profile_2" fixed="true"><tr2:Name>subStream</tr2:Name><tr2:Configurations>
    <tr2:VideoSource token="VideoSourceToken"><tt:Name>VideoSourceConfig</tt:Name><tt:UseCount>2</tt:UseCount>
      <tt:SourceToken>VideoSource_1</tt:SourceToken>
      <tt:Bounds x="0" y="0" width="2560" height="1440"/></tr2:VideoSource>
    <tr2:VideoEncoder token="VideoEncoderToken_2" GovLength="50" Profile="Main"><tt:Name>VideoEncoder_2</tt:Name>
      <tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>
      <tt:Resolution><tt:Width>704</tt:Width><tt:Height>576</tt:Height></tt:Resolution>
      <tt:RateControl ConstantBitRate="false"><tt:FrameRateLimit>12.5</tt:FrameRateLimit>
      <tt:BitrateLimit>512</tt:BitrateLimit></tt:RateControl></tr2:VideoEncoder>
  </tr2:Configurations></tr2:Profiles>
</tr2:GetProfilesResponse>"""
).encode()


async def test_media2_is_used_when_offered(
    replay_factory: Callable[..., Awaitable[CaptureReplayServer]], settings: OnvifSettings
) -> None:
    """The captured cameras predate Media2: add it to the Hikvision GetServices answer and serve it."""
    server = await replay_factory("hikvision", live_clock=True)
    services = capture("hikvision", "core", "GetServices.Response")
    server.answer("core", "GetServices", services.replace(b"\n    </tds:GetServicesResponse>", MEDIA2_SERVICE, 1))
    server.answer("media2", "GetProfiles", MEDIA2_PROFILES)
    uri = "<tr2:{0}Response><tr2:Uri>{1}</tr2:Uri></tr2:{0}Response>"
    stream = uri.format("GetStreamUri", "rtsp://10.10.1.60:554/Streaming/Channels/101")
    server.answer("media2", "GetStreamUri", MEDIA2_ENVELOPE.format(stream).encode())
    snapshot = uri.format("GetSnapshotUri", "http://10.10.1.60/ISAPI/Streaming/channels/101/picture")
    server.answer("media2", "GetSnapshotUri", MEDIA2_ENVELOPE.format(snapshot).encode())

    async with OnvifClient("127.0.0.1", server.port, "admin", "pw", settings=settings) as client:
        result = await client.probe()

    assert result.media_version == 2
    assert [(p.token, p.encoding, p.width, p.height, p.fps, p.ptz) for p in result.profiles] == [
        ("Profile_1", "H265", 2560, 1440, 25.0, True),
        ("Profile_2", "H264", 704, 576, 12.5, False),
    ]
    assert result.profiles[0].stream_uri == "rtsp://127.0.0.1:554/Streaming/Channels/101"
    assert result.profiles[0].snapshot_uri == f"http://127.0.0.1:{server.port}/ISAPI/Streaming/channels/101/picture"
    assert (result.live_profile, result.analysis_profile) == ("Profile_2", "Profile_2")  # the only H.264
    media2 = [r for r in server.requests if r.service == "media2"]
    assert [r.method for r in media2] == ["GetProfiles", *["GetStreamUri", "GetSnapshotUri"] * 2]
    assert {r.path for r in media2} == {"/onvif/Media2"}
    assert all(b"UsernameToken" in r.body for r in media2)
    assert b"<m:Type>All</m:Type>" in media2[0].body


async def test_broken_media2_falls_back_to_media1(
    replay_factory: Callable[..., Awaitable[CaptureReplayServer]], settings: OnvifSettings
) -> None:
    server = await replay_factory("hikvision", live_clock=True)
    services = capture("hikvision", "core", "GetServices.Response")
    server.answer("core", "GetServices", services.replace(b"\n    </tds:GetServicesResponse>", MEDIA2_SERVICE, 1))
    # no media2 answers: the replay refuses them with ter:ActionNotSupported
    async with OnvifClient("127.0.0.1", server.port, "admin", "pw", settings=settings) as client:
        result = await client.probe()
    assert result.media_version == 1
    assert [p.token for p in result.profiles] == ["Profile_1", "Profile_2", "Profile_3"]


def test_address_fixer_keeps_credentials_but_never_logs_them(caplog: pytest.LogCaptureFixture) -> None:
    from xueliang.connectors.onvif.urls import AddressFixer

    fixer = AddressFixer("cam-7.example", 8080, enabled=True)
    with caplog.at_level("INFO", logger="xueliang.connectors.onvif.urls"):
        snapshot = fixer.service("http://admin:Secret1@192.168.1.64/snap.jpg?x=1")
        stream = fixer.stream("rtsp://admin:Secret1@192.168.1.64:10554/h264")
    assert snapshot == "http://admin:Secret1@cam-7.example:8080/snap.jpg?x=1"
    assert stream == "rtsp://admin:Secret1@cam-7.example:10554/h264"
    assert fixer.service("http://192.168.1.64:8080:8080/onvif/Media") == "http://cam-7.example:8080/onvif/Media"
    assert fixer.service("http://cam-7.example:8999/onvif/Events") == "http://cam-7.example:8999/onvif/Events"
    assert len(caplog.records) == 1 and "Secret1" not in caplog.text and "cam-7.example:8080" in caplog.text
    assert AddressFixer("h", 80, enabled=False).service("http://10.0.0.1/x") == "http://10.0.0.1/x"
