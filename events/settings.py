"""``EventsSettings``: the case side's configuration section (``events:`` in config/gateway.yaml)."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)


class RuleWindow(_Section):
    """How one rule (or rule family) is aggregated into incidents."""

    quiet_s: float = Field(120.0, gt=0, description="An incident closes after this long with no new observation")
    hold_down_s: float = Field(
        300.0, ge=0, description="A closed incident seen again within this long re-opens instead of a new one"
    )
    min_observations: int = Field(1, ge=1, description="Observations needed before the incident is raised")
    min_duration_s: float = Field(0.0, ge=0, description="How long the condition must last before it is raised")


def _default_windows() -> dict[str, RuleWindow]:
    return {
        "intrusion": RuleWindow(quiet_s=60, hold_down_s=300, min_observations=2, min_duration_s=2),
        "crowd": RuleWindow(quiet_s=120, hold_down_s=600, min_observations=3, min_duration_s=10),
        "loitering": RuleWindow(quiet_s=120, hold_down_s=600, min_observations=1, min_duration_s=0),
        "parking": RuleWindow(quiet_s=300, hold_down_s=900, min_observations=2, min_duration_s=60),
        "quality": RuleWindow(quiet_s=600, hold_down_s=1800, min_observations=3, min_duration_s=60),
        "camera": RuleWindow(quiet_s=600, hold_down_s=1800, min_observations=2, min_duration_s=60),
        "sensor": RuleWindow(quiet_s=60, hold_down_s=300, min_observations=1, min_duration_s=0),
    }


class AggregationSettings(_Section):
    default: RuleWindow = Field(default_factory=RuleWindow, description="Window for rules not listed in `rules`")
    rules: dict[str, RuleWindow] = Field(
        default_factory=_default_windows,
        description="Per rule (`quality.black`) or rule family (`quality`); the exact rule wins over its family",
    )
    max_live_incidents: int = Field(
        100_000, ge=1, description="Incidents (and candidates) kept in memory; past it new keys are refused and counted"
    )
    max_evidence_bytes: int = Field(
        256 * 1024**2,
        gt=0,
        description="Best evidence frames (JPEG) of live incidents kept in memory, in bytes; past it the "
        "oldest kept are dropped (counted)",
    )
    sweep_interval_s: float = Field(5.0, gt=0, description="How often quiet incidents are closed")


class TableSettings(_Section):
    grading: Path | None = Field(None, description="Grading table; empty: the packaged config/grading.yaml")
    routing: Path | None = Field(None, description="Routing table; empty: the packaged config/routing.yaml")
    intake_mapping: Path | None = Field(None, description="Intake field mapping; empty: config/intake_mapping.yaml")

    @field_validator("grading", "routing", "intake_mapping")
    @classmethod
    def _exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}; give the {info.field_name} table (YAML), or leave it empty")
        return value


class CodeSettings(_Section):
    node_tag: str = Field(
        "N01", description="This node's tag in case codes (2-8 of A-Z, 0-9); unique per node in scale-out"
    )

    @field_validator("node_tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z0-9]{2,8}", value):
            raise ValueError(f"node_tag {value!r} must be 2-8 characters of A-Z and 0-9 (e.g. N01)")
        return value


class EvidenceSettings(_Section):
    dir: Path = Field(
        Path("evidence"),
        description="Annotated snapshots (YYYY/MM/DD/<code>.jpg); relative paths are under node.data_dir",
    )
    max_age_days: float = Field(180.0, gt=0, description="Evidence older than this is deleted (open cases excepted)")
    max_total_bytes: int = Field(
        20 * 1024**3, gt=0, description="Past this the oldest evidence is deleted (open cases excepted)"
    )
    jpeg_quality: int = Field(90, ge=30, le=100, description="JPEG quality of the annotated snapshot")
    workers: int = Field(2, ge=1, le=16, description="Threads that decode, draw and encode evidence")
    prune_interval_s: float = Field(3600.0, gt=0, description="How often the retention policy runs")


class StoreSettings(_Section):
    sqlite_path: Path = Field(
        Path("events.sqlite3"),
        description="SQLite file for incidents, cases, codes; relative to node.data_dir in the gateway",
    )


class ForwarderSettings(_Section):
    intake_url: str = Field("http://127.0.0.1:9100", description="Base URL of the governance centre's intake API")
    cases_path: str = Field("/api/v1/cases", description="Path cases are POSTed to")
    status_path: str = Field("/api/v1/cases/{code}", description="Path a case's status is read from")
    key_id: str = Field("gateway", description="Our key id at the intake (X-Xueliang-Key-Id)")
    secret: SecretStr = Field(SecretStr("change-me"), description="Shared HMAC secret with the intake")
    connect_timeout_s: float = Field(3.0, gt=0, description="TCP/TLS connect timeout")
    request_timeout_s: float = Field(10.0, gt=0, description="Read/write timeout of one request")
    backoff_base_s: float = Field(1.0, gt=0, description="First retry delay bound (full jitter)")
    backoff_cap_s: float = Field(300.0, gt=0, description="Largest retry delay bound")
    max_attempts: int = Field(12, ge=1, description="Attempts before an item goes dead (operators may retry it)")
    breaker_failures: int = Field(5, ge=1, description="Consecutive transient failures that open the breaker")
    breaker_reset_s: float = Field(30.0, gt=0, description="How long the breaker stays open before one probe")
    batch: int = Field(50, ge=1, description="Items claimed per round")
    concurrency: int = Field(8, ge=1, le=256, description="Requests in flight at once")
    lease_s: float = Field(60.0, gt=0, description="Lease on claimed items; must outlast one request")
    poll_interval_s: float = Field(1.0, gt=0, description="Idle wait between claims when nothing is due")
    ca_bundle: Path | None = Field(None, description="Extra CA bundle (PEM) for the intake's certificate")
    verify_tls: bool = Field(True, description="Verify the intake's certificate; false only for a lab intake")
    sender: str = Field("", description="Name this sender leases items under (default: forwarder-<pid>)")

    @field_validator("intake_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"https?://[^/?#\s]+", value):
            raise ValueError(
                f"intake_url {value!r} must be an http:// or https:// URL, e.g. https://intake.example:9100"
            )
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle_loads(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                ssl.create_default_context(cafile=str(value))
            except FileNotFoundError as exc:
                raise ValueError(f"ca_bundle {value}: no such file; give the PEM file of the intake's CA") from exc
            except (OSError, ssl.SSLError) as exc:  # ssl.SSLError is an OSError
                raise ValueError(f"ca_bundle {value}: cannot load it as PEM certificates ({exc})") from exc
        return value

    @model_validator(mode="after")
    def _lease_outlasts_request(self) -> ForwarderSettings:
        if self.lease_s <= self.connect_timeout_s + self.request_timeout_s:
            raise ValueError(
                f"lease_s ({self.lease_s}) must exceed connect_timeout_s + request_timeout_s "
                f"({self.connect_timeout_s + self.request_timeout_s}), or a slow request is sent twice at once"
            )
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("backoff_cap_s must be at least backoff_base_s")
        return self


class CallbackSettings(_Section):
    key_id: str = Field("intake", description="Key id the intake signs its callbacks with")
    secret: SecretStr = Field(SecretStr("change-me"), description="HMAC secret of the intake's callbacks")
    window_s: float = Field(300.0, gt=0, description="Callbacks older or newer than this (clock skew) are refused")
    replay_cache: int = Field(100_000, ge=100, description="Signatures remembered within the window (full: refuse)")


class StatusSettings(_Section):
    poll_interval_s: float = Field(
        0.0, ge=0, description="Poll the intake for open cases this often; 0: callbacks only"
    )
    overdue_check_interval_s: float = Field(60.0, gt=0, description="How often cases past their deadline are flagged")


class EventsSettings(_Section):
    """Anomalies -> incidents -> cases -> the intake."""

    aggregation: AggregationSettings = Field(default_factory=AggregationSettings, description="Incident windows")
    tables: TableSettings = Field(default_factory=TableSettings, description="Grading, routing, mapping tables")
    codes: CodeSettings = Field(default_factory=CodeSettings, description="Case codes")
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings, description="Annotated snapshots")
    store: StoreSettings = Field(default_factory=StoreSettings, description="Incident and case store")
    forwarder: ForwarderSettings = Field(default_factory=ForwarderSettings, description="Delivery to the intake")
    callback: CallbackSettings = Field(default_factory=CallbackSettings, description="Status callbacks")
    status: StatusSettings = Field(default_factory=StatusSettings, description="Status loop")
    timezone: str = Field("Asia/Shanghai", description="Local time zone: time-of-day windows, case code dates")
    public_url: str = Field("", description="URL the public status page lives under: {public_url}/c/{code}")
    auto_case: bool = Field(True, description="Raise a case automatically when a graded incident is raised")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Shanghai)") from exc
        return value
