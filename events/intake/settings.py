"""``IntakeSettings``: how the reference intake is run."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from xueliang.events.models import INTAKE_STATUSES, CaseStatus


class IntakeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    db: Path = Field(Path("var/intake.sqlite3"), description="SQLite file of received cases")
    key_id: str = Field("gateway", description="Key id the gateway signs with")
    secret: SecretStr = Field(description="Shared HMAC secret with the gateway (requests and callbacks)")
    window_s: float = Field(300.0, gt=0, description="Accepted clock skew of signed requests, seconds")
    callback_url: str = Field("", description="Gateway callback URL for status reports; empty: none sent")
    callback_key_id: str = Field("intake", description="Key id callbacks are signed with")
    callback_secret: SecretStr | None = Field(None, description="Secret for callbacks (default: `secret`)")
    callback_api_key: SecretStr | None = Field(
        None, description="The gateway's API key for this machine client (role intake), sent as X-API-Key"
    )
    steps: list[CaseStatus] = Field(
        default_factory=lambda: [CaseStatus.RECEIVED, CaseStatus.DISPATCHED, CaseStatus.HANDLING, CaseStatus.CLOSED],
        description="Status path each case walks, starting with received",
    )
    step_s: float = Field(5.0, gt=0, description="Seconds between status steps (the speed of the centre)")
    tick_s: float = Field(0.2, gt=0, description="How often statuses are advanced and callbacks sent")
    duplicate_status: int = Field(409, description="HTTP status of a repeated case code (200 or 409), same receipt")
    seed: int | None = Field(None, description="Seed of the misbehaviour dice (reproducible error rates)")

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[CaseStatus]) -> list[CaseStatus]:
        if not value or value[0] != CaseStatus.RECEIVED or any(s not in INTAKE_STATUSES for s in value):
            raise ValueError("steps must start with received and use only intake statuses")
        return value

    @field_validator("duplicate_status")
    @classmethod
    def _dup(cls, value: int) -> int:
        if value not in (200, 409):
            raise ValueError("duplicate_status must be 200 or 409")
        return value

    def callback_secret_value(self) -> str:
        return (self.callback_secret or self.secret).get_secret_value()
