"""``build_case`` on its own: what a case carries from its incident, camera and assessment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from xueliang.events.case_record import build_case, evidence_note
from xueliang.events.errors import EvidenceError
from xueliang.events.grading import Grader
from xueliang.events.models import CaseStatus, Incident, IncidentState
from xueliang.events.settings import TableSettings

from .conftest import camera


def test_case_carries_the_cameras_location_the_status_url_and_why_it_has_no_evidence() -> None:
    seen = datetime(2024, 5, 6, 2, 30, tzinfo=UTC)
    incident = Incident(
        id="inc-1",
        camera_id="cam-007",
        rule="crowd",
        zone="gate",
        state=IncidentState.OPEN,
        first_seen=seen,
        last_seen=seen + timedelta(seconds=40),
        count=5,
        peak_value=40.0,
    )
    where = camera(7, place="school")
    assessment = Grader.from_settings(TableSettings(), "Asia/Shanghai").assess("crowd", 40.0, where, seen)
    assert assessment is not None
    try:
        raise EvidenceError("cannot write 2024/05/06/XL.jpg") from OSError(28, "No space left on device")
    except EvidenceError as exc:
        note = evidence_note(exc)
    now = seen + timedelta(minutes=1)

    case = build_case(
        "XL-511902-20240506-A-0001",
        incident,
        where,
        assessment,
        evidence=None,
        created_by="auto",
        now=now,
        timezone="Asia/Shanghai",
        public_url="https://gw.example.gov.cn",
        evidence_not_saved=note,
    )

    assert (case.location.region_code, case.location.grid_code, case.location.township) == (
        "511902",
        "511902001007",
        "东城街道",
    )
    assert (case.camera_id, case.camera_name, case.place) == ("cam-007", "人民路7号杆", "school")
    assert (case.value, case.observations, case.observed_at, case.created_at) == (40.0, 5, seen, now)
    assert (case.grade, case.category_code) == (assessment.grade, assessment.category.code)
    assert (case.routing, case.due_at, case.deadline_tier) == (assessment.routing, assessment.due_at, assessment.tier)
    assert case.status_url == "https://gw.example.gov.cn/c/XL-511902-20240506-A-0001"
    assert [(h.status, h.note) for h in case.history] == [(CaseStatus.NEW, "created (auto)"), (CaseStatus.NEW, note)]
    assert note.startswith("证据未保存：证据文件写入失败") and "evidence not saved: cannot write" in note
    assert case.evidence is None and case.title_zh and case.title_en
