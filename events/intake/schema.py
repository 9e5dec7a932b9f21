"""The intake's own contract: the case it accepts, the receipt it gives, what it reports."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class IntakeEvidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str | None = None
    url: str | None = None
    path: str | None = None
    width: int | None = None
    height: int | None = None


class IntakeCase(BaseModel):
    """A case as the governance centre takes it (camelCase, its own names)."""

    model_config = ConfigDict(extra="forbid")

    caseNo: str = Field(min_length=1, description="Case code, equal to the Idempotency-Key header")
    title: str = Field(min_length=1)
    titleEn: str | None = None
    description: str | None = None
    descriptionEn: str | None = None
    eventTime: datetime
    reportTime: datetime | None = None
    grade: str = Field(pattern="^(blue|orange|red)$")
    categoryCode: str
    categoryName: str | None = None
    deadlineTier: str
    dueTime: datetime
    routeLevel: str = Field(pattern="^(grid|township|district|city)$")
    targetUnit: str
    regionCode: str = Field(pattern=r"^\d{6}$")
    district: str | None = None
    township: str | None = None
    gridCode: str | None = None
    address: str | None = None
    longitude: float | None = None
    latitude: float | None = None
    cameraId: str | None = None
    cameraName: str | None = None
    ruleCode: str | None = None
    measuredValue: float | None = None
    observations: int | None = None
    statusUrl: str | None = None
    evidence: IntakeEvidence | None = None
    source: str | None = None
    summary: str | None = None


class Receipt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    intake_id: str
    received_at: datetime
    status: str
    event_id: str
    duplicate: bool = False


class HistoryItem(BaseModel):
    status: str
    at: datetime
    note: str = ""
    event_id: str


class CaseStatusView(BaseModel):
    code: str
    intake_id: str
    status: str
    history: list[HistoryItem]


class Stats(BaseModel):
    received: int = Field(description="Distinct cases received")
    duplicates_refused: int = Field(description="Repeated case codes answered with the first receipt")
    requests: int
    bad_signatures: int
    invalid: int
    errors_injected: int
    callbacks_sent: int
    callbacks_failed: int
    by_status: dict[str, int]


class Chaos(BaseModel):
    """Misbehaviour on demand (POST /_control)."""

    model_config = ConfigDict(extra="forbid")

    error_rate: float = Field(0.0, ge=0, le=1, description="Share of case requests answered with error_status")
    error_status: int = Field(500, ge=400, le=599, description="Status of injected errors")
    error_after_commit: bool = Field(False, description="Store the case first, then answer the error")
    latency_ms: float = Field(0.0, ge=0, description="Delay before answering case requests")
    timeout: bool = Field(False, description="Never answer case requests (until the client gives up)")
    down: bool = Field(False, description="Answer 503 to everything but /_control and /api/v1/stats")
