"""Records of the media relay: access units, upstream and viewer states, what a source is.

Data only; behaviour lives in ``gop``, ``source``, ``upstream``, ``viewer`` and ``relay``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fractions import Fraction

from pydantic import BaseModel, ConfigDict, Field

CLOCK_RATE = 90_000  # RTP clock of video; every relay timestamp is in these ticks
TIME_BASE = Fraction(1, CLOCK_RATE)


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One coded picture in Annex B. ``pts`` is on the upstream's continuous 90 kHz timeline."""

    data: bytes
    pts: int
    keyframe: bool
    received_at: float  # time.monotonic() when the reader got it


class UpstreamState(enum.StrEnum):
    """Lifecycle of one camera's upstream session.

    ::

        NEW -> CONNECTING -> STREAMING -> (drop) RECONNECTING -> CONNECTING -> ...
        any -> STOPPING -> STOPPED          (last viewer gone for the grace period, or node stop)
    """

    NEW = "new"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    STOPPING = "stopping"
    STOPPED = "stopped"


class StreamMode(enum.StrEnum):
    PASSTHROUGH = "passthrough"  # H.264 from the camera, bytes untouched
    TRANSCODE = "transcode"  # another codec, decoded and encoded to H.264 once per camera


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Where a camera's live stream is. ``url`` may carry credentials: never log it, log ``safe_url``."""

    camera_id: str
    url: str
    safe_url: str


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What the reader found when it opened the stream."""

    codec: str
    mode: StreamMode
    width: int
    height: int
    profile: str  # profile-level-id (hex) of the H.264 sent on, "" when unknown


@dataclass(slots=True)
class UpstreamCounters:
    """Counted events of one upstream (exposed on the stats endpoint and in benchmarks)."""

    sessions: int = 0  # RTSP sessions opened (1 + reconnects that got through)
    reconnects: int = 0  # drops followed by a new attempt
    frames: int = 0  # access units received
    keyframes: int = 0
    bytes: int = 0
    loop_drops: int = 0  # units dropped because the event loop fell behind the reader
    gop_overflows: int = 0  # keyframe caches given up because a GOP outgrew the cache
    fanned_out: int = 0  # units handed to viewers, summed over viewers


class UpstreamInfo(BaseModel):
    """Public view of one upstream."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str
    state: UpstreamState
    mode: StreamMode | None = None
    codec: str = ""
    width: int = 0
    height: int = 0
    viewers: int = 0
    gop_cached: int = Field(0, description="Frames in the keyframe cache")
    last_error: str = ""
    sessions: int = 0
    reconnects: int = 0
    frames: int = 0
    keyframes: int = 0
    loop_drops: int = 0
    gop_overflows: int = 0


@dataclass(slots=True)
class ViewerCounters:
    sent: int = 0  # units handed to the WebRTC sender
    replayed: int = 0  # of which came from the keyframe cache
    dropped: int = 0  # units dropped by queue overflow or while waiting for a keyframe after it
    resyncs: int = 0  # times the viewer jumped to the cached GOP (or waited for the next keyframe)
    keyframe_requests: int = 0  # PLI/FIR from the receiver served from the cache
    first_sent_at: float = 0.0
    attached_at: float = field(default=0.0)
