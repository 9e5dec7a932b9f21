"""Configuration of the camera simulator (one pydantic model, every field described)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "xueliang" / "simulator"


class SimulatorConfig(BaseModel):
    """Settings of one simulator process impersonating ``count`` ONVIF cameras."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(50, ge=1, le=1_000_000, description="How many cameras to simulate.")
    base_address: str = Field(
        "127.1.0.1",
        description="Address of camera 0; camera k answers on base_address + k. Must stay inside 127.0.0.0/8.",
    )
    host_bind: str = Field(
        "0.0.0.0",
        description=(
            "Address the single HTTP and RTSP listeners bind to. The wildcard reaches every 127.x.y.z "
            "address with one socket; each connection's local address tells which camera it is for."
        ),
    )
    http_port: int = Field(0, ge=0, le=65535, description="HTTP (SOAP, snapshots, /_sim control) port; 0 = free port.")
    rtsp_port: int = Field(0, ge=0, le=65535, description="RTSP port shared by all streaming cameras; 0 = free port.")
    rtsp_count: int = Field(4, ge=0, description="How many cameras (the first ones) also stream H.264 over RTSP.")
    rtsp_auth: bool = Field(True, description="Require RTSP digest authentication, as real cameras do.")
    username: str = Field("admin", min_length=1, description="User name every camera accepts.")
    password: str = Field("sim-Passw0rd", min_length=1, description="Password every camera accepts.")
    video: Path = Field(..., description="Video file shown by snapshots and streamed over RTSP.")
    snapshot_size: tuple[int, int] | None = Field(
        None, description="Snapshot JPEG size (width, height); None = the video's own size."
    )
    stream_size: tuple[int, int] | None = Field(
        None, description="Main RTSP stream size (width, height); None = the video's own size."
    )
    main_fps: int = Field(25, ge=1, le=60, description="Frame rate of the main stream (channel 101).")
    sub_size: tuple[int, int] = Field((640, 360), description="Size of the sub stream (channel 102).")
    sub_fps: int = Field(15, ge=1, le=60, description="Frame rate of the sub stream (channel 102).")
    name_prefix: str = Field("SIM", min_length=1, description="Camera names are '<prefix>-<index:05d>'.")
    ptz_every: int = Field(10, ge=0, description="Every Nth camera (index % N == 0) has PTZ; 0 = none.")
    seed: int = Field(0, description="Seed of the per-camera identity (models, serials, motion phase).")
    event_period_s: float = Field(
        30.0, gt=0, description="Simulated motion switches on/off every this many seconds (phase differs per camera)."
    )
    jpeg_quality: int = Field(85, ge=10, le=100, description="JPEG quality of snapshots.")
    snapshot_cache_mb: int = Field(256, ge=8, description="Memory budget of encoded snapshot frames.")
    idle_timeout_s: float = Field(60.0, gt=0, description="Close HTTP/RTSP connections idle this long.")
    cache_dir: Path = Field(DEFAULT_CACHE_DIR, description="Where decoded frames and H.264 transcodes are cached.")
    ffmpeg: str = Field("/usr/bin/ffmpeg", description="ffmpeg executable used for the one-off transcode.")

    @field_validator("base_address")
    @classmethod
    def _loopback_base(cls, value: str) -> str:
        try:
            address = ipaddress.IPv4Address(value)
        except ValueError as exc:
            raise ValueError(f"base_address {value!r} is not an IPv4 address (e.g. 127.1.0.1)") from exc
        if not address.is_loopback:
            raise ValueError(f"base_address {value!r} must lie in 127.0.0.0/8 so every camera stays on this machine")
        return value

    @field_validator("host_bind")
    @classmethod
    def _bind_reaches_the_cameras(cls, value: str) -> str:
        """The wildcard (one socket hears every 127.x.y.z camera) or a loopback address; any other
        address would start, then reset every connection (only loopback ones reach the lab)."""
        try:
            address = ipaddress.ip_address(value)
        except ValueError as exc:
            raise ValueError(f"host_bind {value!r} is not an IP address (use 0.0.0.0)") from exc
        if not (address.is_unspecified or address.is_loopback):
            raise ValueError(
                f"host_bind {value!r} is neither the wildcard nor loopback: the simulated cameras answer only on "
                "127.0.0.0/8; use 0.0.0.0 (the default) or a 127.x.y.z address"
            )
        return value

    @field_validator("snapshot_size", "stream_size", "sub_size")
    @classmethod
    def _even_size(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and (value[0] < 16 or value[1] < 16 or value[0] % 2 or value[1] % 2):
            raise ValueError(f"size {value} must be even and at least 16x16 (H.264/JPEG 4:2:0)")
        return value

    @model_validator(mode="after")
    def _range_fits(self) -> SimulatorConfig:
        last = int(ipaddress.IPv4Address(self.base_address)) + self.count - 1
        if last > int(ipaddress.IPv4Address("127.255.255.254")):
            raise ValueError(
                f"{self.count} cameras from {self.base_address} run past 127.255.255.254; lower base_address or count"
            )
        if self.rtsp_count > self.count:
            raise ValueError(f"rtsp_count {self.rtsp_count} exceeds count {self.count}")
        return self
