"""Hostile and broken input on the live wall's signalling (WHEP), live feed (WebSocket), saved walls
and PTZ, over a real gateway: each gets a precise 4xx or close code with a readable reason, never
a 500, never unbounded memory, never another user's session."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.waiting import wait_until
from tests.wall.conftest import CAMERA_PASSWORD, WallEnv, add_user
from xueliang.api.wall import feed, whep
from xueliang.api.wall.errors import (
    CameraAddressRefused,
    CapacityReached,
    NoLiveStream,
    OfferRejected,
    PtzFailed,
    PtzUnsupported,
    SessionNotFound,
    operator_text,
)
from xueliang.gateway.models import Role

SDP = {"Content-Type": "application/sdp"}


async def browser_offer() -> str:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp: str = pc.localDescription.sdp
    await pc.close()
    return sdp


def edit(sdp: str, old: str, new: str) -> str:
    assert old in sdp, old
    return sdp.replace(old, new)


# --- WHEP signalling ----------------------------------------------------------------------------


async def test_malformed_offers_are_400_naming_the_camera_and_leave_no_session(http_env: WallEnv) -> None:
    """aiortc raises KeyError (bad a=setup), OperationError (only H.264 packetization-mode 0, which
    it cannot send) and AttributeError (a repeated m-line) on offers it cannot take: each was a 500."""
    offer = await browser_offer()
    fingerprint = next(line for line in offer.splitlines() if line.startswith("a=fingerprint"))
    video = offer[offer.index("m=video") :]
    cases = {
        "bad setup": edit(offer, "a=setup:actpass", "a=setup:bogus"),
        "H.264 mode 0 only": offer.replace("packetization-mode=1", "packetization-mode=0"),
        "repeated m-line": offer + video,
        "bad candidate": edit(offer, fingerprint, "a=candidate:1 1 udp x 1.2.3.4 5 typ host\r\n" + fingerprint),
        "not SDP": "m=video h264\r\n",
    }
    async with http_env.gateway.client(http_env.operator) as c:
        for name, sdp in cases.items():
            answer = await c.post("/api/wall/whep/cam-0", content=sdp, headers=SDP)
            assert answer.status_code == 400, (name, answer.status_code, answer.text)
            detail = answer.json()["detail"]
            assert "camera cam-0" in detail and "SDP offer" in detail, (name, detail)
    assert len(http_env.wall.sessions) == 0
    await wait_until(lambda: http_env.wall.relay.viewers == 0, "refused offers leave no viewer on the relay")


async def test_an_offer_of_vp9_and_av1_only_is_400(http_env: WallEnv) -> None:
    """Pins: an offer without any H.264 is refused before aiortc is asked (never a VP8 answer)."""
    offer = await browser_offer()
    lines = [line for line in offer.splitlines() if "h264" not in line.lower() and "rtx" not in line.lower()]
    vp9 = "\r\n".join(line.replace("VP8/90000", "VP9/90000") for line in lines)
    async with http_env.gateway.client(http_env.operator) as c:
        answer = await c.post("/api/wall/whep/cam-0", content=vp9 + "\r\n", headers=SDP)
        empty = await c.post("/api/wall/whep/cam-0", content=b"", headers=SDP)
    assert answer.status_code == 400 and "no H.264" in answer.json()["detail"]
    assert empty.status_code == 400 and "no video section" in empty.json()["detail"]


async def test_an_oversized_offer_is_refused_before_it_is_read(http_env: WallEnv) -> None:
    """The old route read the whole body before looking at its size: a client announcing 1 GB
    (or streaming without end) held the request open and the memory growing."""
    host, port = http_env.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = (
            "POST /api/wall/whep/cam-0 HTTP/1.1\r\n"
            f"Host: {host}\r\nAuthorization: Bearer {http_env.operator}\r\n"
            "Content-Type: application/sdp\r\nContent-Length: 1000000000\r\n\r\n"
        )
        writer.write(head.encode() + b"v=0\r\n" * 1000)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    async with http_env.gateway.client(http_env.operator) as c:

        async def endless() -> Any:
            chunk = b"a=x-padding:" + b"0" * 4000 + b"\r\n"
            for _ in range(10_000):  # 40 MB if nobody stopped reading
                yield chunk

        chunked = await c.post("/api/wall/whep/cam-0", content=endless(), headers=SDP)
    assert chunked.status_code == 413 and "64 KiB" in chunked.json()["detail"]


async def test_thousand_candidates_within_the_size_limit_are_answered(http_env: WallEnv) -> None:
    """Pins: ~1000 host candidates (the most 64 KiB holds) are answered, the session can be ended."""
    offer = await browser_offer()
    fingerprint = next(line for line in offer.splitlines() if line.startswith("a=fingerprint"))
    many = "".join(f"a=candidate:{i} 1 udp 1 10.9.{i // 250}.{i % 250} 5000 typ host\r\n" for i in range(1000))
    big = edit(offer, fingerprint, many + fingerprint)
    assert len(big) < whep.MAX_OFFER_BYTES
    async with http_env.gateway.client(http_env.operator) as c:
        answer = await c.post("/api/wall/whep/cam-0", content=big, headers=SDP)
        assert answer.status_code == 201, answer.text
        assert (await c.delete(answer.headers["location"])).status_code == 204


async def test_session_ids_unknown_deleted_or_foreign(http_env: WallEnv) -> None:
    """DELETE twice is 404 the second time, PATCH after DELETE is 405 (no trickle ICE at all), another
    operator can neither end the session nor learn anything about it; the owner still can."""
    other = await add_user(http_env.gateway, "op2", Role.OPERATOR)
    offer = await browser_offer()
    async with http_env.gateway.client(http_env.operator) as mine, http_env.gateway.client(other) as theirs:
        answer = await mine.post("/api/wall/whep/cam-0", content=offer, headers=SDP)
        location = answer.headers["location"]
        foreign = await theirs.delete(location)
        assert foreign.status_code == 403 and "another user" in foreign.json()["detail"]
        assert "op1" not in foreign.text and len(http_env.wall.sessions) == 1
        patch = await theirs.patch(location, content="a=candidate:1 1 udp 1 10.0.0.1 9 typ host", headers=SDP)
        assert patch.status_code == 405 and patch.headers["allow"] == "DELETE"
        assert (await mine.delete(location)).status_code == 204
        again = await mine.delete(location)
        assert again.status_code == 404 and "ended or never existed" in again.json()["detail"]
        assert (await mine.patch(location)).status_code == 405
        odd = await mine.delete("/api/wall/whep/sessions/" + "%E2%80%AE" * 50)
        assert odd.status_code == 404
    assert len(http_env.wall.sessions) == 0


async def test_concurrent_offers_cannot_pass_the_per_user_limit(http_env: WallEnv) -> None:
    """The limits were checked before the awaits of answering and counted only answered sessions:
    six offers at once by one operator, with a limit of two, all got sessions."""
    sessions = http_env.wall.sessions
    sessions.settings = sessions.settings.model_copy(update={"max_sessions_per_user": 2})
    offers = [await browser_offer() for _ in range(6)]
    async with http_env.gateway.client(http_env.operator) as c:
        answers = await asyncio.gather(
            *(c.post(f"/api/wall/whep/cam-{i % 4}", content=o, headers=SDP) for i, o in enumerate(offers))
        )
        codes = sorted(a.status_code for a in answers)
        assert codes == [201, 201, 429, 429, 429, 429], [(a.status_code, a.text[:80]) for a in answers]
        assert all("max_sessions_per_user" in a.json()["detail"] for a in answers if a.status_code == 429)
        for a in answers:
            if a.status_code == 201:
                assert (await c.delete(a.headers["location"])).status_code == 204
    assert len(sessions) == 0


# --- the live feed (WebSocket) ------------------------------------------------------------------


def ws_url(env: WallEnv, token: str) -> str:
    return env.url.replace("http://", "ws://") + f"/api/wall/ws?token={token}"


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return message


async def expect_error(ws: ClientConnection, says: str) -> None:
    message = await receive(ws)
    assert message["type"] == "error" and says in message["detail"], message
    await ws.send(json.dumps({"type": "ping"}))
    assert (await receive(ws))["type"] == "pong"  # the connection goes on


async def test_feed_answers_binary_nested_and_wrong_shapes_and_stays_open(http_env: WallEnv) -> None:
    """A binary frame (Starlette's receive_text raised KeyError) and deeply nested JSON
    (RecursionError) ended the socket with 1011 and a traceback; now an error message each."""
    async with connect(ws_url(http_env, http_env.operator)) as ws:
        assert (await receive(ws))["type"] == "hello"
        await ws.send(b"\x00\x01binary")
        await expect_error(ws, "text")
        await ws.send("[" * 60_000)
        await expect_error(ws, "nested")
        await ws.send(json.dumps([1, 2]))
        await expect_error(ws, "unknown message type")
        await ws.send(json.dumps({"type": "subscribe", "cameras": ["cam-0"]}))
        await expect_error(ws, "use watch or ping")
        await ws.send(json.dumps({"type": "watch", "cameras": [1, None]}))
        await expect_error(ws, "watch needs")
        await ws.send(json.dumps({"type": "watch", "cameras": [f"cam-{i}" for i in range(feed.MAX_WATCHED + 1)]}))
        await expect_error(ws, f"at most {feed.MAX_WATCHED}")


async def test_feed_first_message_binary_is_refused_with_4401(http_env: WallEnv) -> None:
    async with connect(http_env.url.replace("http://", "ws://") + "/api/wall/ws") as ws:
        await ws.send(b"\x00")
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    assert "auth" in closed.value.rcvd.reason


async def test_feed_closes_1009_on_a_huge_message(http_env: WallEnv) -> None:
    """A message past MAX_MESSAGE_CHARS is closed with 1009 before it is parsed (was parsed whole)."""
    async with connect(ws_url(http_env, http_env.operator), max_size=None) as ws:
        assert (await receive(ws))["type"] == "hello"
        await ws.send(json.dumps({"type": "watch", "cameras": ["x" * (feed.MAX_MESSAGE_CHARS + 1)]}))
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert "KiB" in closed.value.rcvd.reason
    await wait_until(lambda: http_env.gateway.node.live.subscribers == 0, "the feed unsubscribes")


async def test_a_client_that_never_reads_costs_bounded_memory(http_env: WallEnv) -> None:
    """Pins: the server does not buffer without bound for a reader that stalls (a raw socket that
    does the handshake, then reads nothing): its queue in the live hub overflows, counted."""
    live = http_env.gateway.node.live
    before = live.dropped
    host, port = http_env.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            (
                f"GET /api/wall/ws?token={http_env.operator} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 101")
        await wait_until(lambda: live.subscribers == 1, "the feed subscribes")
        payload = {"id": "i", "grade": "red", "pad": "x" * 8000}
        for _ in range(40_000):  # 320 MB if the server buffered it all
            live.publish("incident", "cam-0", payload)
            await asyncio.sleep(0)
            if live.dropped > before:
                break
        assert live.dropped > before, "40,000 items of 8 KB buffered for a client that reads nothing"
    finally:
        writer.close()
    await wait_until(lambda: live.subscribers == 0, "the feed unsubscribes when the socket closes")


async def test_feed_ends_when_the_user_is_disabled_or_loses_the_role(
    http_env: WallEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A socket authenticated once streamed alarms for ever: to a disabled user, to one demoted to
    technician, after the login token expired. It is checked again every RECHECK_S now."""
    monkeypatch.setattr(feed, "RECHECK_S", 0.2)
    users = http_env.gateway.node.stores.users
    token = await add_user(http_env.gateway, "op3", Role.OPERATOR)
    for change, code in ((dict(role=Role.TECHNICIAN), 4403), (dict(disabled=True), 4401)):
        user = await users.get_user("op3")
        await users.update_user(user.model_copy(update={"role": Role.OPERATOR, "disabled": False}))
        async with connect(ws_url(http_env, token)) as ws:
            assert (await receive(ws))["type"] == "hello"
            await users.update_user((await users.get_user("op3")).model_copy(update=change))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await receive(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == code, closed.value
    audit = await http_env.gateway.node.stores.audit.query(actor="op3", limit=10)
    assert any(e.action == "WS /api/wall/ws" and e.outcome == "denied 403" for e in audit)


# --- saved walls --------------------------------------------------------------------------------


async def test_saved_walls_refuse_duplicates_huge_ids_and_bad_dwell(http_env: WallEnv) -> None:
    """Duplicate names (the page finds the first, the second could never be opened or deleted) and
    camera ids of any length (megabytes per tile, stored) were accepted."""
    wall = {"name": "早班", "layout": 4, "cameras": ["cam-0"]}
    tour = {"name": "巡逻", "layout": 1, "cameras": ["cam-0"], "interval_s": 10}
    async with http_env.gateway.client(http_env.operator) as c:

        async def put(document: dict[str, Any]) -> httpx.Response:
            return await c.put("/api/wall/saved", json=document)

        dup = await put({"walls": [wall, dict(wall, layout=9)]})
        assert dup.status_code == 422 and "早班" in str(dup.json()["detail"]), dup.text
        dup_tour = await put({"tours": [tour, tour]})
        assert dup_tour.status_code == 422 and "巡逻" in str(dup_tour.json()["detail"])
        huge = await put({"walls": [dict(wall, cameras=["c" * 100_000])]})
        assert huge.status_code == 422 and "100000 characters" in huge.text  # echo is cut short
        assert len(huge.content) < 10_000
        tiles = await put({"walls": [dict(wall, cameras=["cam-0"] * 10_000)]})
        assert tiles.status_code == 422 and tiles.json()["detail"][0]["type"] == "too_long"
        for dwell in (0, -5, 1e9):
            assert (await put({"tours": [dict(tour, interval_s=dwell)]})).status_code == 422
        rtl = {"name": "\u202eلوحة 夜班 🎥", "layout": 16, "cameras": [None] * 16}
        saved = await put({"walls": [rtl, wall], "tours": [dict(tour, name="早班")]})  # a wall and a tour may share
        assert saved.status_code == 200 and saved.json()["walls"][0]["name"] == rtl["name"]
        blank = await put({"walls": [dict(wall, name="   ")]})
        assert blank.status_code == 422
        assert (await c.get("/api/wall/saved")).json()["walls"][0]["name"] == rtl["name"]  # unchanged by refusals


# --- PTZ ----------------------------------------------------------------------------------------


async def test_ptz_refuses_out_of_range_and_non_finite_speeds(http_env: WallEnv) -> None:
    """Pins: out-of-range and NaN/Infinity speeds are 422 (the echo of NaN is text, not a 500)."""
    async with http_env.gateway.client(http_env.operator) as c:
        for body in ({"pan": 1.5}, {"tilt": -2}, {"zoom": 10}, {"timeout_s": 0}, {"timeout_s": 61}):
            answer = await c.post("/api/cameras/cam-0/ptz", json={"action": "move", **body})
            assert answer.status_code == 422, (body, answer.text)
        for raw in ('{"action": "move", "pan": NaN}', '{"action": "move", "zoom": Infinity}'):
            answer = await c.post("/api/cameras/cam-0/ptz", content=raw, headers={"Content-Type": "application/json"})
            assert answer.status_code == 422, (raw, answer.text)
        unknown = await c.post("/api/cameras/cam-0/ptz", json={"action": "tilt-up"})
        assert unknown.status_code == 422
        missing = await c.post("/api/cameras/nope/ptz", json={"action": "stop"})
        assert missing.status_code == 404
    dome = http_env.sim.cameras[0].ptz
    assert dome is not None and not dome.commands


async def test_ptz_preset_not_on_record_is_404_in_chinese_first(http_env: WallEnv) -> None:
    """A preset token the camera does not have went to the camera and came back as a 502 'PTZ
    preset failed' (as if the camera were broken); the record's presets name the valid ones."""
    async with http_env.gateway.client(http_env.operator) as c:
        answer = await c.post("/api/cameras/cam-0/ptz", json={"action": "preset", "preset": "99"})
    assert answer.status_code == 404, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith("预置位") and "99" in detail and "cam-0" in detail and "1, 2" in detail
    dome = http_env.sim.cameras[0].ptz
    assert dome is not None and not dome.commands


# --- what operators read: Chinese first, English second ---------------------------------------


def chinese_then(detail: str, title_zh: str, english: str) -> None:
    """``detail`` opens with ``title_zh`` (once: no second prefix) and still holds ``english``."""
    assert detail.startswith(title_zh + "："), detail
    assert detail.count(title_zh) == 1 and english in detail.split(" / ", 1)[1], detail
    assert CAMERA_PASSWORD not in detail


async def test_every_wall_error_answers_chinese_first_with_the_english_kept(http_env: WallEnv) -> None:
    """The page shows ``detail`` as given (tile tooltip, PTZ toast): each wall error reachable over
    HTTP opens with its Chinese title and advice, then the English message as before."""
    cameras = http_env.gateway.node.stores.cameras
    original = await cameras.get("cam-0")
    sessions = http_env.wall.sessions
    offer = await browser_offer()
    async with http_env.gateway.client(http_env.operator) as c:
        rejected = await c.post("/api/wall/whep/cam-0", content="v=0\r\n", headers=SDP)
        assert rejected.status_code == 400
        chinese_then(rejected.json()["detail"], OfferRejected.title_zh, "the SDP offer has no video section")

        gone = await c.delete("/api/wall/whep/sessions/no-such-session")
        assert gone.status_code == 404
        chinese_then(gone.json()["detail"], SessionNotFound.title_zh, "no viewer session 'no-such-session'")

        fixed = await c.post("/api/cameras/cam-1/ptz", json={"action": "stop"})
        assert fixed.status_code == 409
        chinese_then(fixed.json()["detail"], PtzUnsupported.title_zh, "has no PTZ on record")

        settings = sessions.settings
        sessions.settings = settings.model_copy(update={"max_sessions": 0})
        full = await c.post("/api/wall/whep/cam-0", content=offer, headers=SDP)
        assert full.status_code == 503
        chinese_then(full.json()["detail"], CapacityReached.title_zh, "(wall.max_sessions); try again later")
        sessions.settings = settings.model_copy(update={"max_sessions_per_user": 0})
        mine = await c.post("/api/wall/whep/cam-0", content=offer, headers=SDP)
        assert mine.status_code == 429 and mine.json()["detail"].startswith("已达到您可同时观看的画面数上限：")
        assert "(wall.max_sessions_per_user): close tiles" in mine.json()["detail"]
        sessions.settings = settings

        await cameras.upsert(
            original.model_copy(
                update={"profiles": [p.model_copy(update={"stream_uri": ""}) for p in original.profiles]}
            )
        )
        no_live = await c.post("/api/wall/whep/cam-0", content=offer, headers=SDP)
        assert no_live.status_code == 409
        chinese_then(no_live.json()["detail"], NoLiveStream.title_zh, "has no stream URI on record")

        outside = [p.model_copy(update={"stream_uri": "rtsp://10.44.0.9:554/ch1"}) for p in original.profiles]
        await cameras.upsert(original.model_copy(update={"host": "10.44.0.9", "profiles": outside}))
        for answer in (
            await c.post("/api/wall/whep/cam-0", content=offer, headers=SDP),
            await c.post("/api/cameras/cam-0/ptz", json={"action": "stop"}),
        ):
            assert answer.status_code == 409
            chinese_then(answer.json()["detail"], CameraAddressRefused.title_zh, "10.44.0.9 is outside the allowed")

        await cameras.delete("cam-0")
        deleted = await c.post("/api/wall/whep/cam-0", content=offer, headers=SDP)
        assert deleted.status_code == 404
        chinese_then(deleted.json()["detail"], "摄像机不存在（可能已被删除）", "camera cam-0 is not registered")
        warmed = await c.post("/api/wall/warm", json={"cameras": ["cam-0"]})  # a tour's next step: the same words
        assert warmed.status_code == 200 and warmed.json()["warmed"] == [], warmed.text
        refused = warmed.json()["refused"]["cam-0"]
        chinese_then(refused, "摄像机不存在（可能已被删除）", "camera cam-0 is not registered")
    assert len(sessions) == 0


def test_a_message_raised_chinese_first_gets_no_second_prefix() -> None:
    already = PtzFailed("云台命令执行失败：摄像机 cam-0 无响应 / camera cam-0: PTZ stop failed")
    assert operator_text(already) == str(already)
    english = PtzFailed("camera cam-0: PTZ stop failed: timed out")
    assert operator_text(english) == f"{PtzFailed.title_zh}：{PtzFailed.advice_zh} / {english}"
