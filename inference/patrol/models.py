"""Patrol records: what the gateway hands the scheduler (``PatrolTarget``) and what the scheduler
queues for the workers (``PatrolJob``). Records only.

Inference never fetches camera details itself (it imports no connectors): URLs and credentials
come in on the target. The password is a ``SecretStr`` (hidden in ``repr`` and logs) but is
written in clear in a job's JSON payload, because the worker on another node needs it to grab the
frame: keep the job queue inside the trusted network (it is the node's own SQLite file or Redis).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer

from xueliang.inference.zones import Zone


class Credentials(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    username: str = Field("", description="User name for the snapshot / stream URL (digest or basic auth)")
    password: SecretStr = Field(SecretStr(""), description="Password; hidden in repr, in clear in job payloads")

    @field_serializer("password", when_used="json")
    def _reveal(self, value: SecretStr) -> str:
        return value.get_secret_value()


class PatrolTarget(BaseModel):
    """One camera to patrol, as the gateway sees it now (re-read every ``refresh_s``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    camera_id: str = Field(min_length=1, description="Camera id (registry key)")
    priority: int = Field(3, ge=1, le=5, description="1 = key place (most often) .. 5 = least often")
    category: str = Field("", description="road, square, station, school, community, ...")
    interval_s: float | None = Field(None, gt=0, description="Override of the interval the priority gives")
    enabled: bool = Field(True, description="Patrol this camera at all")
    watch: bool = Field(False, description="Continuous motion-gated stream (watch mode) instead of snapshots")
    snapshot_url: str = Field("", description="ONVIF snapshot URI (HTTP); preferred for patrol")
    stream_url: str = Field("", description="RTSP URI of the analysis profile (keyframe grab, watch mode)")
    credentials: Credentials = Field(default_factory=Credentials, description="Credentials for both URLs")
    profile: str = Field("", description="Media profile token used for analysis")
    classes: tuple[str, ...] | None = Field(None, description="Detector class filter; None: the detector default")
    min_score: float | None = Field(None, ge=0, le=1, description="Detection score threshold; None: default")
    zones: tuple[Zone, ...] = Field((), description="Zones and their rules on this camera")


class PatrolJob(BaseModel):
    """One visit to one camera, due at ``due_at`` (epoch seconds). JSON payload on the job queue."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    camera_id: str
    due_at: float = Field(description="When the visit was due (epoch seconds); lag = taken - due")
    queued_at: float = Field(description="When the scheduler queued it (epoch seconds)")
    interval_s: float = Field(gt=0, description="The interval the policy asked for when it was queued")
    priority: int = Field(ge=1, le=5)
    category: str = ""
    snapshot_url: str = ""
    stream_url: str = ""
    credentials: Credentials = Field(default_factory=Credentials)
    profile: str = ""
    classes: tuple[str, ...] | None = None
    min_score: float | None = None
    zones: tuple[Zone, ...] = ()

    @classmethod
    def for_target(cls, target: PatrolTarget, *, due_at: float, queued_at: float, interval_s: float) -> PatrolJob:
        return cls(
            camera_id=target.camera_id,
            due_at=due_at,
            queued_at=queued_at,
            interval_s=interval_s,
            priority=target.priority,
            category=target.category,
            snapshot_url=target.snapshot_url,
            stream_url=target.stream_url,
            credentials=target.credentials,
            profile=target.profile,
            classes=target.classes,
            min_score=target.min_score,
            zones=target.zones,
        )
