"""Patrol to the wall: the camera simulator (a process) showing the real footage, a gateway process
with the real detector; a camera registered over the API with a crowd zone over the walkway is
patrolled, and an operator's wall feed (``/api/wall/ws``) carries its ``detections`` (people boxed)
and the crowd ``incident`` the rule raised."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from xueliang.gateway.demo_scene import WALKWAY

from .conftest import VIDEO, Gateway, Procs, development_config, wait_for

pytestmark = pytest.mark.timeout(120)
CAMERA = "wall-e2e-1"
SIM_PASSWORD = "e2e-Sim-Passw0rd"


async def start_simulator(procs: Procs) -> int:
    """The simulator's HTTP port, from the JSON line it prints when ready."""
    argv = [
        sys.executable, "-m", "xueliang.connectors.onvif.simulator", "--video", str(VIDEO), "--count", "2",
        "--http-port", "0", "--rtsp-port", "0", "--rtsp-count", "0", "--password", SIM_PASSWORD,
    ]  # fmt: skip
    simulator = procs.start("simulator", argv)
    ready: dict[str, Any] = {}

    async def printed_ready() -> bool:
        if not simulator.running:
            raise AssertionError(f"the simulator exited: {simulator.tail()}")
        for line in simulator.log.read_text("utf-8", errors="replace").splitlines():
            if line.startswith("{") and '"ready"' in line:
                ready.update(json.loads(line))
                return True
        return False

    await wait_for(printed_ready, 30, "the simulator's ready line")
    return int(ready["http_port"])


async def test_a_patrolled_crowd_zone_reaches_the_wall_feed_as_boxes_and_an_incident(
    procs: Procs, tmp_path: Path
) -> None:
    http_port = await start_simulator(procs)
    config = development_config(
        tmp_path,
        analytics={"scheduler": {"min_interval_s": 2, "refresh_s": 1}},
        events={"aggregation": {"rules": {"crowd": {"min_observations": 2, "min_duration_s": 0}}}},
    )
    gateway = Gateway(procs, config)
    await gateway.start()
    admin = await gateway.login()
    async with gateway.client(admin) as client:
        added = await client.post(
            "/api/cameras",
            json={
                "id": CAMERA, "name": "人民广场北", "host": "127.1.0.1", "port": http_port, "username": "admin",
                "password": SIM_PASSWORD, "category": "square", "policy": {"priority": 1, "interval_s": 2},
            },
        )  # fmt: skip
        assert added.status_code == 201 and added.json()["status"] == "online", added.text
        zone = {"id": "walkway", "name": "步行道", "kind": "crowd", "polygon": WALKWAY, "min_count": 3}
        zoned = await client.put(f"/api/cameras/{CAMERA}/zones", json={"zones": [zone]})
        assert zoned.status_code == 200, zoned.text
        user = {"username": "li.op", "password": "op-Passw0rd-1", "role": "operator"}
        made = await client.post("/api/users", json=user)
        assert made.status_code == 201, made.text
    operator = await gateway.login("li.op", "op-Passw0rd-1")

    boxes: list[dict[str, Any]] = []
    incidents: list[dict[str, Any]] = []
    ws_url = gateway.url.replace("http://", "ws://") + "/api/wall/ws"
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url, params={"token": operator}) as ws:
        hello = await ws.receive_json(timeout=10)
        assert hello["type"] == "hello" and hello["role"] == "operator", hello
        await ws.send_json({"type": "watch", "cameras": [CAMERA]})
        deadline = time.monotonic() + 60
        while not (boxes and incidents):
            left = deadline - time.monotonic()
            assert left > 0, f"after 60 s: {len(boxes)} detections, {len(incidents)} incidents on the feed"
            try:
                message = await ws.receive_json(timeout=left)
            except TimeoutError:
                continue
            if message.get("camera_id") != CAMERA:
                continue
            data = message["data"]
            if message["type"] == "detections" and any(b["label"] == "person" for b in data["boxes"]):
                boxes.append(data)
            elif message["type"] == "incident" and data["rule"] == "crowd":
                incidents.append(data)
    frame = boxes[0]
    assert (frame["width"], frame["height"]) == (768, 576)  # the footage's own size, boxes in its pixels
    width, height = frame["width"], frame["height"]
    assert all(0 <= b["x1"] < b["x2"] <= width and 0 <= b["y1"] < b["y2"] <= height for b in frame["boxes"])
    incident = incidents[0]
    assert incident["zone"] == "walkway" and incident["peak_value"] >= 3 and incident["camera_name"] == "人民广场北"
    async with gateway.client(operator) as client:
        listed = (await client.get("/api/incidents")).json()
        evidence = await client.get(incident["evidence_url"])
    assert any(i["id"] == incident["id"] for i in listed)
    assert evidence.status_code == 200 and evidence.content[:2] == b"\xff\xd8"  # the frame it was seen on
