"""Send one camera's looping H.264 clip as RTP in real time, over RTSP-interleaved TCP or UDP.

Each session starts at a keyframe near the camera's own position in the clip (the same offset
as its snapshots), stamps every access unit with a wall-clock SEI, sets the marker bit on the
last packet of each access unit and sends an RTCP sender report every second. When a TCP client
stops reading and more than ``MAX_TCP_BACKLOG`` bytes wait in the socket, frames are dropped
until the next keyframe (counted in ``frames_dropped``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from dataclasses import dataclass

from xueliang.connectors.onvif.simulator.frames import clip_position
from xueliang.connectors.onvif.simulator.h264 import H264Clip, wallclock_sei

logger = logging.getLogger(__name__)

PAYLOAD_TYPE = 96
CLOCK_RATE = 90_000
MAX_TCP_BACKLOG = 2 << 20
NTP_EPOCH_OFFSET = 2_208_988_800


@dataclass(slots=True)
class TcpTarget:
    """RTP and RTCP go back over the RTSP connection on two interleaved channels."""

    transport: asyncio.Transport
    rtp_channel: int
    rtcp_channel: int


@dataclass(slots=True)
class UdpTarget:
    """RTP and RTCP go to the client's ports from the camera's own pair of UDP sockets."""

    rtp: asyncio.DatagramTransport
    rtcp: asyncio.DatagramTransport
    client_host: str
    client_rtp_port: int
    client_rtcp_port: int


@dataclass(slots=True)
class RtpCounters:
    """What one session sent."""

    packets: int = 0
    octets: int = 0
    frames: int = 0
    frames_dropped: int = 0


def start_index(clip: H264Clip, camera_index: int, now: float) -> int:
    """The keyframe at or before camera ``camera_index``'s position in the clip at wall time ``now``."""
    return clip.keyframe_at_or_before(clip_position(camera_index, now, clip.fps, len(clip.units)))


class RtpSender:
    """Paces the clip and writes RTP/RTCP packets for one session."""

    def __init__(self, clip: H264Clip, camera_index: int, target: TcpTarget | UdpTarget) -> None:
        self.clip = clip
        self.camera_index = camera_index
        self.target = target
        self.ssrc = random.getrandbits(32)
        self.first_seq = random.getrandbits(16)
        self.first_timestamp = random.getrandbits(32)
        self.counters = RtpCounters()
        self._seq = self.first_seq

    def _rtp(self, payload: bytes, timestamp: int, marker: bool) -> bytes:
        header = struct.pack(
            "!BBHII", 0x80, PAYLOAD_TYPE | (0x80 if marker else 0), self._seq & 0xFFFF, timestamp, self.ssrc
        )
        self._seq += 1
        return header + payload

    def _sender_report(self, timestamp: int) -> bytes:
        now = time.time()
        seconds = int(now) + NTP_EPOCH_OFFSET
        fraction = int((now % 1.0) * (1 << 32)) & 0xFFFFFFFF
        return struct.pack(
            "!BBHIIIIII", 0x80, 200, 6, self.ssrc, seconds & 0xFFFFFFFF, fraction, timestamp,
            self.counters.packets & 0xFFFFFFFF, self.counters.octets & 0xFFFFFFFF,
        )  # fmt: skip

    def _send(self, packets: list[bytes], rtcp: bytes | None) -> bool:
        """Write the packets of one access unit; False when the TCP client is too far behind."""
        target = self.target
        if isinstance(target, TcpTarget):
            if target.transport.is_closing():
                raise ConnectionError("RTSP connection closed")
            if target.transport.get_write_buffer_size() > MAX_TCP_BACKLOG:
                return False
            chunks = [struct.pack("!cBH", b"$", target.rtcp_channel, len(rtcp)) + rtcp] if rtcp is not None else []
            chunks.extend(struct.pack("!cBH", b"$", target.rtp_channel, len(p)) + p for p in packets)
            target.transport.write(b"".join(chunks))
        else:
            for packet in packets:
                target.rtp.sendto(packet, (target.client_host, target.client_rtp_port))
            if rtcp is not None:
                target.rtcp.sendto(rtcp, (target.client_host, target.client_rtcp_port))
        return True

    async def run(self) -> None:
        """Send until cancelled or until the connection goes away."""
        clip, loop = self.clip, asyncio.get_running_loop()
        count = len(clip.units)
        index = start_index(clip, self.camera_index, time.time())
        ticks_per_frame = CLOCK_RATE / clip.fps
        started = loop.time()
        sent = 0
        waiting_for_key = False
        try:
            while True:
                unit = clip.units[index % count]
                timestamp = (self.first_timestamp + int(sent * ticks_per_frame)) & 0xFFFFFFFF
                if waiting_for_key and not unit.keyframe:
                    self.counters.frames_dropped += 1
                else:
                    sei = wallclock_sei(time.time_ns() // 1000)
                    payloads = [*unit.payloads[: unit.sei_at], sei, *unit.payloads[unit.sei_at :]]
                    last = len(payloads) - 1
                    packets = [self._rtp(p, timestamp, i == last) for i, p in enumerate(payloads)]
                    rtcp = self._sender_report(timestamp) if sent % clip.fps == 0 else None
                    if self._send(packets, rtcp):
                        waiting_for_key = False
                        self.counters.frames += 1
                        self.counters.packets += len(packets)
                        self.counters.octets += sum(len(p) - 12 for p in packets)
                    else:
                        self._seq -= len(packets)
                        waiting_for_key = True
                        self.counters.frames_dropped += 1
                index += 1
                sent += 1
                delay = started + sent / clip.fps - loop.time()
                await asyncio.sleep(max(0.0, delay))
        except ConnectionError as exc:
            logger.debug("camera %s: RTP session ended: %s", self.camera_index, exc)
