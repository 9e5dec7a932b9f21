"""ONVIF camera simulator: one process impersonating many cameras for the demo, tests and labs.

Each camera answers on its own loopback address (``127.1.0.1``, ``127.1.0.2``, ...) on one shared
HTTP port (SOAP services, JPEG snapshots with digest auth, the ``/_sim`` control API) and, for the
first ``rtsp_count`` cameras, one shared RTSP port streaming the video as H.264.

    async with CameraSimulator(SimulatorConfig(count=200, video=Path("vtest.avi"))) as sim:
        sim.cameras[3].faults.offline = True
        ...  # http://127.1.0.1:<sim.http_port>/onvif/device_service

Command line: ``python -m xueliang.connectors.onvif.simulator --help``.
"""

from xueliang.connectors.onvif.simulator.config import SimulatorConfig
from xueliang.connectors.onvif.simulator.errors import (
    SimulatorConfigError,
    SimulatorError,
    SimulatorStateError,
    TranscodeError,
    VideoSourceError,
)
from xueliang.connectors.onvif.simulator.h264 import WALLCLOCK_UUID, read_wallclock_sei
from xueliang.connectors.onvif.simulator.models import Faults, PtzCommand, PtzPreset, PtzState, SimCamera
from xueliang.connectors.onvif.simulator.simulator import CameraSimulator, SimulatorState
from xueliang.connectors.onvif.simulator.wsse import password_digest

__all__ = [
    "WALLCLOCK_UUID",
    "CameraSimulator",
    "Faults",
    "PtzCommand",
    "PtzPreset",
    "PtzState",
    "SimCamera",
    "SimulatorConfig",
    "SimulatorConfigError",
    "SimulatorError",
    "SimulatorState",
    "SimulatorStateError",
    "TranscodeError",
    "VideoSourceError",
    "password_digest",
    "read_wallclock_sei",
]
