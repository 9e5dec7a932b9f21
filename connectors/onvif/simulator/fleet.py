"""Build the simulated cameras from the configuration and find them by address."""

from __future__ import annotations

import ipaddress
import random

from xueliang.connectors.onvif.simulator.config import SimulatorConfig
from xueliang.connectors.onvif.simulator.models import PtzPreset, PtzState, SimCamera

# (manufacturer, model, firmware) of fixed cameras and of PTZ domes; picked per camera by the seed.
FIXED_MODELS: tuple[tuple[str, str, str], ...] = (
    ("HIKVISION", "DS-2CD2T47G2-L", "V5.7.3 build 220112"),
    ("HIKVISION", "DS-2CD3T86FWDV2-I3S", "V5.6.5 build 210611"),
    ("Dahua", "IPC-HFW2431S-S-S2", "V2.800.0000000.25.R"),
    ("UNIVIEW", "IPC2124SR3-APF40", "IPC_D1201-B0004P12D1711"),
)
PTZ_MODELS: tuple[tuple[str, str, str], ...] = (
    ("HIKVISION", "DS-2DF7276-AEL", "V5.1.6 build 140401"),
    ("Dahua", "SD49425XB-HNR", "V2.623.0000000.9.R"),
)
DEFAULT_PRESETS = (
    ("1", "大门 Gate", -0.5, 0.1, 0.0),
    ("2", "广场 Square", 0.3, -0.2, 0.25),
    ("3", "路口 Crossing", 0.8, 0.0, 0.5),
)


def build_cameras(config: SimulatorConfig) -> list[SimCamera]:
    """Create ``config.count`` cameras with deterministic identities derived from ``config.seed``."""
    rng = random.Random(config.seed)
    base = int(ipaddress.IPv4Address(config.base_address))
    cameras: list[SimCamera] = []
    for index in range(config.count):
        has_ptz = config.ptz_every > 0 and index % config.ptz_every == 0
        manufacturer, model, firmware = rng.choice(PTZ_MODELS if has_ptz else FIXED_MODELS)
        suffix = rng.getrandbits(40)
        ptz = None
        if has_ptz:
            ptz = PtzState(presets={t: PtzPreset(t, n, p, ti, z) for t, n, p, ti, z in DEFAULT_PRESETS})
        cameras.append(
            SimCamera(
                index=index,
                address=str(ipaddress.IPv4Address(base + index)),
                name=f"{config.name_prefix}-{index:05d}",
                serial=f"{model.split('-')[0]}{index:06d}{suffix:010X}",
                manufacturer=manufacturer,
                model=model,
                firmware=firmware,
                hardware_id=f"{88 + index % 7}",
                mac=f"02:58:4c:{(index >> 16) & 0xFF:02x}:{(index >> 8) & 0xFF:02x}:{index & 0xFF:02x}",
                has_rtsp=index < config.rtsp_count,
                motion_phase_s=rng.uniform(0.0, 2 * config.event_period_s),
                ptz=ptz,
            )
        )
    return cameras


class Fleet:
    """All cameras of one simulator, indexed by address and by index."""

    def __init__(self, cameras: list[SimCamera]) -> None:
        self.cameras = cameras
        self._by_address = {camera.address: camera for camera in cameras}

    def by_address(self, address: str) -> SimCamera | None:
        """The camera answering on ``address``, or None for any other address."""
        return self._by_address.get(address)

    def lookup(self, key: str) -> SimCamera | None:
        """Find a camera by address or by decimal index (control API)."""
        if key.isdigit():
            index = int(key)
            return self.cameras[index] if index < len(self.cameras) else None
        return self._by_address.get(key)
