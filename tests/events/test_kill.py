"""The forwarding process is killed with SIGKILL mid-delivery and restarted: every case arrives exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from xueliang.events.service import CaseService
from xueliang.gateway.stores.base import OutboxStatus
from xueliang.gateway.stores.sqlite.database import Database
from xueliang.gateway.stores.sqlite.outbox import SqliteOutbox

from .conftest import IntakeProcess, anomaly, camera, make_settings, wait_for

REPO = Path(__file__).resolve().parents[2]
N = 30


def spawn(tmp_path: Path, intake: IntakeProcess) -> subprocess.Popen[bytes]:
    with (tmp_path / "forwarder.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.events.forwarder_proc", str(tmp_path), intake.url],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
        )
    assert proc.stdout is not None
    with proc.stdout:
        assert proc.stdout.readline().strip() == b"ready", (tmp_path / "forwarder.log").read_text()
    return proc


async def test_sigkill_mid_delivery_then_restart(tmp_path: Path, intake: IntakeProcess) -> None:
    # Commit N cases (and their outbox items) without sending any.
    db = await Database.open(tmp_path / "gateway.sqlite3")
    outbox = SqliteOutbox(db)
    service = CaseService(make_settings(tmp_path, intake.url), outbox)
    await service.start()
    for cam in range(N):
        for at in (0, 5, 10):
            await service.handle(anomaly(cam, "crowd", at, 40), camera(cam))
    assert service.cases_created == N
    await service.close()
    assert (await outbox.counts())[OutboxStatus.PENDING] == N

    await intake.control(latency_ms=150)  # slow enough that requests are in flight when it dies

    async def received_at_least(n: int) -> bool:
        return bool((await intake.stats())["received"] >= n)

    first = spawn(tmp_path, intake)
    await wait_for(lambda: received_at_least(8), 60, "some deliveries before the kill")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    counts = await outbox.counts()
    assert counts[OutboxStatus.DELIVERED] < N  # it died in the middle

    second = spawn(tmp_path, intake)
    try:

        async def all_delivered() -> bool:
            return (await outbox.counts())[OutboxStatus.DELIVERED] == N

        await wait_for(all_delivered, 60, "every item delivered after the restart")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0
    figures = await intake.stats()
    assert figures["received"] == N  # each case once at the intake: none lost, none twice
    counts = await outbox.counts()
    assert counts[OutboxStatus.PENDING] == counts[OutboxStatus.SENDING] == counts[OutboxStatus.DEAD] == 0
    await db.close()
