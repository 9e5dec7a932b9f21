"""What a SOAP handler gets to answer one request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from xueliang.connectors.onvif.simulator.models import SimCamera
from xueliang.connectors.onvif.simulator.soap_request import SoapRequest


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What the camera's two encoder profiles report (and the RTSP streams really carry)."""

    main_size: tuple[int, int]
    main_fps: int
    sub_size: tuple[int, int]
    sub_fps: int
    gop_main: int
    gop_sub: int
    snapshot_size: tuple[int, int]


@dataclass(slots=True)
class SoapContext:
    """One SOAP call: the camera, the parsed request and where its services live."""

    camera: SimCamera
    request: SoapRequest
    path: str
    http_base: str  # http://<camera address>:<http port>
    rtsp_base: str  # rtsp://<camera address>:<rtsp port>
    now: dt.datetime  # the camera's clock (UTC plus its skew)
    streams: StreamInfo


SoapHandler = Callable[[SoapContext], "str | Awaitable[str]"]
