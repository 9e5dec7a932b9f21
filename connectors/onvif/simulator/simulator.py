"""CameraSimulator: one process impersonating many ONVIF cameras (SOAP, snapshots, RTSP)."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

from xueliang.connectors.onvif.simulator.config import SimulatorConfig
from xueliang.connectors.onvif.simulator.control_api import ControlApi
from xueliang.connectors.onvif.simulator.errors import SimulatorStateError
from xueliang.connectors.onvif.simulator.event_service import EventHub
from xueliang.connectors.onvif.simulator.fleet import Fleet, build_cameras
from xueliang.connectors.onvif.simulator.frames import FrameStore, VideoInfo, probe_video
from xueliang.connectors.onvif.simulator.h264 import H264Clip
from xueliang.connectors.onvif.simulator.http_digest import DigestAuthority
from xueliang.connectors.onvif.simulator.http_server import HttpServer
from xueliang.connectors.onvif.simulator.models import SimCamera
from xueliang.connectors.onvif.simulator.router import Router
from xueliang.connectors.onvif.simulator.rtsp_server import RtspServer
from xueliang.connectors.onvif.simulator.soap_context import StreamInfo
from xueliang.connectors.onvif.simulator.soap_endpoint import SoapEndpoint
from xueliang.connectors.onvif.simulator.transcode import EncodeSpec, load_clip

logger = logging.getLogger(__name__)

CPU_WORKERS = 2  # JPEG encodes and the one-off decode; bounded so the event loop keeps a core
REALM = "IP Camera"


class SimulatorState(enum.Enum):
    """Lifecycle of a CameraSimulator."""

    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class CameraSimulator:
    """Many cameras behind one HTTP port and one RTSP port; use ``async with`` or start()/stop()."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.cameras: list[SimCamera] = build_cameras(config)
        self.fleet = Fleet(self.cameras)
        self.state = SimulatorState.CREATED
        self.http_port = 0
        self.rtsp_port = 0
        self.startup_s = 0.0
        self.video_info: VideoInfo | None = None
        self.streams: StreamInfo | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._http: HttpServer | None = None
        self._rtsp: RtspServer | None = None
        self._router: Router | None = None
        self._soap: SoapEndpoint | None = None
        self._events: EventHub | None = None
        self._frames: FrameStore | None = None

    async def __aenter__(self) -> CameraSimulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def camera(self, key: str | int) -> SimCamera:
        """A camera by index or address; KeyError when there is none."""
        camera = self.fleet.lookup(str(key))
        if camera is None:
            raise KeyError(f"no simulated camera {key!r}")
        return camera

    async def start(self) -> None:
        """Probe the video, transcode the RTSP streams if needed and open the listeners."""
        if self.state is not SimulatorState.CREATED:
            raise SimulatorStateError(f"start() needs a new simulator, this one is {self.state.value}")
        self.state = SimulatorState.STARTING
        started = time.monotonic()
        try:
            await self._start()
        except BaseException:
            await self._shutdown()
            self.state = SimulatorState.STOPPED
            raise
        self.startup_s = time.monotonic() - started
        self.state = SimulatorState.RUNNING
        logger.info(
            "camera simulator: %d cameras from %s, HTTP port %d, RTSP port %d (%d streaming), started in %.2f s",
            len(self.cameras), self.config.base_address, self.http_port, self.rtsp_port, self.config.rtsp_count,
            self.startup_s,
        )  # fmt: skip

    async def _start(self) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(max_workers=CPU_WORKERS, thread_name_prefix="camera-sim")
        info = self.video_info = await loop.run_in_executor(self._executor, probe_video, config.video)
        main_size = config.stream_size or (info.width, info.height)
        snapshot_size = config.snapshot_size or (info.width, info.height)
        self.streams = streams = StreamInfo(
            main_size=main_size, main_fps=config.main_fps, sub_size=config.sub_size, sub_fps=config.sub_fps,
            gop_main=config.main_fps, gop_sub=config.sub_fps, snapshot_size=snapshot_size,
        )  # fmt: skip
        clips: dict[str, H264Clip] = {}
        if config.rtsp_count > 0:
            main_spec = EncodeSpec(main_size[0], main_size[1], config.main_fps, config.main_fps)
            sub_spec = EncodeSpec(config.sub_size[0], config.sub_size[1], config.sub_fps, config.sub_fps)
            main, sub = await asyncio.gather(
                load_clip(config.video, main_spec, config.cache_dir, config.ffmpeg),
                load_clip(config.video, sub_spec, config.cache_dir, config.ffmpeg),
            )
            clips = {"101": main, "102": sub}
        self._frames = FrameStore(
            video=config.video, info=info, size=snapshot_size, quality=config.jpeg_quality,
            cache_dir=config.cache_dir, budget_bytes=config.snapshot_cache_mb << 20, executor=self._executor,
        )  # fmt: skip
        self._events = EventHub(config.event_period_s)
        self._soap = SoapEndpoint(config.username, config.password, streams, self._events)
        digest = DigestAuthority(REALM)
        control = ControlApi(self.fleet, lambda: (self.http_port, self.rtsp_port), self.counters)
        self._router = Router(
            fleet=self.fleet, soap=self._soap, frames=self._frames, digest=digest, control=control,
            username=config.username, password=config.password,
        )  # fmt: skip
        self._http = HttpServer(self._router, config.idle_timeout_s)
        self.http_port = await self._http.start(config.host_bind, config.http_port)
        if clips:
            self._rtsp = RtspServer(
                fleet=self.fleet, clips=clips, digest=digest, username=config.username,
                password=config.password, auth=config.rtsp_auth,
            )  # fmt: skip
            self.rtsp_port = await self._rtsp.start(config.host_bind, config.rtsp_port)
        else:
            self.rtsp_port = config.rtsp_port or 554
        self._soap.http_port, self._soap.rtsp_port = self.http_port, self.rtsp_port

    async def preload_snapshots(self) -> None:
        """Decode the clip and encode every snapshot frame now instead of on first requests."""
        if self._frames is None:
            raise SimulatorStateError("start() the simulator first")
        await self._frames.preload()

    async def stop(self) -> None:
        """Close the listeners and every connection and session; idempotent."""
        if self.state in (SimulatorState.STOPPED, SimulatorState.CREATED):
            self.state = SimulatorState.STOPPED
            return
        self.state = SimulatorState.STOPPING
        await self._shutdown()
        self.state = SimulatorState.STOPPED

    async def _shutdown(self) -> None:
        if self._rtsp is not None:
            await self._rtsp.stop()
            self._rtsp = None
        if self._http is not None:
            await self._http.stop()
            self._http = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def counters(self) -> dict[str, Any]:
        """Counters for the control API and benchmarks."""
        out: dict[str, Any] = {"state": self.state.value, "startup_s": round(self.startup_s, 3)}
        if self._http is not None:
            stats = self._http.stats
            out["http"] = {"connections": stats.connections, "open": len(self._http.connections),
                           "requests": stats.requests, "resets": stats.resets, "unanswered": stats.unanswered,
                           "pipeline_overflows": stats.pipeline_overflows}  # fmt: skip
        if self._soap is not None:
            out["soap"] = {"calls": dict(self._soap.calls), "auth_failures": self._soap.auth_failures}
        if self._router is not None:
            out["snapshots"] = {"served": self._router.snapshots, "denied": self._router.snapshot_denied}
        if self._frames is not None:
            out["frames"] = {"encodes": self._frames.encodes, "evictions": self._frames.evictions}
        if self._events is not None:
            out["events"] = {"expired": self._events.expired, "dropped_messages": self._events.dropped_messages}
        if self._rtsp is not None:
            out["rtsp"] = {"connections": len(self._rtsp.connections), "sessions": self._rtsp.sessions_started}
        return out
