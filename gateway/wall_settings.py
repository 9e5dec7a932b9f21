"""Settings of the live wall: media relay, WebRTC (ICE) and signalling limits.

The ``wall`` section of the gateway's settings. It lives in ``gateway`` beside the ``http`` section
because the settings model must not import the API package it configures.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class IceServer(BaseModel):
    """One STUN or TURN server offered to the gateway's side of every peer connection."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    urls: list[str] = Field(
        ..., min_length=1, description="stun:host:port, turn:host:port?transport=udp|tcp or turns:host:port"
    )
    username: str = Field("", description="TURN user name (empty for STUN)")
    credential: SecretStr = Field(SecretStr(""), description="TURN password (empty for STUN); from the environment")

    @model_validator(mode="after")
    def _schemes(self) -> IceServer:
        for url in self.urls:
            scheme = url.split(":", 1)[0]
            if scheme not in ("stun", "turn", "turns"):
                raise ValueError(f"ICE server URL {url!r} must start with stun:, turn: or turns:")
            if scheme != "stun" and not (self.username and self.credential.get_secret_value()):
                raise ValueError(f"TURN server {url!r} needs username and credential")
        return self


class WallSettings(BaseModel):
    """The ``wall`` section: how the gateway relays camera video to operators' browsers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    ice_servers: list[IceServer] = Field(
        default_factory=list,
        description="STUN/TURN servers for the gateway's ICE agent; empty = host candidates only (same network)",
    )
    host_candidate_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = Field(
        default_factory=list,
        description="Advertise only host candidates inside these networks (CIDR); empty = every interface",
    )
    rtsp_transport: Literal["tcp", "udp"] = Field(
        "tcp", description="RTP transport asked of cameras; tcp survives loss and firewalls"
    )
    open_timeout_s: float = Field(8.0, gt=0, le=120, description="Time allowed to open a camera's RTSP session")
    read_timeout_s: float = Field(5.0, gt=0, le=120, description="A camera silent this long is reconnected")
    grace_s: float = Field(
        15.0, ge=0, le=3600, description="Keep a camera's upstream this long after its last viewer left"
    )
    reconnect_min_s: float = Field(0.5, gt=0, le=60, description="First wait before reconnecting a dropped camera")
    reconnect_max_s: float = Field(30.0, gt=0, le=3600, description="Longest wait between reconnect attempts")
    gop_cache_frames: int = Field(
        250, ge=1, le=3000, description="Most frames kept from the last keyframe for instant start of new viewers"
    )
    gop_cache_bytes: int = Field(
        16 * 1024 * 1024, ge=65536, description="Most bytes kept in one camera's keyframe cache"
    )
    viewer_queue_frames: int = Field(
        50, ge=2, le=1000, description="Live frames queued per viewer past the cache; overflow resyncs at a keyframe"
    )
    loop_backlog_frames: int = Field(
        100, ge=2, le=10000, description="Frames a camera reader may hand to the event loop ahead of it"
    )
    max_upstreams: int = Field(64, ge=1, le=4096, description="Cameras relayed at once (one reader thread each)")
    max_sessions: int = Field(256, ge=1, le=100_000, description="WebRTC viewer sessions served at once by this node")
    max_sessions_per_user: int = Field(64, ge=1, le=10_000, description="Viewer sessions one operator may hold")
    connect_timeout_s: float = Field(20.0, gt=0, le=600, description="A viewer session not connected by then is closed")
    transcode_fallback: bool = Field(
        True, description="Transcode non-H.264 cameras to H.264 once per camera (CPU!) instead of refusing them"
    )
    transcode_max_width: int = Field(1280, ge=160, le=7680, description="Transcoded pictures are scaled down to this")
    transcode_fps: int = Field(15, ge=1, le=60, description="Keyframe interval base of transcoded streams (frames/s)")
    saved_walls_per_user: int = Field(200, ge=1, le=10_000, description="Saved walls plus tours one operator may keep")

    @model_validator(mode="after")
    def _backoff_order(self) -> WallSettings:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError(
                f"reconnect_max_s ({self.reconnect_max_s}) must be >= reconnect_min_s ({self.reconnect_min_s})"
            )
        return self
