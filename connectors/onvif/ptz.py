"""PTZ operations on one camera's PTZ service (ONVIF PTZ 2.0)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from xueliang.connectors.onvif.models import PtzPreset
from xueliang.connectors.onvif.parsers import parse_presets
from xueliang.connectors.onvif.soap import SoapChannel


def _velocity(name: str, value: float) -> float:
    if not math.isfinite(value) or not -1.0 <= value <= 1.0:
        raise ValueError(f"PTZ {name} speed must be between -1 and 1 (generic velocity space), got {value!r}")
    return float(value)


class PtzControl:
    """Moves and presets; every method takes the media profile token the PTZ node is bound to."""

    def __init__(self, channel: SoapChannel, xaddr: str) -> None:
        self._channel = channel
        self.xaddr = xaddr

    async def continuous_move(
        self, profile: str, pan: float = 0.0, tilt: float = 0.0, zoom: float = 0.0, timeout_s: float | None = None
    ) -> None:
        """Move at the given speeds (-1..1) until :meth:`stop` or, when given, ``timeout_s`` elapses."""
        velocity: dict[str, Any] = {}
        if pan or tilt:
            velocity["PanTilt"] = {"x": _velocity("pan", pan), "y": _velocity("tilt", tilt)}
        if zoom:
            velocity["Zoom"] = {"x": _velocity("zoom", zoom)}
        if not velocity:
            raise ValueError("continuous_move needs a non-zero pan, tilt or zoom speed; use stop() to halt")
        params: dict[str, Any] = {"ProfileToken": profile, "Velocity": velocity}
        if timeout_s is not None:
            if timeout_s <= 0:
                raise ValueError(f"PTZ move timeout must be positive, got {timeout_s!r}")
            params["Timeout"] = timedelta(seconds=timeout_s)
        await self._channel.call_optional("ptz", "ContinuousMove", params, self.xaddr)

    async def stop(self, profile: str, *, pan_tilt: bool = True, zoom: bool = True) -> None:
        await self._channel.call_optional(
            "ptz", "Stop", {"ProfileToken": profile, "PanTilt": pan_tilt, "Zoom": zoom}, self.xaddr
        )

    async def goto_preset(self, profile: str, preset: str) -> None:
        await self._channel.call_optional(
            "ptz", "GotoPreset", {"ProfileToken": profile, "PresetToken": preset}, self.xaddr
        )

    async def get_presets(self, profile: str) -> list[PtzPreset]:
        answer = await self._channel.call("ptz", "GetPresets", {"ProfileToken": profile}, self.xaddr)
        return self._channel.read("GetPresets", parse_presets, answer)
