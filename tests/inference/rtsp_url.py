"""The RTSP address of a simulated camera's main stream, with its credentials (the RTSP tests' target)."""

from __future__ import annotations

from xueliang.connectors.onvif.simulator import CameraSimulator


def stream_url(sim: CameraSimulator, index: int = 0, password: str | None = None) -> str:
    cfg = sim.config
    address = sim.cameras[index].address
    return f"rtsp://{cfg.username}:{password or cfg.password}@{address}:{sim.rtsp_port}/Streaming/Channels/101"
