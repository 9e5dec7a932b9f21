"""PTZ commands and PullPoint events against the replayed cameras."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from lxml import etree

from xueliang.connectors.onvif import DeviceFault, OnvifClient, OnvifSettings, PullPointState
from xueliang.connectors.onvif import events as events_module
from xueliang.connectors.onvif.replay import CaptureReplayServer

from .conftest import capture

WSNT = "http://docs.oasis-open.org/wsn/b-2"


def _body(server: CaptureReplayServer, method: str) -> etree._Element:
    request = next(r for r in reversed(server.requests) if r.method == method)
    return etree.fromstring(request.body).find("{*}Body/*")


async def test_ptz_commands_reach_the_camera_as_onvif_requests(
    hikvision: CaptureReplayServer, settings: OnvifSettings
) -> None:
    async with OnvifClient("127.0.0.1", hikvision.port, "admin", "pw", settings=settings) as client:
        await client.continuous_move("Profile_1", pan=0.5, tilt=-0.25, zoom=0.0, timeout_s=2)
        await client.stop("Profile_1")
        await client.goto_preset("Profile_1", "4")
        presets = await client.get_presets("Profile_1")

    move = _body(hikvision, "ContinuousMove")
    assert move.findtext("{*}ProfileToken") == "Profile_1"
    pan_tilt = move.find("{*}Velocity/{*}PanTilt")
    assert (pan_tilt.get("x"), pan_tilt.get("y")) == ("0.5", "-0.25")
    assert move.find("{*}Velocity/{*}Zoom") is None
    assert move.findtext("{*}Timeout") == "PT2S"
    stop = _body(hikvision, "Stop")
    assert (stop.findtext("{*}PanTilt"), stop.findtext("{*}Zoom")) == ("true", "true")
    goto = _body(hikvision, "GotoPreset")
    assert (goto.findtext("{*}ProfileToken"), goto.findtext("{*}PresetToken")) == ("Profile_1", "4")
    assert presets[3].name == "Parking"
    # every PTZ call went to the PTZ XAddr from GetServices
    assert {r.path for r in hikvision.requests if r.service == "ptz"} == {"/onvif/PTZ"}


async def test_ptz_speeds_are_checked_before_sending(axis: CaptureReplayServer, settings: OnvifSettings) -> None:
    async with OnvifClient("127.0.0.1", axis.port, "admin", "pw", settings=settings) as client:
        with pytest.raises(ValueError, match="between -1 and 1"):
            await client.continuous_move("profile_1_h264", pan=1.5)
        with pytest.raises(ValueError, match="non-zero"):
            await client.continuous_move("profile_1_h264")
        await client.continuous_move("profile_1_h264", zoom=-1.0)
    assert _body(axis, "ContinuousMove").find("{*}Velocity/{*}Zoom").get("x") == "-1.0"


def _pull_answer(messages: str) -> bytes:
    """The captured (empty) Hikvision PullMessagesResponse with notification messages added.

    The captures hold no event; the messages use topics and item names from the same camera's
    GetEventProperties capture and tokens from its GetProfiles capture.
    """
    captured = capture("hikvision", "events", "PullMessages.Response")
    marker = b"</tev:TerminationTime>"
    return captured.replace(marker, marker + messages.encode(), 1)


MOTION = """
<wsnt:NotificationMessage>
  <wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic>
  <wsnt:Message><tt:Message UtcTime="2018-02-27T18:29:10Z" PropertyOperation="Changed">
    <tt:Source>
      <tt:SimpleItem Name="VideoSourceConfigurationToken" Value="VideoSourceToken"/>
      <tt:SimpleItem Name="VideoAnalyticsConfigurationToken" Value="VideoAnalyticsToken"/>
      <tt:SimpleItem Name="Rule" Value="MyMotionDetectorRule"/>
    </tt:Source>
    <tt:Data><tt:SimpleItem Name="IsMotion" Value="true"/></tt:Data>
  </tt:Message></wsnt:Message>
</wsnt:NotificationMessage>"""
ALARM_IN = """
<wsnt:NotificationMessage>
  <wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:Device/Trigger/AlarmIn</wsnt:Topic>
  <wsnt:Message><tt:Message UtcTime="2018-02-27T18:29:11Z" PropertyOperation="Initialized">
    <tt:Source><tt:SimpleItem Name="AlarmInToken" Value="AlarmIn_1"/></tt:Source>
    <tt:Data><tt:SimpleItem Name="State" Value="false"/></tt:Data>
  </tt:Message></wsnt:Message>
</wsnt:NotificationMessage>"""
BROKEN = """
<wsnt:NotificationMessage>
  <wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:VideoSource/SignalLoss</wsnt:Topic>
</wsnt:NotificationMessage>"""


async def test_hikvision_pullpoint_events_are_parsed(hikvision: CaptureReplayServer, settings: OnvifSettings) -> None:
    hikvision.answer("events", "PullMessages", _pull_answer(MOTION + BROKEN + ALARM_IN))
    async with OnvifClient("127.0.0.1", hikvision.port, "admin", "pw", settings=settings) as client:
        subscription = client.events()
        assert subscription.state is PullPointState.IDLE
        async with subscription as events:
            assert events.state is PullPointState.ACTIVE
            # Address from CreatePullPointSubscription.Response.xml, on the replay's host:port
            assert (
                events.address
                == f"http://127.0.0.1:{hikvision.port}/onvif/Events/PullSubManager_2018-02-27T18:28:52Z_5"
            )
            received = [await anext(events), await anext(events)]
            assert events.stats.pulls == 1 and events.stats.events == 2 and events.stats.skipped == 1
        assert subscription.state is PullPointState.CLOSED

    motion, alarm = received
    assert motion.camera == f"127.0.0.1:{hikvision.port}"
    assert motion.topic == "tns1:RuleEngine/CellMotionDetector/Motion"
    assert motion.source == {
        "VideoSourceConfigurationToken": "VideoSourceToken",
        "VideoAnalyticsConfigurationToken": "VideoAnalyticsToken",
        "Rule": "MyMotionDetectorRule",
    }
    assert motion.data == {"IsMotion": "true"}
    assert motion.utc_time == datetime(2018, 2, 27, 18, 29, 10, tzinfo=UTC)
    assert motion.property_operation == "Changed"
    assert (alarm.topic, alarm.data, alarm.property_operation) == (
        "tns1:Device/Trigger/AlarmIn",
        {"State": "false"},
        "Initialized",
    )

    pull = _body(hikvision, "PullMessages")
    assert pull.findtext("{*}MessageLimit") == str(settings.pull_message_limit)
    assert hikvision.methods()[-1] == "Unsubscribe"  # sent on leaving (the replay refuses it: logged only)
    assert next(r for r in hikvision.requests if r.method == "PullMessages").path.startswith("/onvif/Events/PullSub")


async def test_an_empty_pull_waits_and_pulls_again(hikvision: CaptureReplayServer, settings: OnvifSettings) -> None:
    """The captured PullMessagesResponse is empty and comes back at once: the manager pauses, pulls again."""
    async with OnvifClient("127.0.0.1", hikvision.port, "admin", "pw", settings=settings) as client:
        async with client.events() as events:
            waiting = asyncio.ensure_future(anext(events))
            for _ in range(200):
                await asyncio.sleep(0.01)
                if events.stats.pulls >= 3:
                    break
            assert events.stats.pulls >= 3 and events.stats.events == 0
            assert not waiting.done()
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        assert events.state is PullPointState.CLOSED


async def test_axis_reference_parameters_are_echoed_and_renewal_happens_before_expiry(
    axis: CaptureReplayServer, settings: OnvifSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Axis names its subscription with a ReferenceParameter (dom0:SubscriptionId) sent back as a header."""
    create = capture("axis", "events", "CreatePullPointSubscription.Response")
    # A subscription granted for one second, so renewal comes due after a few pulls.
    create = create.replace(b"2018-03-27T23:10:30Z", b"2018-02-27T23:10:31Z")
    axis.answer("events", "CreatePullPointSubscription", create)
    axis.answer("events", "PullMessages", _pull_answer(ALARM_IN))
    renew = (
        b'<?xml version="1.0"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
        b'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"><env:Body><wsnt:RenewResponse>'
        b"<wsnt:TerminationTime>2018-02-27T23:11:30Z</wsnt:TerminationTime>"
        b"<wsnt:CurrentTime>2018-02-27T23:10:30Z</wsnt:CurrentTime>"
        b"</wsnt:RenewResponse></env:Body></env:Envelope>"
    )
    axis.answer("events", "Renew", renew)
    monkeypatch.setattr(events_module, "MIN_LIFETIME_S", 0.0)
    client = OnvifClient("127.0.0.1", axis.port, "admin", "pw", settings=settings)
    async with client, client.events() as events:
        for _ in range(500):
            await anext(events)
            await asyncio.sleep(0.005)
            if events.stats.renewals:
                break
        assert events.stats.renewals == 1 and events.stats.resubscribes == 0

    for method in ("PullMessages", "Renew", "Unsubscribe"):
        request = next(r for r in axis.requests if r.method == method)
        header = etree.fromstring(request.body).find("{*}Header")
        subscription_id = header.find("{http://www.axis.com/2009/event}SubscriptionId")
        assert subscription_id is not None, method
        assert subscription_id.text.strip() == "5"
        assert subscription_id.get("{http://www.w3.org/2005/08/addressing}IsReferenceParameter") == "true"
        assert (
            header.findtext("{http://www.w3.org/2005/08/addressing}To")
            == f"http://127.0.0.1:{axis.port}/onvif/services"
        )
    assert _body(axis, "Renew").tag == f"{{{WSNT}}}Renew"


async def test_refused_renew_subscribes_again(hikvision: CaptureReplayServer, settings: OnvifSettings) -> None:
    """No Renew in the Hikvision captures: the replay refuses it, so the manager subscribes anew."""
    client = OnvifClient("127.0.0.1", hikvision.port, "admin", "pw", settings=settings)
    async with client, client.events() as events:
        await events.renew()
        assert events.stats.resubscribes == 1 and events.state is PullPointState.ACTIVE
    assert hikvision.methods().count("CreatePullPointSubscription") == 2


async def test_a_failed_pull_leaves_the_subscription_failed(axis: CaptureReplayServer, settings: OnvifSettings) -> None:
    async with OnvifClient("127.0.0.1", axis.port, "admin", "pw", settings=settings) as client:
        async with client.events() as events:
            with pytest.raises(DeviceFault, match="InvalidArgs"):  # axis/events/PullMessages.Error.xml
                await anext(events)
            assert events.state is PullPointState.FAILED
            with pytest.raises(RuntimeError, match="open a new one"):
                await anext(events)
        assert events.state is PullPointState.CLOSED
