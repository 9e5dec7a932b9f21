"""Every way a camera can fail becomes one OnvifError subclass whose message names host:port."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from xueliang.connectors.onvif import (
    AuthFailed,
    ClockSkew,
    DeviceFault,
    MalformedResponse,
    NotOnvif,
    OnvifClient,
    OnvifError,
    OnvifSettings,
    Timeout,
    Unreachable,
    Unsupported,
)
from xueliang.connectors.onvif.replay import NOT_AUTHORIZED, CaptureReplayServer

from .conftest import capture

Factory = Callable[..., Awaitable[CaptureReplayServer]]

ACTION_NOT_SUPPORTED = b"""<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error">
 <env:Body><env:Fault>
  <env:Code><env:Value>env:Receiver</env:Value>
   <env:Subcode><env:Value>ter:ActionNotSupported</env:Value></env:Subcode></env:Code>
  <env:Reason><env:Text xml:lang="en">Optional Action Not Implemented</env:Text></env:Reason>
 </env:Fault></env:Body></env:Envelope>"""

HTML_PAGE = b"<!DOCTYPE html><html><head><title>Web Service</title></head><body>Login</body></html>"


async def _probe_error(port: int, settings: OnvifSettings) -> OnvifError:
    async with OnvifClient("127.0.0.1", port, "admin", "wrong", settings=settings) as client:
        with pytest.raises(OnvifError) as caught:
            await client.probe()
    error = caught.value
    assert f"127.0.0.1:{port}" in str(error)
    assert f"127.0.0.1:{port}" in error.message_zh
    return error


async def test_nothing_listening_is_unreachable(closed_port: int, settings: OnvifSettings) -> None:
    error = await _probe_error(closed_port, settings)
    assert type(error) is Unreachable
    assert error.operation == "GetSystemDateAndTime"
    assert "powered" in str(error)  # tells the technician what to check


async def test_a_peer_that_never_answers_is_a_timeout(
    raw_tcp_server: Callable[[bytes | None], Awaitable[int]], settings: OnvifSettings
) -> None:
    port = await raw_tcp_server(None)
    error = await _probe_error(port, settings.model_copy(update={"timeout_s": 0.3}))
    assert type(error) is Timeout
    assert "0.3 s" in str(error)


async def test_http_401_is_auth_failed(replay_factory: Factory, settings: OnvifSettings) -> None:
    server = await replay_factory("hikvision", live_clock=True)
    server.answer("core", "GetDeviceInformation", b"", status=401)
    error = await _probe_error(server.port, settings)
    assert type(error) is AuthFailed
    assert error.operation == "GetDeviceInformation"
    assert "HTTP 401" in str(error) and "password" in str(error)


async def test_not_authorized_fault_with_a_right_clock_is_auth_failed(
    replay_factory: Factory, settings: OnvifSettings
) -> None:
    server = await replay_factory("hikvision", live_clock=True)
    server.answer("core", "GetDeviceInformation", NOT_AUTHORIZED, status=400)
    error = await _probe_error(server.port, settings)
    assert type(error) is AuthFailed
    assert "NotAuthorized" in str(error)


async def test_not_authorized_fault_with_a_wrong_clock_is_clock_skew(
    replay_factory: Factory, settings: OnvifSettings
) -> None:
    server = await replay_factory("hikvision")  # the captured clock: February 2018
    server.answer("core", "GetDeviceInformation", NOT_AUTHORIZED, status=400)
    error = await _probe_error(server.port, settings)
    assert isinstance(error, ClockSkew) and isinstance(error, AuthFailed)
    assert error.offset_s < -200_000_000  # years behind
    assert "behind" in str(error) and "NTP" in str(error)
    assert "NTP" in error.message_zh


async def test_get_system_date_and_time_behind_auth_is_retried_signed(
    replay_factory: Factory, settings: OnvifSettings
) -> None:
    """Cameras that authenticate every request refuse the unsigned clock query: sign and go on."""
    server = await replay_factory("hikvision", refuse_unsigned=True)
    async with OnvifClient("127.0.0.1", server.port, "admin", "pw", settings=settings) as client:
        result = await client.probe()
    assert server.methods()[:3] == ["GetSystemDateAndTime", "GetSystemDateAndTime", "GetDeviceInformation"]
    assert b"UsernameToken" not in server.requests[0].body and b"UsernameToken" in server.requests[1].body
    assert result.identity.manufacturer == "HIKVISION"


async def test_an_html_page_is_not_onvif(replay_factory: Factory, settings: OnvifSettings) -> None:
    server = await replay_factory("hikvision")
    server.answer("core", "GetSystemDateAndTime", HTML_PAGE)
    error = await _probe_error(server.port, settings)
    assert type(error) is NotOnvif
    assert "web page" in str(error) and "port" in error.advice


async def test_xml_that_is_not_soap_is_not_onvif(replay_factory: Factory, settings: OnvifSettings) -> None:
    server = await replay_factory("hikvision")
    server.answer("core", "GetSystemDateAndTime", b"<?xml version='1.0'?><config><port>80</port></config>")
    assert type(await _probe_error(server.port, settings)) is NotOnvif


async def test_a_peer_that_does_not_speak_http_is_not_onvif(
    raw_tcp_server: Callable[[bytes | None], Awaitable[int]], settings: OnvifSettings
) -> None:
    port = await raw_tcp_server(b"SSH-2.0-OpenSSH_9.2p1\r\n")
    error = await _probe_error(port, settings)
    assert type(error) is NotOnvif
    assert "not valid HTTP" in str(error)


async def test_truncated_xml_is_malformed(replay_factory: Factory, settings: OnvifSettings) -> None:
    server = await replay_factory("hikvision", live_clock=True)
    whole = capture("hikvision", "media", "GetProfiles.Response")
    server.answer("media", "GetProfiles", whole[: len(whole) // 2])
    error = await _probe_error(server.port, settings)
    assert type(error) is MalformedResponse
    assert error.operation == "GetProfiles" and "invalid XML" in str(error)


async def test_missing_required_element_is_malformed(replay_factory: Factory, settings: OnvifSettings) -> None:
    server = await replay_factory("hikvision", live_clock=True)
    answer = capture("hikvision", "media", "GetStreamUri.Response").replace(b"<tt:Uri>", b"<tt:Url>")
    server.answer("media", "GetStreamUri", answer.replace(b"</tt:Uri>", b"</tt:Url>"))
    error = await _probe_error(server.port, settings)
    assert type(error) is MalformedResponse
    assert "no Uri" in str(error)


async def test_entity_expansion_is_refused(replay_factory: Factory, settings: OnvifSettings) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>&lol2;</env:Body></env:Envelope>'
    )
    server = await replay_factory("hikvision")
    server.answer("core", "GetSystemDateAndTime", bomb)
    error = await _probe_error(server.port, settings)
    assert type(error) is MalformedResponse and "DTD" in str(error)


async def test_other_faults_are_device_faults(axis: CaptureReplayServer, settings: OnvifSettings) -> None:
    async with OnvifClient("127.0.0.1", axis.port, "admin", "pw", settings=settings) as client:
        await client.probe()
        with pytest.raises(DeviceFault) as fault:  # axis/events/PullMessages.Error.xml: ter:InvalidArgs
            async with client.events() as events:
                await anext(events)
        assert "InvalidArgs" in str(fault.value)
        presets_fault = capture("hikvision", "core", "GetServices.Error")  # ter:InvalidArgVal
        axis.answer("ptz", "GetPresets", presets_fault, status=500)
        with pytest.raises(DeviceFault):
            await client.get_presets("profile_1_h264")


async def test_action_not_supported_is_unsupported(hikvision: CaptureReplayServer, settings: OnvifSettings) -> None:
    hikvision.answer("ptz", "GotoPreset", ACTION_NOT_SUPPORTED, status=500)
    async with OnvifClient("127.0.0.1", hikvision.port, "admin", "pw", settings=settings) as client:
        with pytest.raises(Unsupported) as missing:
            await client.goto_preset("Profile_1", "4")
    assert "ActionNotSupported" in str(missing.value) and missing.value.operation == "GotoPreset"


async def test_unsupported_service(replay_factory: Factory, settings: OnvifSettings) -> None:
    server = await replay_factory("hikvision", live_clock=True)
    answer = capture("hikvision", "core", "GetServices.Response")
    start = answer.index(b"<tds:Service>\n        <tds:Namespace>http://www.onvif.org/ver20/ptz/wsdl")
    end = answer.index(b"</tds:Service>", start) + len(b"</tds:Service>")
    server.answer("core", "GetServices", answer[:start] + answer[end:])
    async with OnvifClient("127.0.0.1", server.port, "admin", "pw", settings=settings) as client:
        result = await client.probe()
        assert not result.ptz and result.presets == ()
        with pytest.raises(Unsupported) as missing:
            await client.goto_preset("Profile_1", "1")
    assert f"127.0.0.1:{server.port}" in str(missing.value) and "PTZ" in str(missing.value)
