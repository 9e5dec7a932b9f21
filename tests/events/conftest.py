"""Fixtures of the case side's tests: the reference intake as a real process, settings, anomalies.

``intake`` starts ``python -m xueliang.events.intake`` on a free loopback port with its own SQLite
file; ``.stop()``/``.start()`` take it down and bring it back on the same port (connections are
really refused meanwhile), ``.control(...)`` makes it misbehave, ``.stats()`` reads its counts.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from tests.conftest import free_port
from xueliang.events.models import CameraContext
from xueliang.events.settings import EventsSettings
from xueliang.gateway.stores.sqlite.database import Database
from xueliang.gateway.stores.sqlite.outbox import SqliteOutbox
from xueliang.inference.anomaly import Anomaly, Box, Evidence

SECRET = "test-shared-secret-0123456789abcdef"
CALLBACK_SECRET = "test-callback-secret-0123456789abcd"
BASE = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai: daytime


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` (a bound, not a measured figure)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class IntakeProcess:
    def __init__(self, db: Path, *, callback_url: str = "", step_s: float = 0.3, seed: int = 7) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = db
        self.callback_url = callback_url
        self.step_s = step_s
        self.seed = seed
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = db.with_suffix(".log")

    def start(self) -> None:
        cmd = [
            sys.executable, "-m", "xueliang.events.intake", "--port", str(self.port), "--db", str(self.db),
            "--secret", SECRET, "--callback-secret", CALLBACK_SECRET, "--step-s", str(self.step_s),
            "--seed", str(self.seed),
        ]  # fmt: skip
        if self.callback_url:
            cmd += ["--callback-url", self.callback_url]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"intake exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/stats", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("intake did not start in 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    async def stats(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{self.url}/api/v1/stats", timeout=5)
            response.raise_for_status()
            data: dict[str, Any] = response.json()
            return data

    async def control(self, **chaos: Any) -> None:
        async with httpx.AsyncClient() as client:
            (await client.post(f"{self.url}/_control", json=chaos, timeout=5)).raise_for_status()


@pytest.fixture
def intake(tmp_path: Path) -> Iterator[IntakeProcess]:
    process = IntakeProcess(tmp_path / "intake.sqlite3")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def intake_factory(tmp_path: Path) -> Iterator[Callable[..., IntakeProcess]]:
    made: list[IntakeProcess] = []

    def make(**kwargs: Any) -> IntakeProcess:
        process = IntakeProcess(tmp_path / f"intake{len(made)}.sqlite3", **kwargs)
        made.append(process)
        process.start()
        return process

    yield make
    for process in made:
        process.stop()


#: bounds for a test whose assertions count requests or attempts against a live intake: a loaded machine
#: that stalls past make_settings' short default (0.5 s + 1 s) would turn a slow answer into a timeout and
#: its retry into a refused duplicate, changing the counts; an intake that is down refuses at once
PATIENT: dict[str, Any] = {"connect_timeout_s": 2.0, "request_timeout_s": 10.0, "lease_s": 30.0}


def make_settings(tmp_path: Path, intake_url: str = "http://127.0.0.1:9", **forwarder: Any) -> EventsSettings:
    fwd = {
        "intake_url": intake_url,
        "secret": SecretStr(SECRET),
        "connect_timeout_s": 0.5,
        "request_timeout_s": 1.0,
        "lease_s": 3.0,
        "backoff_base_s": 0.05,
        "backoff_cap_s": 0.4,
        "breaker_failures": 3,
        "breaker_reset_s": 0.3,
        "poll_interval_s": 0.05,
        "max_attempts": 1000,
        **forwarder,
    }
    return EventsSettings.model_validate(
        {
            "store": {"sqlite_path": tmp_path / "events.sqlite3"},
            "evidence": {"dir": tmp_path / "evidence"},
            "forwarder": fwd,
            "callback": {"secret": SecretStr(CALLBACK_SECRET)},
            "public_url": "https://gw.example.gov.cn",
        }
    )


@pytest.fixture
async def gateway_outbox(tmp_path: Path) -> AsyncIterator[SqliteOutbox]:
    db = await Database.open(tmp_path / "gateway.sqlite3")
    yield SqliteOutbox(db)
    await db.close()


def camera(index: int, place: str = "road") -> CameraContext:
    return CameraContext(
        id=f"cam-{index:03d}",
        name=f"人民路{index}号杆",
        region_code="511902",
        district="巴州区",
        township="东城街道",
        township_code="511902001",
        grid_code=f"511902001{index:03d}",
        address=f"人民路与解放路口{index}",
        lat=31.86,
        lon=106.75,
        place=place,
    )


def jpeg(width: int = 160, height: int = 120, level: int = 90) -> bytes:
    image = np.full((height, width, 3), level, dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return bytes(data.tobytes())


EVIDENCE = Evidence(
    jpeg=jpeg(), width=160, height=120, boxes=(Box(x1=20, y1=20, x2=80, y2=100, label="person", score=0.9),)
)


def anomaly(
    cam: int, rule: str, at_s: float, value: float, *, zone: str = "", evidence: Evidence | None = None
) -> Anomaly:
    return Anomaly(
        camera_id=f"cam-{cam:03d}", rule=rule, observed_at=BASE + timedelta(seconds=at_s), value=value, zone=zone,
        evidence=evidence,
    )  # fmt: skip
