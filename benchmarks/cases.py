"""Case-side figures: anomalies/s through aggregation into cases, and anomaly -> intake-accepted latency.

    .venv/bin/python benchmarks/cases.py [--anomalies 200000] [--rate 100] [--seconds 10]

1. ``aggregator_anomalies_per_s``: the in-memory aggregator alone (500 cameras x 4 rules, steady
   conditions, so most anomalies update a live incident);
2. ``service_anomalies_per_s``: the same stream through ``CaseService.handle`` (write-through to
   SQLite, grading, and the cases it raises written with evidence and put in the outbox);
3. latency: one-anomaly incidents (``sensor.door``) on distinct cameras at ``--rate`` cases/s against
   the reference intake (a subprocess on loopback); from ``handle()`` to the intake's 201 being
   recorded in the outbox. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import httpx
import numpy as np
from pydantic import SecretStr

from xueliang.events.aggregation import Aggregator
from xueliang.events.forwarder import DeliveryResult
from xueliang.events.models import CameraContext
from xueliang.events.service import CaseService
from xueliang.events.settings import EventsSettings
from xueliang.gateway.stores.sqlite.database import Database
from xueliang.gateway.stores.sqlite.outbox import SqliteOutbox
from xueliang.inference.anomaly import Anomaly, Box, Evidence

SECRET = "benchmark-secret-0123456789abcdef0123"
BASE = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
RULES = (("crowd", 40.0), ("intrusion", 1.0), ("loitering", 400.0), ("parking", 600.0))


def camera(i: int) -> CameraContext:
    return CameraContext(
        id=f"cam-{i:05d}", name=f"杆{i}", region_code="511902", district="巴州区", township="东城街道",
        township_code="511902001", grid_code=f"511902001{i % 1000:03d}", address=f"人民路{i}号", place="road",
    )  # fmt: skip


def evidence() -> Evidence:
    image = np.full((480, 640, 3), 100, np.uint8)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return Evidence(jpeg=bytes(data.tobytes()), width=640, height=480,
                    boxes=(Box(x1=100, y1=100, x2=300, y2=400, label="person", score=0.9),))  # fmt: skip


def stream(n: int, cameras: int = 500) -> list[Anomaly]:
    out = []
    per_step = cameras * len(RULES)
    for k in range(n):
        slot = k % per_step
        cam, (rule, value) = slot // len(RULES), RULES[slot % len(RULES)]
        out.append(Anomaly(camera_id=f"cam-{cam:05d}", rule=rule, value=value,
                           observed_at=BASE + timedelta(seconds=k // per_step)))  # fmt: skip
    return out


def settings(tmp: Path, intake_url: str) -> EventsSettings:
    return EventsSettings.model_validate({
        "store": {"sqlite_path": tmp / "events.sqlite3"},
        "evidence": {"dir": tmp / "evidence"},
        "forwarder": {"intake_url": intake_url, "secret": SecretStr(SECRET), "poll_interval_s": 0.2, "concurrency": 16},
    })  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def throughput(tmp: Path, n: int) -> dict[str, float]:
    anomalies = stream(n)
    aggregator = Aggregator(settings(tmp, "http://127.0.0.1:9").aggregation, lambda _: None)
    start = time.perf_counter()
    for anomaly in anomalies:
        aggregator.observe(anomaly)
    aggregate_s = time.perf_counter() - start

    db = await Database.open(tmp / "throughput-gateway.sqlite3")
    service = CaseService(settings(tmp / "throughput", "http://127.0.0.1:9"), SqliteOutbox(db))
    await service.start()
    cameras = {f"cam-{i:05d}": camera(i) for i in range(500)}
    start = time.perf_counter()
    for anomaly in anomalies:
        await service.handle(anomaly, cameras[anomaly.camera_id])
    await service.store.flush()
    service_s = time.perf_counter() - start
    cases = service.cases_created
    await service.close()
    await db.close()
    return {
        "anomalies": n,
        "aggregator_anomalies_per_s": round(n / aggregate_s),
        "service_anomalies_per_s": round(n / service_s),
        "service_cases_raised": cases,
    }


async def latency(tmp: Path, rate: float, seconds: float) -> dict[str, object]:
    port = free_port()
    log = (tmp / "intake.log").open("wb")
    intake = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xueliang.events.intake", "--port", str(port), "--db", str(tmp / "intake.sqlite3"),
        "--secret", SECRET, "--step-s", "3600", stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(f"{url}/api/v1/stats")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            started: dict[str, float] = {}
            latencies: list[float] = []
            done = asyncio.Event()
            total = int(rate * seconds)

            async def delivered(result: DeliveryResult) -> None:
                latencies.append(time.perf_counter() - started[result.key])
                if len(latencies) >= total:
                    done.set()

            db = await Database.open(tmp / "gateway.sqlite3")
            service = CaseService(settings(tmp / "latency", url), SqliteOutbox(db), on_delivery=delivered)
            await service.start()
            runner = asyncio.create_task(service.run())
            frame = evidence()
            t0 = time.perf_counter()
            for i in range(total):
                await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
                moment = time.perf_counter()
                anomaly = Anomaly(camera_id=f"cam-{i:05d}", rule="sensor.door", value=1, evidence=frame)
                [case] = await service.handle(anomaly, camera(i))
                started[case.code] = moment
            offered_s = time.perf_counter() - t0
            await asyncio.wait_for(done.wait(), timeout=120)
            service.stop()
            await runner
            await service.close()
            await db.close()
            received = (await client.get(f"{url}/api/v1/stats")).json()["received"]
    finally:
        intake.terminate()
        await intake.wait()
        log.close()
    ms = sorted(x * 1000 for x in latencies)
    return {
        "rate_cases_per_s": rate,
        "cases": total,
        "offered_cases_per_s": round(total / offered_s, 1),
        "intake_received": received,
        "latency_ms_p50": round(statistics.median(ms), 1),
        "latency_ms_p99": round(ms[int(0.99 * (len(ms) - 1))], 1),
        "latency_ms_max": round(ms[-1], 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anomalies", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        figures: dict[str, object] = {"benchmark": "cases"}
        figures.update(await throughput(tmp, args.anomalies))
        figures.update(await latency(tmp, args.rate, args.seconds))
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
