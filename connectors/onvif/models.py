"""Records the ONVIF connector returns. Data only; behaviour lives in the client modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """GetDeviceInformation, as the camera reports it (strings may be empty, never None)."""

    manufacturer: str
    model: str
    firmware: str
    serial: str
    hardware_id: str


@dataclass(frozen=True, slots=True)
class MediaProfile:
    """One media profile: its video encoder settings and where to fetch its stream and stills."""

    token: str
    name: str
    encoding: str  # normalised: "H264", "H265", "JPEG", "MPEG4", or "" when no video encoder
    width: int
    height: int
    fps: float  # the encoder's frame-rate limit, 0.0 when unknown
    stream_uri: str = ""  # RTSP URI; empty when the camera refused to give one
    snapshot_uri: str = ""  # HTTP JPEG URI; empty when the camera offers none (that is fine)
    ptz: bool = False  # the profile carries a PTZ configuration
    is_sub_stream: bool = False  # heuristic: a smaller encoding of the same video source
    video_source: str = ""  # token of the video source the profile encodes


@dataclass(frozen=True, slots=True)
class PtzPreset:
    token: str
    name: str  # "" when the camera has the slot but no name for it
    pan: float | None = None
    tilt: float | None = None
    zoom: float | None = None


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Everything a probe learned about one camera, ready to become a registry record."""

    host: str
    port: int
    identity: DeviceIdentity
    clock_offset_s: float  # camera clock minus gateway clock (positive: camera is ahead)
    services: dict[str, str]  # service namespace -> XAddr (rewritten to the address we reach it on)
    media_version: Literal[1, 2]
    profiles: tuple[MediaProfile, ...]
    analysis_profile: str  # token: a sub-stream (smallest H.264 at least 640 px wide), else the main one
    live_profile: str  # token: the main H.264 stream, for the live wall
    ptz: bool
    presets: tuple[PtzPreset, ...]
    events_supported: bool  # an event service is offered
    pullpoint_supported: bool | None = None  # the camera's own claim; None when it did not say
    used_capabilities_fallback: bool = False  # GetServices failed and GetCapabilities was used

    @property
    def camera(self) -> str:
        return f"{self.host}:{self.port}"

    def profile(self, token: str) -> MediaProfile | None:
        return next((p for p in self.profiles if p.token == token), None)


@dataclass(frozen=True, slots=True)
class CameraEvent:
    """One notification from a PullPoint subscription.

    ``topic`` is normalised to the ``tns1:`` prefix for the ONVIF topic namespace
    (``tns1:RuleEngine/CellMotionDetector/Motion``); vendor topics keep their own prefix.
    """

    camera: str  # host:port
    topic: str
    source: dict[str, str] = field(default_factory=dict)  # SimpleItems of <tt:Source>
    data: dict[str, str] = field(default_factory=dict)  # SimpleItems of <tt:Data>
    key: dict[str, str] = field(default_factory=dict)  # SimpleItems of <tt:Key>
    utc_time: datetime | None = None  # when the camera says it happened (aware, UTC)
    property_operation: str | None = None  # "Initialized", "Changed", "Deleted" or None
