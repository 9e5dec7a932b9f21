"""RTSP H.264 from the simulator CLI process: OpenCV, ffprobe, aiortc/PyAV, and raw RTP inspection."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import cv2
import httpx
import pytest

from tests.simulator.cli_process import SimulatorProcess
from tests.simulator.rtsp_client import RawRtspClient
from xueliang.connectors.onvif.simulator import read_wallclock_sei

PASSWORD = "Cli-Passw0rd"


@pytest.fixture(scope="module")
def cli() -> Iterator[SimulatorProcess]:
    process = SimulatorProcess("--count", "6", "--rtsp-count", "2", "--password", PASSWORD, "--base-address",
                               "127.1.7.1", "--event-period", "5")  # fmt: skip
    yield process
    process.stop()


def _rtsp(cli: SimulatorProcess, index: int, channel: int = 101, password: str = PASSWORD) -> str:
    return f"rtsp://admin:{password}@127.1.7.{index + 1}:{cli.info['rtsp_port']}/Streaming/Channels/{channel}"


def test_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "xueliang.connectors.onvif.simulator", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0
    assert "--count" in result.stdout and "--video" in result.stdout and "--rtsp-count" in result.stdout
    assert "sim-Passw0rd" in result.stdout  # the lab's built-in camera password: a technician needs it


def test_cli_is_ready_and_answers(cli: SimulatorProcess) -> None:
    assert cli.info["ready"] is True and cli.info["count"] == 6
    assert cli.info["username"] == "admin" and cli.info["password"] == "(as given: not shown)"  # only the built-in one
    health = httpx.get(cli.info["control"], trust_env=False, timeout=10).json()
    assert health["cameras"] == 6 and health["rtsp_port"] == cli.info["rtsp_port"]
    envelope = (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
        '<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>'
    )
    url = f"http://127.1.7.3:{cli.info['http_port']}/onvif/device_service"
    response = httpx.post(url, content=envelope, trust_env=False, timeout=10)
    assert response.status_code == 200 and b"UTCDateTime" in response.content


def test_cli_on_plain_asyncio_answers_and_stops_cleanly_on_sigterm() -> None:
    """The module's process runs on uvloop (the default); this one on the standard loop."""
    process = SimulatorProcess("--count", "2", "--rtsp-count", "0", "--loop", "asyncio", "--password", PASSWORD)
    try:
        url = f"http://127.1.0.2:{process.info['http_port']}/onvif/snapshot/1.jpg"
        response = httpx.get(url, auth=httpx.DigestAuth("admin", PASSWORD), trust_env=False, timeout=10)
        assert response.status_code == 200 and response.content.startswith(b"\xff\xd8")
    finally:
        assert process.stop() == 0


def test_opencv_decodes_frames_over_tcp(cli: SimulatorProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    capture = cv2.VideoCapture(_rtsp(cli, 0), cv2.CAP_FFMPEG)
    try:
        assert capture.isOpened()
        frames = [capture.read() for _ in range(10)]
    finally:
        capture.release()
    assert all(ok for ok, _ in frames)
    assert {image.shape for _, image in frames} == {(576, 768, 3)}
    assert max(float(image.std()) for _, image in frames) > 10.0


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_ffprobe_sees_constrained_baseline_h264(cli: SimulatorProcess, transport: str) -> None:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-rtsp_transport", transport, "-show_entries",
         "stream=codec_name,profile,width,height", "-of", "json", _rtsp(cli, 1, 102)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stream = json.loads(result.stdout)["streams"][0]
    assert stream == {"codec_name": "h264", "profile": "Constrained Baseline", "width": 640, "height": 360}


def test_wrong_password_and_non_streaming_camera_are_refused(cli: SimulatorProcess) -> None:
    denied = subprocess.run(["ffprobe", "-v", "error", _rtsp(cli, 0, password="bad")],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert denied.returncode != 0 and "401" in denied.stderr
    missing = subprocess.run(["ffprobe", "-v", "error", _rtsp(cli, 4)],
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert missing.returncode != 0 and "404" in missing.stderr


async def test_aiortc_media_player_gets_h264_packets(cli: SimulatorProcess) -> None:
    from aiortc.contrib.media import MediaPlayer

    player = await asyncio.to_thread(MediaPlayer, _rtsp(cli, 1), decode=False)
    assert player.video is not None
    try:
        packets = [await asyncio.wait_for(player.video.recv(), 20) for _ in range(30)]
    finally:
        player.video.stop()
    assert all(p.size > 0 for p in packets)
    pts = [p.pts for p in packets]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    assert any(p.is_keyframe for p in packets)  # GOP of one second at 25 fps (FFmpeg gives the very first no pts)


async def test_rtp_carries_marker_fu_a_rtcp_and_the_wallclock_sei(cli: SimulatorProcess) -> None:
    host, port = "127.1.7.2", cli.info["rtsp_port"]
    url = f"rtsp://{host}:{port}/Streaming/Channels/101"
    client = await RawRtspClient.connect(host, port, "admin", PASSWORD)
    try:
        options = await client.request("OPTIONS", url)
        assert "DESCRIBE" in options.headers["public"]
        described = await client.request("DESCRIBE", url, {"Accept": "application/sdp"})
        assert described.status == 200
        sdp = described.body.decode()
        assert "a=rtpmap:96 H264/90000" in sdp and "packetization-mode=1" in sdp and "sprop-parameter-sets=" in sdp
        setup = await client.request("SETUP", f"{url}/trackID=1", {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
        assert setup.status == 200 and "interleaved=0-1" in setup.headers["transport"]
        session = setup.headers["session"].split(";")[0]
        before_us = time.time_ns() // 1000
        played = await client.request("PLAY", url, {"Session": session})
        assert played.status == 200 and "rtptime=" in played.headers["rtp-info"]
        kinds, markers, wallclocks, reports, fu_a_starts = set(), 0, [], 0, 0
        while len(wallclocks) < 3 or reports < 1:
            channel, data = await asyncio.wait_for(client.interleaved(), 10)
            if channel == 1:
                reports += data[1] == 200
                continue
            marker = data[1] & 0x80
            payload = data[12:]
            kind = payload[0] & 0x1F
            kinds.add(kind)
            markers += bool(marker)
            if kind == 28 and payload[1] & 0x80:
                fu_a_starts += 1
            value = read_wallclock_sei(payload)
            if value is not None:
                wallclocks.append(value)
        after_us = time.time_ns() // 1000
        assert {6, 28} <= kinds  # SEI single-NAL packets and FU-A fragments of large slices
        assert markers >= 2 and fu_a_starts >= 1
        assert all(before_us - 1_000_000 <= value <= after_us for value in wallclocks)
        assert wallclocks == sorted(wallclocks)
        teardown = await client.request("TEARDOWN", url, {"Session": session})
        assert teardown.status == 200
    finally:
        await client.close()


async def test_rtsp_honours_faults_set_through_the_control_api(cli: SimulatorProcess) -> None:
    control = f"http://127.0.0.1:{cli.info['http_port']}/_sim/cameras/127.1.7.1/faults"
    host, port = "127.1.7.1", cli.info["rtsp_port"]
    url = f"rtsp://{host}:{port}/Streaming/Channels/101"
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        try:
            assert (await http.patch(control, json={"wrong_password": True})).status_code == 200
            client = await RawRtspClient.connect(host, port, "admin", PASSWORD)
            try:
                assert (await client.request("DESCRIBE", url)).status == 401
            finally:
                await client.close()
            await http.patch(control, json={"wrong_password": False, "timeout": True})
            client = await RawRtspClient.connect(host, port, "admin", PASSWORD)
            try:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(client.request("OPTIONS", url), 0.5)
            finally:
                await client.close()
            await http.patch(control, json={"timeout": False, "offline": True})
            with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
                client = await RawRtspClient.connect(host, port, "admin", PASSWORD)
                try:
                    await client.request("OPTIONS", url)
                finally:
                    await client.close()
        finally:
            await http.delete(control)
        client = await RawRtspClient.connect(host, port, "admin", PASSWORD)
        try:
            assert (await client.request("DESCRIBE", url)).status == 200
        finally:
            await client.close()
