"""``GET /api/cases/{code}/evidence.jpg`` and the case history when the evidence file is not there,
over real HTTP on an embedded gateway: a file deleted by hand is 410 with what is true (missing,
removed by the retention policy or by hand), and a case whose evidence could not be written (the disk
under events.evidence.dir full: ENOSPC at the writer's edge) says so in its history, is counted in the
case side's figures, and answers 404 "has no evidence"."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api.conftest import RunningGateway, add_user, dev_settings, serving
from tests.events.conftest import EVIDENCE, anomaly, camera, wait_for
from tests.events.test_disk_failures import fsync_full_under
from xueliang.events.codes import format_code
from xueliang.gateway.models import CameraRecord, Location, Role

pytestmark = pytest.mark.timeout(90)

# ``anomaly()`` observes at 2025-03-01 10:00 Asia/Shanghai; ``camera()`` is in district 511902.
FIRST_CODE = format_code("511902", "20250301", "T01", 1)
SECOND_CODE = format_code("511902", "20250301", "T01", 2)


async def raise_case(gw: RunningGateway, client: httpx.AsyncClient, cam: int, code: str) -> dict[str, object]:
    """Camera ``cam`` registered, one loitering observation of 400 s with evidence on the bus: a blue
    case; returns it once the API shows it."""
    assert gw.node.cases is not None
    context = camera(cam)
    location = Location(**context.model_dump(include=set(Location.model_fields)))
    record = CameraRecord(id=context.id, name=context.name, host=f"127.9.0.{cam}", location=location)
    await gw.node.stores.cameras.upsert(record.model_copy(update={"category": context.place}))
    await gw.node.cases.publish(anomaly(cam, "loitering", 0, 400, evidence=EVIDENCE))

    async def listed() -> bool:
        return (await client.get(f"/api/cases/{code}")).status_code == 200

    await wait_for(listed, 30, f"case {code}")
    case: dict[str, object] = (await client.get(f"/api/cases/{code}")).json()
    return case


async def test_evidence_deleted_by_hand_or_never_written_is_told_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = dev_settings(tmp_path / "gateway", events={"codes": {"node_tag": "T01"}})
    async with serving(settings) as gw, gw.client(await add_user(gw, "operator-ev", Role.OPERATOR)) as client:
        assert gw.node.cases is not None
        service = gw.node.cases.service
        first = await raise_case(gw, client, 1, FIRST_CODE)
        assert isinstance(first["evidence"], dict)
        photo = await client.get(f"/api/cases/{FIRST_CODE}/evidence.jpg")
        assert photo.status_code == 200 and photo.content[:2] == b"\xff\xd8"

        (service.evidence.root / str(first["evidence"]["path"])).unlink()  # someone deletes it by hand
        gone = await client.get(f"/api/cases/{FIRST_CODE}/evidence.jpg")
        assert gone.status_code == 410, gone.text
        assert gone.json()["detail"] == (
            f"案件 {FIRST_CODE} 的证据文件缺失（已被保留策略或人工删除）/ evidence file of case {FIRST_CODE} is "
            "missing (removed by the retention policy or by hand)"
        )

        monkeypatch.setattr("xueliang.events.evidence.os.fsync", fsync_full_under(service.evidence.root))
        second = await raise_case(gw, client, 2, SECOND_CODE)
        monkeypatch.undo()
        assert second["evidence"] is None
        notes = [str(entry["note"]) for entry in second["history"]]  # type: ignore[attr-defined]
        assert any(note.startswith("证据未保存：") and "evidence not saved: " in note for note in notes), notes
        assert service.stats()["evidence_failures"] == 1
        missing = await client.get(f"/api/cases/{SECOND_CODE}/evidence.jpg")
        assert missing.status_code == 404 and missing.json()["detail"] == f"case {SECOND_CODE} has no evidence"
