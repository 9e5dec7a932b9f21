"""An aiortc viewer speaking WHEP to the gateway, and a bounded wait for conditions."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import av
import httpx
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


@dataclass
class Decoded:
    pts: int
    at: float
    width: int
    height: int


@dataclass
class WhepViewer:
    """One aiortc peer watching one camera: POSTs its offer, keeps every decoded frame's pts."""

    base_url: str
    token: str
    camera_id: str
    frames: list[Decoded] = field(default_factory=list)
    location: str = ""
    status: int = 0
    started_at: float = 0.0
    pc: RTCPeerConnection | None = None
    _consumer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        pc = self.pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="recvonly")

        @pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            self._consumer = asyncio.create_task(self._consume(track))

        await pc.setLocalDescription(await pc.createOffer())
        self.started_at = time.monotonic()
        async with httpx.AsyncClient(base_url=self.base_url, timeout=20) as client:
            response = await client.post(
                f"/api/wall/whep/{self.camera_id}",
                content=pc.localDescription.sdp,
                headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {self.token}"},
            )
        self.status = response.status_code
        if response.status_code != 201:
            await pc.close()
            raise AssertionError(f"WHEP POST for {self.camera_id}: {response.status_code} {response.text}")
        self.location = response.headers["location"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.VideoFrame)
                self.frames.append(Decoded(int(frame.pts or 0), time.monotonic(), frame.width, frame.height))

    async def stop(self, *, delete: bool = True) -> int:
        status = 0
        if delete and self.location:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
                response = await client.delete(self.location, headers={"Authorization": f"Bearer {self.token}"})
                status = response.status_code
        if self.pc is not None:
            await self.pc.close()
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        return status
