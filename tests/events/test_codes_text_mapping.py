"""Case codes (format, durable sequence), bilingual text, and the intake field mapping."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from xueliang.events.codes import CaseCodes, is_case_code
from xueliang.events.errors import MappingTableError
from xueliang.events.mapping import FieldMapping
from xueliang.events.models import DeadlineTier, Grade, RoutingLevel
from xueliang.events.service import CaseService
from xueliang.events.store import SqliteEventStore
from xueliang.events.text import case_text
from xueliang.gateway.stores.sqlite.outbox import SqliteOutbox

from .conftest import anomaly, camera, make_settings


async def test_codes_are_readable_sequential_and_durable(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "e.sqlite3")
    await store.open()
    codes = CaseCodes("N07", store)
    at = datetime(2025, 3, 1, 17, 0, tzinfo=UTC)  # 01:00 on 2 March, Shanghai
    first = [await codes.next_code("511902", at) for _ in range(3)]
    assert first == [f"511902-20250302-N07-00000{i}" for i in (1, 2, 3)]
    assert await codes.next_code("bad", at) == "000000-20250302-N07-000001"
    await store.close()
    again = SqliteEventStore(tmp_path / "e.sqlite3")
    await again.open()
    assert await CaseCodes("N07", again).next_code("511902", at) == "511902-20250302-N07-000004"
    other_node = await CaseCodes("N08", again).next_code("511902", at)
    assert other_node == "511902-20250302-N08-000001" and all(is_case_code(c) for c in [*first, other_node])
    await again.close()


def test_text_is_chinese_first_with_english() -> None:
    text = case_text(
        rule="crowd", value=42, zone="广场东", camera=camera(1), grade=Grade.ORANGE,
        category_zh="公共安全-人员聚集", category_en="Public safety - crowd gathering",
        first_seen=datetime(2025, 3, 1, 2, 0, tzinfo=UTC), last_seen=datetime(2025, 3, 1, 2, 3, 5, tzinfo=UTC),
        count=12, tier=DeadlineTier.SAME_DAY, due_at=datetime(2025, 3, 2, 2, 0, tzinfo=UTC),
        level=RoutingLevel.TOWNSHIP, unit_code="511902001", timezone="Asia/Shanghai",
    )  # fmt: skip
    assert text.title_zh == "【橙色预警】东城街道 人民路与解放路口1 发现人员聚集（42人）"
    assert text.title_en == "[ORANGE] Crowd gathering (42 people) at 人民路与解放路口1, 东城街道, 巴州区"
    assert "2025-03-01 10:00:00" in text.description_zh and "持续3分5秒" in text.description_zh
    assert "当日办结" in text.description_zh and "区域“广场东”" in text.description_zh
    assert "lasting 3 min 5 s" in text.description_en and "same day" in text.description_en


async def test_mapping_applied_to_the_case(tmp_path: Path, gateway_outbox: SqliteOutbox) -> None:
    service = CaseService(make_settings(tmp_path), gateway_outbox)
    await service.start()
    cases = []
    for at in (0, 5, 10):
        cases += await service.handle(anomaly(3, "crowd", at, 40), camera(3, place="school"))
    [case] = cases
    body = service.mapping.apply(case)
    assert body["caseNo"] == case.code and body["gridCode"] == "511902001003"
    assert body["eventTime"] == "2025-03-01T10:00:00+08:00" and body["grade"] == "orange"  # local, as the API
    assert body["routeLevel"] == "township" and body["targetUnit"] == "511902001"
    assert body["source"] == "xueliang-gateway" and body["summary"] == f"{case.title_zh}（案件编号 {case.code}）"
    assert body["evidence"] == {"sha256": None, "url": None, "path": None, "width": None, "height": None}
    item = await gateway_outbox.get(case.code)
    assert item.payload["body"] == body and item.payload["case"]["code"] == case.code
    await service.close()


def test_mapping_refuses_unknown_paths_filters_and_clashes(tmp_path: Path) -> None:
    path = tmp_path / "intake_mapping.yaml"
    lines = ["caseNo: code", "when: observed_at|isox", "grid: location.grid", "a: code", "a.b: code", "t: '{nope}'"]
    path.write_text("fields:\n" + "".join(f"  {line}\n" for line in lines), "utf-8")
    with pytest.raises(MappingTableError) as caught:
        FieldMapping.load(path)
    found = [str(p) for p in caught.value.problems]
    known = "iso, date, epoch_ms, str, int, float, upper, lower"
    assert f"intake_mapping.yaml: fields.when: unknown filter 'isox' (known: {known})" in found
    assert "intake_mapping.yaml: fields.grid: 'location.grid' is not a field of the case" in found
    assert "intake_mapping.yaml: fields.a.b: clashes with fields.a (a value cannot also be an object)" in found
    assert "intake_mapping.yaml: fields.t: template part {nope} is not a field of the case" in found


async def test_mapped_times_and_dates_are_local_like_the_case_code(
    tmp_path: Path, gateway_outbox: SqliteOutbox
) -> None:
    """Failed on the old code: ``|date`` gave the UTC date, the day before the case code's for a case
    seen between 00:00 and 08:00 in Shanghai."""
    path = tmp_path / "intake_mapping.yaml"
    path.write_text(
        "fields:\n  day: observed_at|date\n  at: observed_at|iso\n  ms: observed_at|epoch_ms\n"
        "  text: '{observed_at}'\n",
        "utf-8",
    )
    service = CaseService(make_settings(tmp_path), gateway_outbox)
    await service.start()
    cases = []
    for at in (0, 5, 10):
        cases += await service.handle(anomaly(3, "crowd", at, 40), camera(3, place="school"))
    await service.close()
    [case] = cases
    seen = datetime(2025, 3, 1, 17, 0, tzinfo=UTC)  # 01:00 on 2 March, Shanghai
    case = case.model_copy(update={"observed_at": seen})
    body = FieldMapping.load(path, "Asia/Shanghai").apply(case)
    assert body == {
        "day": "2025-03-02",
        "at": "2025-03-02T01:00:00+08:00",
        "ms": int(seen.timestamp() * 1000),
        "text": "2025-03-02T01:00:00+08:00",
    }
    assert FieldMapping.load(path, "UTC").apply(case)["day"] == "2025-03-01"
