"""Building a ``Case`` record from its incident, the grader's assessment and the saved evidence.

Pure: no I/O, no clock (the caller passes ``now``), so what goes into a case can be read and tested
on its own; ``CaseService.open_case`` draws the code, saves the evidence, builds the case here and
stores it.

    case = build_case(code, incident, camera, assessment, evidence=ref, created_by="auto", now=now,
                      timezone=settings.timezone, public_url=settings.public_url)
"""

from __future__ import annotations

from datetime import datetime

from xueliang.events.errors import EvidenceError
from xueliang.events.grading import Assessment
from xueliang.events.models import (
    CameraContext,
    Case,
    CaseLocation,
    CaseStatus,
    EvidenceRef,
    Incident,
    StatusEntry,
)
from xueliang.events.qr import status_url
from xueliang.events.text import case_text


def build_case(
    code: str,
    incident: Incident,
    camera: CameraContext,
    assessment: Assessment,
    *,
    evidence: EvidenceRef | None,
    created_by: str,
    now: datetime,
    timezone: str,
    public_url: str,
    evidence_not_saved: str = "",
) -> Case:
    """The new case (status ``new``): its bilingual text, grade and routing, evidence, status URL and
    first history; ``evidence_not_saved`` (``evidence_note``) adds a second history line."""
    text = case_text(
        rule=incident.rule,
        value=incident.peak_value,
        zone=incident.zone,
        camera=camera,
        grade=assessment.grade,
        category_zh=assessment.category.name_zh,
        category_en=assessment.category.name_en,
        first_seen=incident.first_seen,
        last_seen=incident.last_seen,
        count=incident.count,
        tier=assessment.tier,
        due_at=assessment.due_at,
        level=assessment.routing.level,
        unit_code=assessment.routing.unit_code,
        timezone=timezone,
    )
    history = [StatusEntry(status=CaseStatus.NEW, at=now, note=f"created ({created_by})", source="gateway")]
    if evidence_not_saved:
        history.append(StatusEntry(status=CaseStatus.NEW, at=now, note=evidence_not_saved, source="gateway"))
    return Case(
        code=code,
        incident_id=incident.id,
        title_zh=text.title_zh,
        title_en=text.title_en,
        description_zh=text.description_zh,
        description_en=text.description_en,
        location=CaseLocation(**camera.model_dump(include=set(CaseLocation.model_fields))),
        camera_id=camera.id,
        camera_name=camera.name,
        place=camera.place,
        rule=incident.rule,
        zone=incident.zone,
        value=incident.peak_value,
        observations=incident.count,
        observed_at=incident.first_seen,
        created_at=now,
        grade=assessment.grade,
        category_code=assessment.category.code,
        category_zh=assessment.category.name_zh,
        category_en=assessment.category.name_en,
        deadline_tier=assessment.tier,
        due_at=assessment.due_at,
        routing=assessment.routing,
        evidence=evidence,
        status_url=status_url(public_url, code),
        history=history,
        created_by=created_by,
    )


def evidence_note(exc: EvidenceError) -> str:
    """The case history's note when its evidence was not saved: what to do first, the cause after."""
    if isinstance(exc.__cause__, OSError):
        zh = "证据未保存：证据文件写入失败，请释放磁盘空间或修正 events.evidence.dir 的权限"
    else:
        zh = "证据未保存：证据图像无法处理"
    return f"{zh} / evidence not saved: {exc}"
