"""Records of the simulator: one simulated camera, its fault switches and its PTZ state."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

PTZ_LOG_LIMIT = 256  # received PTZ commands kept per camera; older ones are dropped (counted)


class Faults(BaseModel):
    """Fault switches of one camera; mutable at run time (Python API or the /_sim control API)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    wrong_password: bool = Field(False, description="The camera expects another password (SOAP, snapshot, RTSP).")
    clock_skew_s: float = Field(0.0, description="The camera's clock runs this many seconds ahead of UTC.")
    timeout: bool = Field(False, description="Accept requests but never answer them.")
    slow_s: float = Field(0.0, ge=0, le=3600, description="Delay every answer by this many seconds.")
    malformed_xml: bool = Field(False, description="Answer SOAP calls with truncated, unparsable XML.")
    soap_fault: bool = Field(False, description="Answer every SOAP call with a SOAP fault.")
    no_get_services: bool = Field(False, description="GetServices answers ActionNotSupported (like some Axis).")
    no_snapshot: bool = Field(False, description="GetSnapshotUri faults and the snapshot URL answers 404.")
    offline: bool = Field(False, description="Reset every connection at once (device unreachable).")

    def any_active(self) -> bool:
        """True when at least one switch differs from a healthy camera."""
        return self != Faults()


@dataclass(slots=True)
class PtzCommand:
    """One PTZ request the camera received, as logged for tests and technicians."""

    at: float  # wall-clock seconds
    operation: str  # ContinuousMove, Stop, AbsoluteMove, RelativeMove, GotoPreset, GotoHomePosition, SetPreset
    profile_token: str
    pan: float | None = None
    tilt: float | None = None
    zoom: float | None = None
    preset_token: str | None = None
    timeout_s: float | None = None


@dataclass(slots=True)
class PtzPreset:
    """A stored PTZ position."""

    token: str
    name: str
    pan: float
    tilt: float
    zoom: float


@dataclass(slots=True)
class PtzState:
    """Where the head points and how it moves; positions in the ONVIF generic spaces.

    While a continuous move runs, the position is ``pan/tilt/zoom`` plus velocity times the time
    elapsed since ``move_started`` (until ``move_until``), clamped to the limits.
    """

    pan: float = 0.0  # -1 .. 1
    tilt: float = 0.0  # -1 .. 1
    zoom: float = 0.0  # 0 .. 1
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    move_started: float = 0.0  # monotonic seconds
    move_until: float = 0.0  # monotonic seconds; 0 = no move
    presets: dict[str, PtzPreset] = field(default_factory=dict)
    commands: deque[PtzCommand] = field(default_factory=lambda: deque(maxlen=PTZ_LOG_LIMIT))
    commands_dropped: int = 0

    @property
    def last_move(self) -> str:
        """The operation of the last PTZ command received ("" before the first)."""
        return self.commands[-1].operation if self.commands else ""


@dataclass(slots=True)
class SimCamera:
    """One simulated camera: identity, network address, PTZ and fault switches."""

    index: int
    address: str
    name: str
    serial: str
    manufacturer: str
    model: str
    firmware: str
    hardware_id: str
    mac: str
    has_rtsp: bool
    motion_phase_s: float
    ptz: PtzState | None = None
    faults: Faults = field(default_factory=Faults)

    @property
    def has_ptz(self) -> bool:
        """Whether this camera exposes the PTZ service."""
        return self.ptz is not None
