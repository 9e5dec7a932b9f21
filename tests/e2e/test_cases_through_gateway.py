"""Cases through a real gateway process (``xueliang run``, embedded) to the reference intake (its own
process): anomalies are put on the gateway's bus by this test (the same SQLite file, WAL), the
gateway aggregates, grades and forwards them, and the intake's own counts say what arrived.

(a) the intake stopped, answering 500 (before and after storing), hanging, slow past the client's
    timeout: every case arrives once; (b) the gateway SIGKILLed with deliveries in flight and
    restarted: every case arrives exactly once, nothing stuck in the outbox; (c) status callbacks:
    signed ones walk cases to closed, a wrong signature is refused (401) and audited, a replayed or
    old one is refused; (d) a broken grading table: ``xueliang run`` refuses to start (exit 2, the
    row named, no traceback).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import pytest
import yaml

from xueliang.events.models import CaseStatus
from xueliang.events.signing import signed_headers
from xueliang.events.status import callback_body
from xueliang.gateway.models import CameraRecord, Location
from xueliang.gateway.settings_loading import load_settings
from xueliang.gateway.stores import open_stores
from xueliang.gateway.stores.base import OutboxStatus, Stores
from xueliang.inference.anomaly import Anomaly, Box, Evidence

from .conftest import (
    CALLBACK_SECRET,
    REPO,
    SECRET,
    VIDEO,
    Gateway,
    Intake,
    Procs,
    child_env,
    development_config,
    free_port,
)
from .conftest import wait_for as wait

pytestmark = pytest.mark.timeout(120)
CALLBACK = "/api/intake/callback"


def forwarder(intake_url: str, **more: Any) -> dict[str, Any]:
    return {
        "forwarder": {
            "intake_url": intake_url, "secret": SECRET, "connect_timeout_s": 0.5, "request_timeout_s": 1.0,
            "lease_s": 3.0, "backoff_base_s": 0.05, "backoff_cap_s": 0.5, "breaker_failures": 3,
            "breaker_reset_s": 0.5, "poll_interval_s": 0.1, "max_attempts": 1000, **more,
        },
        "callback": {"secret": CALLBACK_SECRET},
    }  # fmt: skip


def evidence() -> Evidence:
    """Frame 100 of the real footage, people boxed (the gateway draws and keeps the evidence)."""
    capture = cv2.VideoCapture(str(VIDEO))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, image = capture.read()
    capture.release()
    assert ok, f"cannot read {VIDEO}"
    ok, jpeg = cv2.imencode(".jpg", image)
    assert ok
    height, width = image.shape[:2]
    boxes = (Box(x1=268, y1=112, x2=292, y2=155, label="person", score=0.8),)
    return Evidence(jpeg=jpeg.tobytes(), width=width, height=height, boxes=boxes)


class Bus:
    """The gateway's stores, opened from this process once the gateway made its files: cameras into
    the registry, anomalies on the bus, outbox counts."""

    def __init__(self) -> None:
        self.evidence = evidence()
        self.cameras = 0
        self._stores: Stores | None = None

    async def connect(self, gateway: Gateway) -> None:
        self._stores = await open_stores(load_settings(gateway.config_file, environ={}))

    @property
    def stores(self) -> Stores:
        assert self._stores is not None, "connect(gateway) first"
        return self._stores

    async def close(self) -> None:
        if self._stores is not None:
            await self._stores.close()

    async def cases(self, count: int) -> list[str]:
        """``count`` new cameras, each seeing intrusion twice (one incident, one blue case each)."""
        ids = []
        for _ in range(count):
            self.cameras += 1
            camera_id = f"e2e-{self.cameras:03d}"
            ids.append(camera_id)
            location = Location(
                region_code="511902", district="巴州区", township="东城街道", grid_code=f"511902001{self.cameras:03d}",
                address=f"人民路{self.cameras}号", lat=31.86, lon=106.75,
            )  # fmt: skip
            record = CameraRecord(id=camera_id, name=f"人民路{self.cameras}号杆", host=f"127.9.0.{self.cameras}")
            await self.stores.cameras.upsert(record.model_copy(update={"location": location, "category": "road"}))
            now = datetime.now(UTC)
            for at, proof in ((now - timedelta(seconds=3), None), (now, self.evidence)):
                anomaly = Anomaly(
                    camera_id=camera_id, rule="intrusion", observed_at=at, value=1, threshold=1, zone="gate",
                    evidence=proof,
                )  # fmt: skip
                await self.stores.bus.publish("anomalies", anomaly.model_dump(mode="json"))
        return ids

    async def outbox(self) -> dict[OutboxStatus, int]:
        counts = await self.stores.outbox.counts()
        return {status: counts.get(status, 0) for status in OutboxStatus}

    async def delivered(self, count: int) -> bool:
        return (await self.outbox())[OutboxStatus.DELIVERED] >= count

    async def attempted(self, count: int) -> bool:
        """``count`` items waiting in the outbox, each tried at least once and failed."""
        items = await self.stores.outbox.list(OutboxStatus.PENDING, limit=1000)
        return sum(1 for item in items if item.attempts >= 1 and item.last_error) >= count


@pytest.fixture
async def bus() -> AsyncIterator[Bus]:
    opened = Bus()
    try:
        yield opened
    finally:
        await opened.close()


async def start_pair(procs: Procs, bus: Bus, tmp_path: Path, **more: Any) -> tuple[Gateway, Intake]:
    intake = Intake(procs)
    await intake.start()
    gateway = Gateway(procs, development_config(tmp_path, events=forwarder(intake.url, **more)))
    await gateway.start()
    await bus.connect(gateway)
    return gateway, intake


async def all_cases(gateway: Gateway, token: str) -> list[dict[str, Any]]:
    async with gateway.client(token) as client:
        response = await client.get("/api/cases", params={"limit": 1000})
        response.raise_for_status()
        cases: list[dict[str, Any]] = response.json()
        return cases


async def received(intake: Intake, count: int) -> bool:
    return int((await intake.stats())["received"]) >= count


async def test_every_case_arrives_once_through_an_intake_down_failing_hanging_and_slow(
    procs: Procs, bus: Bus, tmp_path: Path
) -> None:
    gateway, intake = await start_pair(procs, bus, tmp_path)
    batch, sent = 4, 0

    async def counter(name: str, least: int) -> bool:
        return int((await intake.stats())[name]) >= least

    # down: the process is gone, connections are refused; every case waits, tried, then goes through
    intake.stop()
    await bus.cases(batch)
    await wait(lambda: bus.attempted(batch), 30, "every case tried against the stopped intake")
    await intake.start()
    sent += batch
    await wait(lambda: bus.delivered(sent), 30, "the cases of the outage delivered once the intake is back")
    # misbehaving: each phase sees its own cases fail at least once, then recover
    phases: list[tuple[dict[str, Any], str]] = [
        ({"error_rate": 1.0, "error_status": 500}, "errors_injected"),  # 500 before storing the case
        ({"error_rate": 1.0, "error_status": 500, "error_after_commit": True}, "errors_injected"),  # stored, then 500
        ({"timeout": True}, "requests"),  # hangs until the gateway gives up
        ({"latency_ms": 1500}, "requests"),  # slower than the gateway's 1 s request timeout
    ]
    for chaos, count in phases:
        before = int((await intake.stats())[count])
        await intake.control(**chaos)
        await bus.cases(batch)
        await wait(lambda c=count, n=before + batch: counter(c, n), 30, f"{batch} cases meeting {chaos}")  # type: ignore[misc]
        await intake.control()
        sent += batch
        await wait(lambda n=sent: bus.delivered(n), 30, f"the cases of {chaos} delivered after it")  # type: ignore[misc]
    total = sent

    stats = await intake.stats()
    assert stats["received"] == total, stats  # the intake's own count: each case once, none lost
    assert stats["duplicates_refused"] >= batch, stats  # the after-commit 500s were resent and recognised
    assert stats["bad_signatures"] == stats["invalid"] == 0, stats
    outbox = await bus.outbox()
    assert outbox == {**outbox, OutboxStatus.PENDING: 0, OutboxStatus.SENDING: 0, OutboxStatus.DEAD: 0}
    cases = await all_cases(gateway, await gateway.login())
    assert len(cases) == total and len({c["code"] for c in cases}) == total
    assert all(c["status"] == "received" for c in cases), cases  # the intake's receipt (no callbacks here)


async def test_sigkill_with_deliveries_in_flight_then_restart_delivers_each_case_exactly_once(
    procs: Procs, bus: Bus, tmp_path: Path
) -> None:
    gateway, intake = await start_pair(procs, bus, tmp_path, concurrency=2)
    total = 24
    await intake.control(latency_ms=400)  # slow enough that deliveries are in flight when it dies

    async def all_cases_made() -> bool:
        return sum((await bus.outbox()).values()) >= total

    await bus.cases(total)
    await wait(all_cases_made, 30, f"{total} cases committed to the outbox")
    await wait(lambda: received(intake, 3), 30, "the first deliveries")
    assert gateway.process is not None
    gateway.process.kill(signal.SIGKILL)
    at_kill = await bus.outbox()
    assert at_kill[OutboxStatus.DELIVERED] < total, at_kill  # it died in the middle
    assert at_kill[OutboxStatus.SENDING] >= 1, at_kill  # with items leased to the dead sender

    await intake.control()
    await gateway.start()
    await wait(lambda: bus.delivered(total), 45, f"all {total} cases delivered after the restart")
    stats = await intake.stats()
    assert stats["received"] == total, stats  # exactly once at the intake: none lost, none twice
    outbox = await bus.outbox()
    assert outbox[OutboxStatus.PENDING] == outbox[OutboxStatus.SENDING] == outbox[OutboxStatus.DEAD] == 0, outbox
    cases = await all_cases(gateway, await gateway.login())
    assert len(cases) == total and all(c["status"] == "received" for c in cases), cases


async def test_signed_callbacks_close_cases_and_forged_or_replayed_ones_are_refused_and_audited(
    procs: Procs, bus: Bus, tmp_path: Path
) -> None:
    intake = Intake(procs)  # its port is chosen now: the gateway is configured with it
    gateway = Gateway(procs, development_config(tmp_path, events=forwarder(intake.url)))
    await gateway.start()
    await bus.connect(gateway)
    admin = await gateway.login()
    async with gateway.client(admin) as client:
        created = await client.post("/api/api-keys", json={"name": "e2e-intake", "role": "intake"})
        assert created.status_code == 201, created.text
    key, key_id = created.json()["key"], created.json()["key_id"]
    intake.callback_url, intake.api_key = gateway.url + CALLBACK, key
    await intake.start()

    # a second gateway pointed at the same data directory by mistake is refused before it touches it
    twin = dict(gateway.config, http={"host": "127.0.0.1", "port": free_port()})
    (tmp_path / "twin.yaml").write_text(yaml.safe_dump(twin, allow_unicode=True), "utf-8")
    refused = subprocess.run(
        [sys.executable, "-m", "xueliang.gateway", "run", "--config", str(tmp_path / "twin.yaml")],
        cwd=REPO, env=child_env(COLUMNS="200"), capture_output=True, text=True, timeout=60, check=False,
        start_new_session=True,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "is in use by another gateway node" in refused.stderr and "Traceback" not in refused.stderr

    await bus.cases(2)

    async def closed() -> bool:
        cases = await all_cases(gateway, admin)
        return len(cases) == 2 and all(c["status"] == "closed" for c in cases)

    await wait(closed, 45, "both cases walked to closed by the intake's signed callbacks")
    async with gateway.client(admin) as client:
        code = (await client.get("/api/cases")).json()[0]["code"]
        history = (await client.get(f"/api/cases/{code}")).json()["history"]
    assert [h["status"] for h in history][-1] == "closed"
    assert {"received", "dispatched", "handling", "closed"} <= {h["status"] for h in history}

    def signed(body: bytes, secret: str = CALLBACK_SECRET, at: float | None = None) -> dict[str, str]:
        headers = signed_headers("intake", secret, "POST", CALLBACK, body, now=at)
        return {**headers, "Content-Type": "application/json", "X-API-Key": key}

    body = callback_body(code, CaseStatus.SUPERVISED, event_id="e2e-supervised")
    async with gateway.client() as client:
        forged = await client.post(CALLBACK, content=body, headers=signed(body, secret="not-the-secret-at-all"))
        old = await client.post(CALLBACK, content=body, headers=signed(body, at=time.time() - 3600))
        good_headers = signed(body)
        first = await client.post(CALLBACK, content=body, headers=good_headers)
        replay = await client.post(CALLBACK, content=body, headers=good_headers)
    assert forged.status_code == 401 and "signature" in forged.json()["detail"], forged.text
    assert old.status_code == 401 and "window" in old.json()["detail"], old.text
    assert first.status_code == 200, first.text
    assert replay.status_code == 401 and "replay" in replay.json()["detail"], replay.text

    async with gateway.client(admin) as client:
        audit = (await client.get("/api/audit", params={"action": f"POST {CALLBACK}", "limit": 1000})).json()
        case = (await client.get(f"/api/cases/{code}")).json()
    refused = [e for e in audit if e["outcome"] == "unauthenticated 401"]
    assert len(refused) == 3 and {e["actor"] for e in refused} == {f"apikey:{key_id}"}, audit
    assert case["status"] == "closed"  # a late "supervised" is history, not a step back
    assert (await intake.stats())["callbacks_failed"] == 0


def test_a_broken_grading_table_refuses_the_start_with_the_row_named(tmp_path: Path) -> None:
    shipped = (REPO / "config" / "grading.yaml").read_text("utf-8")
    row = "- {rule: intrusion, value_min: 1, grade: blue}"
    assert row in shipped
    table = tmp_path / "grading.yaml"
    table.write_text(shipped.replace(row, row.replace("blue", "purple")), "utf-8")
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(development_config(tmp_path, events={"tables": {"grading": str(table)}})))
    result = subprocess.run(
        [sys.executable, "-m", "xueliang.gateway", "run", "--config", str(config)],
        cwd=REPO, env=child_env(COLUMNS="200"), capture_output=True, text=True, timeout=60, check=False,
        start_new_session=True,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "grading.yaml" in result.stderr and "rules[" in result.stderr and "purple" in result.stderr, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
