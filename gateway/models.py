"""Records the gateway keeps: cameras, users, audit entries. Data only, no behaviour."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from xueliang.inference.zones import Zone


def utcnow() -> datetime:
    return datetime.now(UTC)


class Role(enum.StrEnum):
    """Who may do what. ``admin`` can do everything; see ``xueliang.api.deps`` for the checks."""

    ADMIN = "admin"
    TECHNICIAN = "technician"
    OPERATOR = "operator"
    INTAKE = "intake"  # machine client: the governance centre's status callback


class CameraStatus(enum.StrEnum):
    PROVISIONING = "provisioning"
    ONLINE = "online"
    OFFLINE = "offline"
    AUTH_FAILED = "auth_failed"
    UNSUPPORTED = "unsupported"
    DEGRADED = "degraded"


class Location(BaseModel):
    """Where a camera is, in the administrative hierarchy used to route cases."""

    model_config = ConfigDict(extra="forbid")

    region_code: str = Field("", description="6-digit administrative region code (行政区划代码), e.g. 511902")
    district: str = Field("", description="District / county name")
    township: str = Field("", description="Township / street name (乡镇/街道)")
    grid_code: str = Field("", description="Grid code (网格编码)")
    address: str = Field("", description="Street address or place description")
    lat: float | None = Field(None, ge=-90, le=90, description="Latitude, WGS-84")
    lon: float | None = Field(None, ge=-180, le=180, description="Longitude, WGS-84")


class StreamProfile(BaseModel):
    """One media profile of a camera as probed over ONVIF."""

    model_config = ConfigDict(extra="forbid")

    token: str
    name: str = ""
    encoding: str = ""  # H264, H265, JPEG, ...
    width: int = 0
    height: int = 0
    fps: float = 0.0
    stream_uri: str = ""
    snapshot_uri: str = ""
    ptz: bool = False


class PatrolPolicy(BaseModel):
    """How often a camera is patrolled and what the detector looks for there."""

    model_config = ConfigDict(extra="forbid")

    priority: int = Field(3, ge=1, le=5, description="1 = key place (most often) .. 5 = least often")
    interval_s: float | None = Field(None, gt=0, description="Override of the interval the priority gives")
    watch: bool = Field(False, description="Continuous motion-gated stream instead of patrol snapshots")
    enabled: bool = Field(True, description="Patrol this camera at all")
    classes: list[str] | None = Field(None, description="Detector classes to look for here; None: the default")
    min_score: float | None = Field(None, ge=0, le=1, description="Detection score threshold; None: the default")


class CameraRecord(BaseModel):
    """A camera in the registry. ``password_enc`` is the Fernet-encrypted password: never return it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    host: str
    port: int = 80
    username: str = ""
    password_enc: str = ""
    manufacturer: str = ""
    model: str = ""
    firmware: str = ""
    serial: str = ""
    hardware_id: str = ""
    profiles: list[StreamProfile] = Field(default_factory=list)
    analysis_profile: str = ""  # profile token used for analysis (a sub-stream when there is one)
    live_profile: str = ""  # profile token used for the live wall
    ptz: bool = False
    ptz_presets: dict[str, str] = Field(default_factory=dict)  # token -> name
    status: CameraStatus = CameraStatus.PROVISIONING
    last_seen: datetime | None = None
    last_error: str = ""
    clock_offset_s: float = 0.0
    location: Location = Field(default_factory=Location)
    category: str = Field("", description="road, square, station, school, community, ...")
    policy: PatrolPolicy = Field(default_factory=PatrolPolicy)
    zones: list[Zone] = Field(default_factory=list, description="Zones and their rules, normalised coordinates")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class CameraQuery(BaseModel):
    """Filter for listing cameras; empty fields do not filter."""

    model_config = ConfigDict(extra="forbid")

    status: CameraStatus | None = None
    region_code: str | None = None
    township: str | None = None
    grid_code: str | None = None
    category: str | None = None
    search: str | None = Field(None, description="Substring of name, host or address")
    limit: int = Field(100, ge=1, le=100_000)
    offset: int = Field(0, ge=0)


#: what a user name may be: the API and the CLI refuse anything else with this description
USERNAME_PATTERN = r"^[A-Za-z0-9_.\-]{2,64}$"
USERNAME_RULE = "2-64 letters, digits, _ . -"


class User(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str
    password_hash: str
    role: Role
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class ApiKey(BaseModel):
    """A key for a machine client. The key is shown once; only ``key_hash`` is kept."""

    model_config = ConfigDict(extra="forbid")

    key_id: str  # public prefix of the key, used to find it
    name: str
    key_hash: str
    role: Role
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def revoked(self) -> bool:
        """Revoked for good: its hash is erased, so no key can match it again (disabling can be undone)."""
        return not self.key_hash

    def revoke(self) -> ApiKey:
        """This key revoked: disabled, and its hash erased."""
        return self.model_copy(update={"disabled": True, "key_hash": ""})


class AuditEntry(BaseModel):
    """Who did what, when, and how it ended."""

    model_config = ConfigDict(extra="forbid")

    at: datetime = Field(default_factory=utcnow)
    actor: str  # username, "apikey:<key_id>", "anonymous" or "system"
    action: str  # e.g. "POST /api/cameras", "users.add"
    target: str = ""
    outcome: str  # "ok", "denied", "unauthenticated", "error", or an HTTP status code
    detail: str = ""
