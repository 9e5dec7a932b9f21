"""Records of the case side: incidents, cases, their status, and what the gateway tells us about a camera.

Records only; behaviour lives in ``aggregation``, ``grading``, ``service`` and friends. ``Incident``
is a slotted dataclass because the aggregator updates it thousands of times a second; ``Case`` is
a pydantic model because it travels (outbox payload, store rows, public view).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Grade(enum.StrEnum):
    """Three-colour early warning (蓝橙红预警), lowest first."""

    BLUE = "blue"
    ORANGE = "orange"
    RED = "red"


class DeadlineTier(enum.StrEnum):
    ON_THE_SPOT = "on_the_spot"  # 即时答复
    SAME_DAY = "same_day"  # 当日办结
    FIVE_DAYS = "five_days"  # 5 日内办结
    TWO_MONTHS = "two_months"  # 两个月内办结
    LEADER_OWNED = "leader_owned"  # 领导包案


class RoutingLevel(enum.StrEnum):
    GRID = "grid"
    TOWNSHIP = "township"
    DISTRICT = "district"
    CITY = "city"


class IncidentState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DISMISSED = "dismissed"
    ESCALATED = "escalated"
    CLOSED = "closed"


class CaseStatus(enum.StrEnum):
    """Where a case stands, gateway side first, then as the intake reports it (受理、转办、办理、督办、办结)."""

    NEW = "new"  # committed here, not yet in the outbox
    QUEUED = "queued"  # in the outbox
    SENT = "sent"  # the intake accepted the request
    RECEIVED = "received"  # 受理
    DISPATCHED = "dispatched"  # 转办 / 派单
    HANDLING = "handling"  # 办理
    SUPERVISED = "supervised"  # 督办
    CLOSED = "closed"  # 办结
    REJECTED = "rejected"  # the intake refused it (not its business, duplicate of another report)
    DEAD = "dead"  # delivery gave up; an operator may retry


# Progress order; a report for an earlier step than the current one is history, not a regression.
STATUS_RANK: dict[CaseStatus, int] = {
    CaseStatus.NEW: 0,
    CaseStatus.QUEUED: 1,
    CaseStatus.DEAD: 2,
    CaseStatus.SENT: 3,
    CaseStatus.RECEIVED: 4,
    CaseStatus.DISPATCHED: 5,
    CaseStatus.HANDLING: 6,
    CaseStatus.SUPERVISED: 7,
    CaseStatus.CLOSED: 8,
    CaseStatus.REJECTED: 8,
}
FINAL_STATUSES = frozenset({CaseStatus.CLOSED, CaseStatus.REJECTED})
INTAKE_STATUSES = frozenset(
    {
        CaseStatus.RECEIVED,
        CaseStatus.DISPATCHED,
        CaseStatus.HANDLING,
        CaseStatus.SUPERVISED,
        CaseStatus.CLOSED,
        CaseStatus.REJECTED,
    }
)


class CameraContext(BaseModel):
    """What the gateway hands in about the camera an anomaly came from (events cannot read the registry)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str = ""
    region_code: str = Field("", description="6-digit administrative region code of the district (行政区划代码)")
    district: str = ""
    township: str = ""
    township_code: str = ""
    grid_code: str = ""
    address: str = ""
    lat: float | None = None
    lon: float | None = None
    place: str = Field("other", description="Place category: school, station, square, road, community, ...")


@dataclass(slots=True)
class Incident:
    """One thing going on at one camera for one rule and zone, however many frames saw it."""

    id: str
    camera_id: str
    rule: str
    zone: str
    state: IncidentState
    first_seen: datetime
    last_seen: datetime
    count: int
    peak_value: float
    best_evidence_id: str = ""  # id of the anomaly whose frame is the best evidence
    best_score: float = 0.0
    grade: Grade | None = None
    case_code: str = ""
    dismiss_reason: str = ""
    acknowledged_by: str = ""
    acknowledged_at: datetime | None = None
    escalated_by: str = ""
    closed_at: datetime | None = None
    reopened: int = 0  # times a closed incident came back within the hold-down window

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.camera_id, self.rule, self.zone)


class CaseLocation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    region_code: str
    district: str = ""
    township: str = ""
    township_code: str = ""
    grid_code: str = ""
    address: str = ""
    lat: float | None = None
    lon: float | None = None


class Routing(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    level: RoutingLevel
    unit_code: str = Field(description="The receiving unit: grid code, township code, region code or city code")
    note: str = Field("", description="Why the level differs from the table's (a missing code on the camera)")


class EvidenceRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str
    path: str = Field(description="Relative to the evidence directory (YYYY/MM/DD/<code>.jpg)")
    url: str = ""
    width: int
    height: int
    bytes: int


class StatusEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: CaseStatus
    at: datetime
    note: str = ""
    source: str = Field("gateway", description="gateway | forwarder | callback | poll | operator | overdue-check")
    event_id: str = ""


class Case(BaseModel):
    """One case, one code (一案一码)."""

    model_config = ConfigDict(extra="forbid")

    code: str
    incident_id: str
    title_zh: str
    title_en: str
    description_zh: str
    description_en: str
    location: CaseLocation
    camera_id: str
    camera_name: str = ""
    place: str = "other"
    rule: str
    zone: str = ""
    value: float = 0.0
    observations: int = 1
    observed_at: datetime
    created_at: datetime
    grade: Grade
    category_code: str
    category_zh: str = ""
    category_en: str = ""
    deadline_tier: DeadlineTier
    due_at: datetime
    routing: Routing
    evidence: EvidenceRef | None = None
    status_url: str = ""
    status: CaseStatus = CaseStatus.NEW
    history: list[StatusEntry] = Field(default_factory=list)
    overdue_at: datetime | None = None
    created_by: str = Field("auto", description="auto, or the operator who escalated the incident by hand")


class PublicStatusEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: CaseStatus
    at: datetime


class PublicCaseView(BaseModel):
    """What the public status page (QR code) shows: nothing personal, no camera, no picture."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    grade: Grade
    category_code: str
    category_zh: str
    category_en: str
    status: CaseStatus
    overdue: bool
    district: str
    township: str
    history: list[PublicStatusEntry]
