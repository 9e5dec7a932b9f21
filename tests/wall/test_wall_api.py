"""The wall's HTTP and WebSocket surface over a real gateway: roles, signalling errors, the live
feed, the camera list, saved walls, PTZ to the simulated dome, and the page itself."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection
from cryptography.fernet import Fernet
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.waiting import wait_until
from tests.wall.conftest import CAMERA_PASSWORD, WallEnv, add_user
from xueliang.api.wall.saved import WallDocument
from xueliang.api.wall.sessions import filter_candidates
from xueliang.gateway.models import Role
from xueliang.gateway.security import CameraCipher
from xueliang.gateway.wall_settings import WallSettings

SDP = {"Content-Type": "application/sdp"}


def client(env: WallEnv, token: str | None = None) -> httpx.AsyncClient:
    return env.gateway.client(token)


async def browser_like_offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def test_camera_list_for_the_tree(http_env: WallEnv) -> None:
    async with client(http_env, http_env.operator) as c:
        cameras = (await c.get("/api/wall/cameras")).json()
    assert [cam["id"] for cam in cameras] == ["cam-0", "cam-1", "cam-2", "cam-3"]
    first = cameras[0]
    assert first["name"] == "东城广场北口" and first["status"] == "online" and first["has_live"]
    assert first["location"]["district"] == "巴州区" and first["location"]["grid_code"] == "511902001001"
    assert first["ptz"] and first["presets"] == {"1": "大门 Gate", "2": "广场 Square"}
    assert not cameras[1]["ptz"]
    assert "password_enc" not in first and "username" not in first
    async with client(http_env) as c:
        assert (await c.get("/api/wall/cameras")).status_code == 401


async def test_whep_refuses_other_roles_and_bad_requests(http_env: WallEnv) -> None:
    pc, offer = await browser_like_offer()
    try:
        async with client(http_env, http_env.technician) as c:
            refused = await c.post("/api/wall/whep/cam-0", content=offer, headers=SDP)
        assert refused.status_code == 403 and "needs admin, operator" in refused.json()["detail"]
        async with client(http_env) as c:
            assert (await c.post("/api/wall/whep/cam-0", content=offer, headers=SDP)).status_code == 401
        async with client(http_env, http_env.operator) as c:
            wrong_type = await c.post("/api/wall/whep/cam-0", content=offer)
            assert wrong_type.status_code == 415
            missing = await c.post("/api/wall/whep/nope", content=offer, headers=SDP)
            assert missing.status_code == 404
            no_video = await c.post("/api/wall/whep/cam-0", content="v=0\r\n", headers=SDP)
            assert no_video.status_code == 400 and "no video" in no_video.json()["detail"]
            assert (await c.delete("/api/wall/whep/sessions/unknown")).status_code == 404
            assert (await c.patch("/api/wall/whep/sessions/unknown")).status_code == 405
    finally:
        await pc.close()
    denied = await http_env.gateway.node.stores.audit.query(actor="tech1", limit=10)
    assert any(e.action == "POST /api/wall/whep/{camera_id}" and e.outcome.startswith("denied") for e in denied)


async def test_whep_answers_with_h264_only_and_only_the_owner_or_an_admin_may_end_it(http_env: WallEnv) -> None:
    other = await add_user(http_env.gateway, "op2", Role.OPERATOR)
    pc, offer = await browser_like_offer()
    try:
        async with client(http_env, http_env.operator) as c:
            answer = await c.post("/api/wall/whep/cam-0", content=offer, headers=SDP)
        assert answer.status_code == 201 and answer.headers["content-type"] == "application/sdp"
        location = answer.headers["location"]
        assert location.startswith("/api/wall/whep/sessions/")
        rtpmaps = [line for line in answer.text.splitlines() if line.startswith("a=rtpmap:")]
        assert rtpmaps and all(("H264/90000" in line or "rtx/90000" in line) for line in rtpmaps), rtpmaps
        assert "a=sendonly" in answer.text
        async with client(http_env, other) as c:
            assert (await c.delete(location)).status_code == 403
        async with client(http_env, http_env.operator) as c:
            streams = (await c.get("/api/wall/streams")).json()
            assert streams["sessions"] == 1 and streams["upstreams"][0]["camera_id"] == "cam-0"
        async with client(http_env, http_env.admin) as c:
            assert (await c.delete(location)).status_code == 204
        assert len(http_env.wall.sessions) == 0
    finally:
        await pc.close()


async def test_offer_without_h264_is_refused(http_env: WallEnv) -> None:
    pc, offer = await browser_like_offer()
    await pc.close()
    vp8_only = "\r\n".join(line for line in offer.splitlines() if "H264" not in line and "h264" not in line)
    async with client(http_env, http_env.operator) as c:
        response = await c.post("/api/wall/whep/cam-0", content=vp8_only, headers=SDP)
    assert response.status_code == 400 and "H.264" in response.json()["detail"]


def ws_url(env: WallEnv, token: str | None = None) -> str:
    base = env.url.replace("http://", "ws://") + "/api/wall/ws"
    return f"{base}?token={token}" if token else base


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return message


async def test_feed_refuses_technicians_and_bad_tokens_at_the_handshake(http_env: WallEnv) -> None:
    with pytest.raises(InvalidStatus) as forbidden:
        async with connect(ws_url(http_env, http_env.technician)):
            pass
    assert forbidden.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as unauthenticated:
        async with connect(ws_url(http_env, "not-a-token")):
            pass
    assert unauthenticated.value.response.status_code == 401
    audit = await http_env.gateway.node.stores.audit.query(actor="tech1", limit=10)
    assert any(e.action == "WS /api/wall/ws" and e.outcome == "denied 403" for e in audit)


async def test_feed_first_message_auth_refuses_technicians_with_4403(http_env: WallEnv) -> None:
    async with connect(ws_url(http_env)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": http_env.technician}))
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_feed_sends_detections_of_watched_cameras_and_every_incident(http_env: WallEnv) -> None:
    live = http_env.gateway.node.live
    boxes = {"width": 640, "height": 360, "boxes": [{"x1": 1, "y1": 2, "x2": 30, "y2": 60, "label": "person",
                                                     "score": 0.8}], "ts": 1.0}  # fmt: skip
    async with connect(ws_url(http_env)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": http_env.operator}))
        assert await receive(ws) == {"type": "hello", "user": "op1", "role": "operator"}
        await ws.send(json.dumps({"type": "watch", "cameras": ["cam-1"]}))
        await ws.send(json.dumps({"type": "ping"}))
        assert (await receive(ws))["type"] == "pong"  # the watch list is in place
        live.publish("detections", "cam-0", boxes)  # not on this wall
        live.publish("detections", "cam-1", boxes)
        live.publish("incident", "cam-3", {"id": "i-1", "grade": "red", "state": "open"})
        first, second = await receive(ws), await receive(ws)
        assert first["type"] == "detections" and first["camera_id"] == "cam-1" and first["data"] == boxes
        assert second["type"] == "incident" and second["data"]["grade"] == "red"
        await ws.send("not json")
        assert (await receive(ws))["type"] == "error"
        await ws.send(json.dumps({"type": "watch", "cameras": "cam-1"}))
        assert "watch needs" in (await receive(ws))["detail"]
    await wait_until(lambda: live.subscribers == 0, "the feed unsubscribes when the socket closes")


async def test_saved_walls_roundtrip_limit_and_a_corrupt_file_is_kept(http_env: WallEnv) -> None:
    document = {
        "walls": [{"name": "早班", "layout": 4, "cameras": ["cam-0", None, "cam-2", "cam-3"]}],
        "tours": [{"name": "巴州区", "layout": 1, "cameras": ["cam-0", "cam-1"], "interval_s": 10}],
    }
    async with client(http_env, http_env.operator) as c:
        assert (await c.get("/api/wall/saved")).json() == {"walls": [], "tours": [], "updated_at": None}
        saved = (await c.put("/api/wall/saved", json=document)).json()
        assert saved["walls"] == document["walls"] and saved["updated_at"]
        assert (await c.get("/api/wall/saved")).json()["tours"][0]["interval_s"] == 10
        bad_layout = {"walls": [{"name": "x", "layout": 5, "cameras": []}]}
        assert (await c.put("/api/wall/saved", json=bad_layout)).status_code == 422
        http_env.wall.saved.limit = 1
        too_many = await c.put("/api/wall/saved", json=document)
        assert too_many.status_code == 422 and "limit of 1" in too_many.json()["detail"]
        http_env.wall.saved.limit = 200

        path = http_env.wall.saved.path("op1")
        assert path.parent == http_env.gateway.settings.node.data_dir / "walls"
        path.write_text("{ not json", "utf-8")
        broken = await c.get("/api/wall/saved")
        assert broken.status_code == 500 and str(path) in broken.json()["detail"]
        assert (await c.put("/api/wall/saved", json=document)).status_code == 200
        assert path.with_name("op1.json.corrupt").read_text("utf-8") == "{ not json"
    async with client(http_env, http_env.technician) as c:
        assert (await c.get("/api/wall/saved")).status_code == 403
    assert WallDocument.model_validate_json(path.read_text("utf-8")).walls[0].name == "早班"


async def test_ptz_reaches_the_simulated_dome_over_onvif(http_env: WallEnv) -> None:
    dome = http_env.sim.cameras[0].ptz
    assert dome is not None
    async with client(http_env, http_env.operator) as c:
        moved = await c.post("/api/cameras/cam-0/ptz", json={"action": "move", "pan": 0.5, "tilt": -0.25})
        assert moved.status_code == 200 and moved.json()["profile"] == "Profile_2"
        assert (await c.post("/api/cameras/cam-0/ptz", json={"action": "stop"})).status_code == 200
        assert (await c.post("/api/cameras/cam-0/ptz", json={"action": "preset", "preset": "2"})).status_code == 200
        zero = await c.post("/api/cameras/cam-0/ptz", json={"action": "move"})
        assert zero.json()["action"] == "stop"
        no_token = await c.post("/api/cameras/cam-0/ptz", json={"action": "preset"})
        assert no_token.status_code == 422
        fixed = await c.post("/api/cameras/cam-1/ptz", json={"action": "stop"})
        assert fixed.status_code == 409 and "no PTZ" in fixed.json()["detail"]
    ops = [(cmd.operation, cmd.pan, cmd.tilt, cmd.preset_token) for cmd in dome.commands]
    assert ops[0][:3] == ("ContinuousMove", 0.5, -0.25)
    assert [op[0] for op in ops] == ["ContinuousMove", "Stop", "GotoPreset", "Stop"]
    assert ops[2][3] == "2" and dome.commands[0].timeout_s == 2.0

    http_env.sim.cameras[2].faults.wrong_password = True
    async with client(http_env, http_env.operator) as c:
        failed = await c.post("/api/cameras/cam-2/ptz", json={"action": "stop"})
    assert failed.status_code == 502 and "cam-2" in failed.json()["detail"]
    async with client(http_env, http_env.technician) as c:
        assert (await c.post("/api/cameras/cam-0/ptz", json={"action": "stop"})).status_code == 403


async def test_whep_and_ptz_answer_a_camera_the_node_must_not_or_cannot_use_alike(http_env: WallEnv) -> None:
    """Outside the allowed networks, or a stored password the key cannot decrypt: the same 409 and
    message on both routes (the technician fixes the record or the settings), before any camera
    is contacted."""
    dome = http_env.sim.cameras[0].ptz
    assert dome is not None
    cameras = http_env.gateway.node.stores.cameras
    original = await cameras.get("cam-0")
    outside = original.model_copy(
        update={
            "host": "10.44.0.9",
            "profiles": [p.model_copy(update={"stream_uri": "rtsp://10.44.0.9:554/ch1"}) for p in original.profiles],
        }
    )
    other_key = CameraCipher(Fernet.generate_key().decode())
    unreadable = original.model_copy(update={"password_enc": other_key.encrypt(CAMERA_PASSWORD)})
    cases = [
        (outside, ["10.44.0.9 is outside the allowed networks", "add it to security.allowed_networks"]),
        (unreadable, ["password cannot be decrypted", "re-enter the camera's password"]),
    ]
    async with client(http_env, http_env.operator) as c:
        for record, says in cases:
            await cameras.upsert(record)
            whep = await c.post("/api/wall/whep/cam-0", content="v=0\r\n", headers=SDP)
            ptz = await c.post("/api/cameras/cam-0/ptz", json={"action": "stop"})
            for answer in (whep, ptz):
                detail = answer.json()["detail"]
                assert answer.status_code == 409, (answer.request.url.path, answer.status_code, detail)
                chinese, english = detail.split(" / ", 1)  # Chinese first for the operator, then English
                assert "\u4e00" <= chinese[0] <= "\u9fff" and "security." in chinese, detail
                assert english.startswith(f"camera cam-0 ({original.name}): ") and all(s in english for s in says)
    assert not dome.commands  # nothing reached the camera


async def test_the_page_is_served_without_anything_from_the_internet(http_env: WallEnv) -> None:
    async with client(http_env) as c:
        page = await c.get("/wall/")
        assert page.status_code == 200 and "雪亮工程" in page.text
        assert (await c.get("/wall", follow_redirects=False)).status_code in (307, 308)
        for name in ("app.js", "tile.js", "tree.js", "alarms.js", "ptz.js", "saved.js", "api.js", "i18n.js"):
            script = await c.get(f"/wall/{name}")
            assert script.status_code == 200 and "http://" not in script.text and "https://" not in script.text


def test_settings_refuse_turn_without_credentials_and_filter_host_candidates() -> None:
    with pytest.raises(ValueError, match="needs username and credential"):
        WallSettings.model_validate({"ice_servers": [{"urls": ["turn:turn.example:3478"]}]})
    with pytest.raises(ValueError, match="must start with stun"):
        WallSettings.model_validate({"ice_servers": [{"urls": ["http://x"]}]})
    with pytest.raises(ValueError, match="extra"):
        WallSettings.model_validate({"grace": 3})
    settings = WallSettings.model_validate({"host_candidate_networks": ["10.211.0.0/24"]})
    sdp = (
        "v=0\r\na=candidate:1 1 udp 2130706431 10.211.0.1 5000 typ host\r\n"
        "a=candidate:2 1 udp 2130706431 172.17.0.1 5001 typ host\r\n"
        "a=candidate:3 1 udp 1694498815 203.0.113.9 5002 typ srflx raddr 10.211.0.1 rport 5000\r\n"
    )
    kept = filter_candidates(sdp, settings.host_candidate_networks)
    assert "10.211.0.1 5000" in kept and "172.17.0.1" not in kept and "203.0.113.9" in kept
