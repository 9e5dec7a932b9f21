"""The real ONVIF client (onvif-zeep-async, zeep deserialising through the WSDLs) against the simulator."""

from __future__ import annotations

import datetime as dt

from onvif import ONVIFCamera

from tests.simulator.conftest import PASSWORD
from xueliang.connectors.onvif.simulator import CameraSimulator

STREAM_SETUP = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}


async def test_probe_identity_profiles_and_uris(sim: CameraSimulator) -> None:
    camera = sim.cameras[3]
    client = ONVIFCamera(camera.address, sim.http_port, "admin", PASSWORD)
    try:
        await client.update_xaddrs()
        base = f"http://{camera.address}:{sim.http_port}"
        assert client.xaddrs["http://www.onvif.org/ver10/media/wsdl"] == f"{base}/onvif/media_service"
        assert client.xaddrs["http://www.onvif.org/ver20/media/wsdl"] == f"{base}/onvif/media2_service"
        assert "http://www.onvif.org/ver20/ptz/wsdl" not in client.xaddrs  # camera 3 has no PTZ
        device = await client.create_devicemgmt_service()
        info = await device.GetDeviceInformation()
        assert (info.Manufacturer, info.Model, info.SerialNumber) == (camera.manufacturer, camera.model, camera.serial)
        media = await client.create_media_service()
        profiles = await media.GetProfiles()
        assert [p.token for p in profiles] == ["Profile_1", "Profile_2"]
        main, sub = profiles
        assert main.VideoEncoderConfiguration.Encoding == "H264"
        assert (main.VideoEncoderConfiguration.Resolution.Width, main.VideoEncoderConfiguration.Resolution.Height) == (
            768,
            576,
        )
        assert sub.VideoEncoderConfiguration.Resolution.Width == 640
        uri = await media.GetStreamUri({"StreamSetup": STREAM_SETUP, "ProfileToken": "Profile_2"})
        assert uri.Uri == f"rtsp://{camera.address}:{sim.rtsp_port}/Streaming/Channels/102"
        snapshot_uri = await media.GetSnapshotUri({"ProfileToken": "Profile_1"})
        assert snapshot_uri.Uri == f"{base}/onvif/snapshot/1.jpg"
        sources = await media.GetVideoSources()
        assert sources[0].token == "VideoSource_1"
        hostname = await device.GetHostname()
        assert hostname.Name == camera.name
        interfaces = await device.GetNetworkInterfaces()
        assert interfaces[0].IPv4.Config.Manual[0].Address == camera.address
    finally:
        await client.close()


async def test_ptz_commands_reach_the_log_and_move_the_head(sim: CameraSimulator) -> None:
    camera = sim.cameras[2]
    assert camera.ptz is not None
    client = ONVIFCamera(camera.address, sim.http_port, "admin", PASSWORD)
    try:
        await client.update_xaddrs()
        ptz = await client.create_ptz_service()
        await ptz.ContinuousMove(
            {"ProfileToken": "Profile_1", "Velocity": {"PanTilt": {"x": 0.5, "y": -0.25}, "Zoom": {"x": 0.0}}}
        )
        moving = await ptz.GetStatus({"ProfileToken": "Profile_1"})
        assert moving.MoveStatus.PanTilt == "MOVING"
        await ptz.Stop({"ProfileToken": "Profile_1", "PanTilt": True, "Zoom": True})
        stopped = await ptz.GetStatus({"ProfileToken": "Profile_1"})
        assert stopped.MoveStatus.PanTilt == "IDLE"
        assert stopped.Position.PanTilt.x > 0.0  # it moved right while the move lasted
        assert stopped.Position.PanTilt.y < 0.0
        presets = await ptz.GetPresets({"ProfileToken": "Profile_1"})
        assert [p.token for p in presets] == ["1", "2", "3"]
        await ptz.GotoPreset({"ProfileToken": "Profile_1", "PresetToken": "2"})
        at_preset = await ptz.GetStatus({"ProfileToken": "Profile_1"})
        assert (at_preset.Position.PanTilt.x, at_preset.Position.Zoom.x) == (0.3, 0.25)
        await ptz.AbsoluteMove({"ProfileToken": "Profile_1", "Position": {"PanTilt": {"x": -0.9, "y": 0.4}}})
        assert (camera.ptz.pan, camera.ptz.tilt) == (-0.9, 0.4)
        nodes = await ptz.GetNodes()
        assert nodes[0].token == "PTZNode_1"
        configurations = await ptz.GetConfigurations()
        assert configurations[0].NodeToken == "PTZNode_1"
    finally:
        await client.close()
    log = [(c.operation, c.pan, c.tilt, c.preset_token) for c in camera.ptz.commands]
    assert log == [
        ("ContinuousMove", 0.5, -0.25, None),
        ("Stop", None, None, None),
        ("GotoPreset", None, None, "2"),
        ("AbsoluteMove", -0.9, 0.4, None),
    ]


async def test_pull_point_delivers_initial_state_then_motion_changes(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = await start_sim(event_period_s=0.3)
    camera = sim.cameras[0]
    client = ONVIFCamera(camera.address, sim.http_port, "admin", PASSWORD)
    try:
        await client.update_xaddrs()
        events = await client.create_events_service()
        properties = await events.GetEventProperties()
        assert properties.FixedTopicSet is True
        manager = await client.create_pullpoint_manager(dt.timedelta(seconds=60), lambda: None)
        pullpoint = manager.get_service()
        first = await pullpoint.PullMessages({"Timeout": "PT2S", "MessageLimit": 10})
        assert len(first.NotificationMessage) == 1
        initial = first.NotificationMessage[0].Message._value_1
        assert initial.PropertyOperation == "Initialized"
        second = await pullpoint.PullMessages({"Timeout": "PT5S", "MessageLimit": 10})
        assert second.NotificationMessage, "a switch arrives within one period (long poll)"
        changed = second.NotificationMessage[-1].Message._value_1
        assert changed.PropertyOperation == "Changed"
        item = changed.Data.SimpleItem[0]
        assert item.Name == "IsMotion"
        assert item.Value in ("true", "false")
        await manager.shutdown()
    finally:
        await client.close()
