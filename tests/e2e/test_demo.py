"""``xueliang demo`` as a newcomer runs it (``make run``), in a process with its own data directory and
port: simulated cameras come online, the real detector runs on the real footage, the school-gate
zone raises an incident, its case reaches the in-process demo intake and walks to closed through
signed callbacks; the case's public page and QR code work; ``/`` leads to the wall; the demo
operator and the demo wall exist; a restart reuses the intake's API key and the simulator's ports.

The config file only shortens the demo's clocks (intake steps, watch repeat) so this takes seconds;
everything else is what ``make run`` starts.
"""

from __future__ import annotations

import re
import shutil
import signal
import stat
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

from .conftest import Gateway, Procs, development_config, wait_for

pytestmark = pytest.mark.timeout(150)
CAMERAS = 12  # two school cameras (demo-0003, demo-0011), every place category
DETECTOR_FRAMES = re.compile(r'xueliang_component_value\{component="patrol",name="detector_frames"\} ([0-9.e+]+)')


def decode_qr(png: bytes, tmp_path: Path) -> str:
    """The text of a QR code image: by zbarimg (what make test installs), else OpenCV's decoder."""
    zbarimg = shutil.which("zbarimg")
    if zbarimg is not None:
        image = tmp_path / "qr.png"
        image.write_bytes(png)
        result = subprocess.run(
            [zbarimg, "--raw", "-q", str(image)], capture_output=True, text=True, timeout=30, check=False
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()
    grey = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert grey is not None, "the QR code is not a PNG image"
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(grey)
    return str(text)


async def test_the_demo_shows_cameras_detections_incidents_and_cases_walking_to_closed(
    procs: Procs, tmp_path: Path
) -> None:
    config = development_config(
        tmp_path,
        demo={"cameras": CAMERAS, "intake_step_s": 0.5, "watch_cameras": 1},
        analytics={"watch": {"repeat_s": 3.0}},
    )
    demo = Gateway(procs, config, command="demo")
    await demo.start()
    admin = await demo.login()

    async def get(path: str, token: str | None = admin, **params: Any) -> Any:
        async with demo.client(token) as client:
            response = await client.get(path, params=params)
            assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
            return response.json()

    async def cameras_online() -> bool:
        page = await get("/api/cameras", limit=1000)
        return page["total"] == CAMERAS and all(c["status"] == "online" for c in page["items"])

    await wait_for(cameras_online, 60, f"{CAMERAS} demo cameras online in the registry")

    async def detector_ran() -> bool:
        async with demo.client() as client:
            found = DETECTOR_FRAMES.search((await client.get("/metrics")).text)
        return found is not None and float(found.group(1)) > 0

    await wait_for(detector_ran, 60, "detector frames > 0 in /metrics")

    async def gate_incident() -> bool:
        incidents = await get("/api/incidents")
        return any(i["rule"] == "intrusion" and i["camera_id"] == "demo-0003" for i in incidents)

    await wait_for(gate_incident, 60, "an intrusion incident at the school gate (demo-0003)")
    seen: set[str] = set()

    async def case_closed() -> bool:
        cases = await get("/api/cases")
        seen.update(c["status"] for c in cases)
        return any(c["status"] == "closed" for c in cases)

    await wait_for(case_closed, 60, "a case delivered to the demo intake and closed by its callbacks")
    case = next(c for c in await get("/api/cases") if c["status"] == "closed")
    code = case["code"]
    history = [h["status"] for h in (await get(f"/api/cases/{code}"))["history"]]
    assert {"sent", "received", "dispatched", "handling", "closed"} <= set(history), history
    observed = datetime.fromisoformat(case["observed_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    night = observed.hour >= 22 or observed.hour < 6  # config/grading.yaml: a school intrusion at night is red
    assert case["camera_id"] == "demo-0003" and case["grade"] == ("red" if night else "blue"), case

    # the public page (QR target): open without login, nothing that identifies the camera
    async with demo.client() as client:
        page = await client.get(f"/c/{code}")
        home = await client.get("/", follow_redirects=False)
    assert page.status_code == 200 and code in page.text
    camera = (await get("/api/cameras", limit=1000))["items"][2]
    assert camera["id"] == "demo-0003"
    for private in (camera["id"], camera["name"], camera["host"], camera["location"]["address"]):
        assert private not in page.text, f"{private!r} on the public page"
    assert camera["location"]["township"] in page.text
    async with demo.client(admin) as client:
        png = (await client.get(f"/api/cases/{code}/qr.png")).content
    assert decode_qr(png, tmp_path) == f"{demo.url}/c/{code}"
    assert home.status_code in (302, 307) and home.headers["location"] == "/wall/"

    # the demo operator and the demo wall
    credentials = demo.data_dir / "demo-credentials.txt"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    username, password = credentials.read_text().split()
    operator = await demo.login(username, password)
    me = await get("/api/auth/me", operator)
    assert me["role"] == "operator"
    walls = (await get("/api/wall/saved", operator))["walls"]
    assert [w["cameras"] for w in walls] == [["demo-0001", "demo-0002", "demo-0003", "demo-0004"]]

    # the intake's API key: kept private, never printed; a restart reuses it
    key_file = demo.data_dir / "demo-intake-key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert demo.process is not None
    assert key not in demo.process.log.read_text() and password not in demo.process.log.read_text()
    addresses = {c["id"]: (c["host"], c["port"]) for c in (await get("/api/cameras", limit=1000))["items"]}
    for private_file in ("demo-simulator.json", "admin-credentials.txt", "dev-secrets.json"):
        assert stat.S_IMODE((demo.data_dir / private_file).stat().st_mode) == 0o600, private_file
    # SIGTERM: a clean stop (uvicorn shuts down, then re-raises the signal to end with its status)
    assert demo.process.stop() in (0, -signal.SIGTERM)
    assert "Application shutdown complete." in demo.process.tail(500)
    await demo.start()
    admin = await demo.login()
    keys = [k for k in await get("/api/api-keys") if k["name"] == "demo-intake"]
    assert len(keys) == 1 and keys[0]["role"] == "intake" and key_file.read_text().strip() == key
    await wait_for(cameras_online, 60, "the demo cameras online again after the restart")
    again = {c["id"]: (c["host"], c["port"]) for c in (await get("/api/cameras", limit=1000))["items"]}
    assert again == addresses  # the simulator came back on its ports: the registry was right all along
    assert demo.process is not None
    demo.process.kill(signal.SIGTERM)
