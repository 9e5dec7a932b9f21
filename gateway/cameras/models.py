"""Records of camera management: what a technician asks for, and what provisioning, imports and
the health sweep report back. Data only; behaviour lives in the service modules."""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import time
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from xueliang.gateway.models import CameraRecord, CameraStatus, Location, PatrolPolicy

CAMERA_ID = r"^[A-Za-z0-9_.:\-]{1,64}$"


def normalise_host(value: str) -> str:
    """An IP literal in its canonical form, or a lower-cased DNS name; ``ValueError`` otherwise."""
    text = value.strip().strip("[]") if value.strip().startswith("[") else value.strip()
    if not text:
        raise ValueError("empty: give the camera's IP address or host name")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        labels = text.rstrip(".").split(".")
        if len(text) <= 253 and all(_label_ok(label) for label in labels):
            return text.rstrip(".").lower()
        raise ValueError(f"{value!r} is not an IP address or host name") from None


def _label_ok(label: str) -> bool:
    return 0 < len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii() and label[0] != "-"


class CameraSpec(BaseModel):
    """A camera as a technician describes it (one API request, or one row of a list)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        "",
        description="Camera id to use (e.g. the 点位编号 of the list); empty: keep the registered one or make one",
    )
    name: str = Field("", max_length=200, description="Display name; empty: the address")
    host: str = Field(
        # "address" too: the camera lists' column (IP地址/address) and the CLI say address
        validation_alias=AliasChoices("host", "address"),
        description="IP address or DNS name of the camera (also accepted as `address`)",
    )
    port: int = Field(80, ge=1, le=65535, description="ONVIF HTTP port")
    username: str = Field("", max_length=128, description="ONVIF user")
    password: str = Field("", max_length=256, repr=False, description="ONVIF password (stored encrypted)")
    location: Location = Field(default_factory=Location, description="Where the camera is")
    category: str = Field("", max_length=64, description="road, square, station, school, community, ...")
    policy: PatrolPolicy = Field(default_factory=PatrolPolicy, description="Patrol policy")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return normalise_host(value)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        text = value.strip()
        if text and not _is_camera_id(text):
            raise ValueError(f"{value!r} is not a usable camera id: 1-64 letters, digits, _ . : -")
        return text

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def fingerprint(self, key: bytes) -> str:
        """Changes when the content changes (used to resume an import); the password counts too.

        Keyed (HMAC-SHA256 with ``key``, see :func:`fingerprint_key`): result files are downloaded by
        technicians, and an unkeyed hash of a row that includes its password would let anyone holding
        the file test password guesses offline. Without the node's secret it reveals nothing."""
        content = self.model_dump_json(exclude={"row"}).encode()
        return hmac.new(key, content, hashlib.sha256).hexdigest()[:32]


FINGERPRINT_CONTEXT = b"xueliang/cameras/import-fingerprint/v1"


def fingerprint_key(secret: str) -> bytes:
    """The key of import fingerprints, derived from the node's token secret (``security.secret_key``,
    as :func:`xueliang.gateway.security.resolve_secrets` resolves it): the same on every run of one
    deployment (so ``--resume`` recognises unchanged rows), never the secret itself."""
    return hmac.new(secret.encode(), FINGERPRINT_CONTEXT, hashlib.sha256).digest()


def _is_camera_id(text: str) -> bool:
    return 0 < len(text) <= 64 and all(c.isascii() and (c.isalnum() or c in "_.:-") for c in text)


class RowState(enum.StrEnum):
    """Outcomes of an import row that are not a camera status."""

    INVALID = "invalid"  # the row could not be read (the reason names the column)
    REFUSED = "refused"  # the address is outside the allowed networks or does not resolve
    ERROR = "error"  # registering failed (address conflict, store unavailable)
    SKIPPED = "skipped"  # resumed: done in an earlier run and unchanged since


DONE_STATES = frozenset({CameraStatus.ONLINE.value, RowState.SKIPPED.value})


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What provisioning one camera came to: the stored record and notes for the technician."""

    record: CameraRecord
    created: bool  # a new camera (False: an existing one updated)
    reason: str = ""  # why it is not online, or notes (clock off, no snapshot URI, ...)


@dataclass(frozen=True, slots=True)
class RowResult:
    """One line of an import's result file."""

    row: int
    name: str
    address: str
    status: str  # a CameraStatus value, or a RowState value
    camera_id: str = ""
    reason: str = ""
    fingerprint: str = ""

    @property
    def ok(self) -> bool:
        return self.status in DONE_STATES


@dataclass(slots=True)
class ImportProgress:
    """Counts of a running import, for a progress bar or an API job."""

    total: int
    done: int = 0
    ok: int = 0
    failed: int = 0  # registered but not online, refused, invalid or error
    skipped: int = 0  # resumed rows already done
    by_status: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    def count(self, result: RowResult) -> None:
        self.done += 1
        self.by_status[result.status] = self.by_status.get(result.status, 0) + 1
        if result.status == RowState.SKIPPED:
            self.skipped += 1
        elif result.ok:
            self.ok += 1
        else:
            self.failed += 1

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Rows per second so far (skipped rows excluded: they cost nothing)."""
        worked = self.done - self.skipped
        return worked / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.finished is not None:
            return 0.0
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None


@dataclass(frozen=True, slots=True)
class HealthResult:
    """One camera's health check: the status it implies and what was measured."""

    status: CameraStatus
    error: str = ""
    clock_offset_s: float | None = None
    stream_uri: str | None = None  # what the camera now gives for the analysis profile, if asked
    needs_probe: bool = False  # the stored profiles are missing or stale: re-probe the camera
    checked_at: datetime | None = None


class CameraChanges(BaseModel):
    """What a technician may change on a registered camera; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200, description="Display name")
    location: Location | None = Field(None, description="Where the camera is (replaces the whole location)")
    category: str | None = Field(None, max_length=64, description="road, square, station, school, ...")
    policy: PatrolPolicy | None = Field(None, description="Patrol policy (replaces the whole policy)")
    username: str | None = Field(None, max_length=128, description="ONVIF user; the camera is probed again")
    password: str | None = Field(
        None, max_length=256, repr=False, description="ONVIF password (stored encrypted); the camera is probed again"
    )

    @property
    def credentials_changed(self) -> bool:
        return self.username is not None or self.password is not None
