"""A small RTSP/1.0 server (RFC 2326) for the streaming cameras, one listener for every address.

Methods: OPTIONS, DESCRIBE (SDP with sprop-parameter-sets, packetization-mode=1), SETUP
(RTP/AVP/TCP interleaved or RTP/AVP unicast UDP), PLAY, PAUSE, TEARDOWN, GET_PARAMETER and
SET_PARAMETER (keep-alive). Paths: ``/Streaming/Channels/101`` (main) and ``/102`` (sub). Digest
authentication with the cameras' credentials when enabled. Camera faults apply: offline resets the
connection, timeout never answers, slow_s delays answers, wrong_password refuses the credentials.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass
from typing import cast

from xueliang.connectors.onvif.simulator.fleet import Fleet
from xueliang.connectors.onvif.simulator.h264 import H264Clip
from xueliang.connectors.onvif.simulator.http_digest import DigestAuthority, Verdict
from xueliang.connectors.onvif.simulator.http_server import is_loopback, reset_transport
from xueliang.connectors.onvif.simulator.models import SimCamera
from xueliang.connectors.onvif.simulator.rtp_sender import RtpSender, TcpTarget, UdpTarget
from xueliang.connectors.onvif.simulator.rtsp_udp import open_udp_pair
from xueliang.connectors.onvif.simulator.soap_endpoint import camera_password

logger = logging.getLogger(__name__)

SESSION_TIMEOUT_S = 60
MAX_QUEUED = 16  # requests waiting behind a slow answer on one connection; more closes it
MAX_REQUEST = 16 << 10
PUBLIC = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
_CHANNEL = re.compile(r"/Streaming/Channels/(\d+)", re.IGNORECASE)
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 454: "Session Not Found",
            455: "Method Not Valid in This State", 461: "Unsupported Transport", 501: "Not Implemented"}  # fmt: skip


@dataclass(slots=True)
class RtspRequest:
    """One parsed RTSP request; header names lower-case."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(slots=True)
class Session:
    """One SETUP'd stream of one connection."""

    id: str
    clip: H264Clip
    target: TcpTarget | UdpTarget
    sender: RtpSender | None = None
    task: asyncio.Task[None] | None = None


class RtspServer:
    """Shared state of every RTSP connection."""

    def __init__(self, *, fleet: Fleet, clips: dict[str, H264Clip], digest: DigestAuthority,
                 username: str, password: str, auth: bool) -> None:  # fmt: skip
        self.fleet, self.clips, self.digest = fleet, clips, digest
        self.username, self.password, self.auth = username, password, auth
        self.connections: set[RtspConnection] = set()
        self.sessions_started = 0
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; return the bound port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: RtspConnection(self), host=host, port=port,
                                                backlog=1024, reuse_address=True)  # fmt: skip
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def stop(self) -> None:
        """Stop listening, end every session and connection."""
        if self._server is not None:
            self._server.close()
            for connection in list(self.connections):
                await connection.shutdown()
            await self._server.wait_closed()
            self._server = None


class RtspConnection(asyncio.Protocol):
    """One RTSP client connection (may carry interleaved RTP back)."""

    def __init__(self, server: RtspServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.camera: SimCamera | None = None
        self.local = self.peer = ""
        self.buffer = bytearray()
        self.sessions: dict[str, Session] = {}
        self.authenticated = False
        self.silent = False
        self.pending: asyncio.Task[None] | None = None
        self.queue: list[RtspRequest] = []
        self.setups: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.transport = transport
        self.local = transport.get_extra_info("sockname")[0]
        self.peer = transport.get_extra_info("peername")[0]
        self.camera = self.server.fleet.by_address(self.local)
        if not is_loopback(self.local) or (self.camera is not None and self.camera.faults.offline):
            reset_transport(transport)
            return
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        for session in list(self.sessions.values()):
            self._end(session)
        if self.pending is not None:
            self.pending.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.buffer:
            if self.buffer[0] == 0x24:  # '$': interleaved RTCP from the client; skip it
                if len(self.buffer) < 4:
                    return
                size = 4 + int.from_bytes(self.buffer[2:4], "big")
                if len(self.buffer) < size:
                    return
                del self.buffer[:size]
                continue
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_REQUEST:
                    self._close()
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            request = self._parse(head)
            length = int(request.headers.get("content-length", "0") or 0) if request else 0
            if len(self.buffer) < end + 4 + length:
                return
            if request is not None:
                request.body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            if request is None:
                self._close()
                return
            self._submit(request)

    @staticmethod
    def _parse(head: str) -> RtspRequest | None:
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("RTSP/"):
            return None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return RtspRequest(parts[0].upper(), parts[1], headers)

    def _submit(self, request: RtspRequest) -> None:
        camera = self.camera
        if self.silent or (camera is not None and camera.faults.timeout):
            self.silent = True
            return
        if (camera is not None and camera.faults.slow_s > 0) or self.pending is not None:
            if len(self.queue) >= MAX_QUEUED:
                self._close()
                return
            self.queue.append(request)
            if self.pending is None:
                self.pending = asyncio.ensure_future(self._drain())
            return
        self._answer(request)

    async def _drain(self) -> None:
        while self.queue and self.transport is not None:
            request = self.queue.pop(0)
            if self.camera is not None and self.camera.faults.slow_s > 0:
                await asyncio.sleep(self.camera.faults.slow_s)
            self._answer(request)
        self.pending = None

    def _reply(self, request: RtspRequest, status: int, headers: list[tuple[str, str]] | None = None,
               body: bytes = b"") -> None:  # fmt: skip
        if self.transport is None or self.transport.is_closing():
            return
        lines = [f"RTSP/1.0 {status} {_REASONS.get(status, 'Error')}", f"CSeq: {request.headers.get('cseq', '0')}",
                 "Server: xueliang-camera-simulator"]  # fmt: skip
        lines += [f"{k}: {v}" for k, v in headers or []]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _answer(self, request: RtspRequest) -> None:
        camera = self.camera
        if camera is None or not camera.has_rtsp:
            self._reply(request, 404)
            return
        if camera.faults.offline:
            if self.transport is not None:
                reset_transport(self.transport)
            return
        method = request.method
        if method == "OPTIONS":
            self._reply(request, 200, [("Public", PUBLIC)])
            return
        if method in ("DESCRIBE", "SETUP", "PLAY") and not self._authorized(request, camera):
            return
        handler = {
            "DESCRIBE": self._describe,
            "SETUP": self._setup,
            "PLAY": self._play,
            "PAUSE": self._pause,
            "TEARDOWN": self._teardown,
            "GET_PARAMETER": self._keepalive,
            "SET_PARAMETER": self._keepalive,
        }.get(method)
        if handler is None:
            self._reply(request, 501)
            return
        handler(request, camera)

    def _authorized(self, request: RtspRequest, camera: SimCamera) -> bool:
        if not self.server.auth or self.authenticated:
            return True
        password = camera_password(camera, self.server.password)
        verdict = self.server.digest.verify(
            request.method, request.headers.get("authorization"), self.server.username, password
        )
        if verdict is Verdict.OK:
            self.authenticated = True
            return True
        challenge = self.server.digest.challenge(stale=verdict is Verdict.STALE)
        self._reply(request, 401, [("WWW-Authenticate", challenge)])
        return False

    def _clip(self, request: RtspRequest) -> tuple[str, H264Clip] | None:
        match = _CHANNEL.search(request.url)
        clip = self.server.clips.get(match.group(1)) if match else None
        if match is None or clip is None:
            self._reply(request, 404)
            return None
        return match.group(1), clip

    def _describe(self, request: RtspRequest, camera: SimCamera) -> None:
        found = self._clip(request)
        if found is None:
            return
        channel, clip = found
        base = f"rtsp://{camera.address}:{self.transport.get_extra_info('sockname')[1] if self.transport else 0}"
        content_base = f"{base}/Streaming/Channels/{channel}/"
        sdp = (
            f"v=0\r\no=- {camera.index + 1} 1 IN IP4 {camera.address}\r\ns=Xueliang camera simulator\r\n"
            f"i={camera.name}\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=control:*\r\na=range:npt=now-\r\n"
            "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
            f"a=fmtp:96 packetization-mode=1;profile-level-id={clip.profile_level_id};"
            f"sprop-parameter-sets={clip.sprop_parameter_sets}\r\n"
            f"a=framerate:{clip.fps}\r\na=x-dimensions:{clip.width},{clip.height}\r\na=control:trackID=1\r\n"
        ).encode()
        self._reply(request, 200, [("Content-Base", content_base), ("Content-Type", "application/sdp")], sdp)

    def _setup(self, request: RtspRequest, camera: SimCamera) -> None:
        found = self._clip(request)
        if found is None or self.transport is None:
            return
        _, clip = found
        spec = request.headers.get("transport", "")
        params = dict(p.partition("=")[::2] for p in spec.split(";"))
        session_id = request.headers.get("session", "").split(";")[0] or secrets.token_hex(8)
        if session_id in self.sessions:
            self._reply(request, 455)
            return
        if "RTP/AVP/TCP" in spec.upper():
            channels = params.get("interleaved", "0-1").split("-")
            try:
                rtp_ch, rtcp_ch = int(channels[0]), int(channels[-1] if len(channels) > 1 else int(channels[0]) + 1)
            except ValueError:
                self._reply(request, 461)
                return
            target: TcpTarget | UdpTarget = TcpTarget(self.transport, rtp_ch, rtcp_ch)
            self.sessions[session_id] = Session(session_id, clip, target)
            self._setup_reply(request, session_id, f"RTP/AVP/TCP;unicast;interleaved={rtp_ch}-{rtcp_ch}")
            return
        if "client_port" not in params:
            self._reply(request, 461)
            return
        task = asyncio.ensure_future(self._setup_udp(request, camera, clip, session_id, params["client_port"]))
        self.setups.add(task)
        task.add_done_callback(self.setups.discard)

    async def _setup_udp(self, request: RtspRequest, camera: SimCamera, clip: H264Clip, session_id: str,
                         client_ports: str) -> None:  # fmt: skip
        try:
            ports = [int(p) for p in client_ports.split("-")]
            rtp_port, rtcp_port = ports[0], ports[-1] if len(ports) > 1 else ports[0] + 1
            rtp, rtcp, server_port = await open_udp_pair(camera.address)
        except (ValueError, OSError) as exc:
            logger.warning("camera %s: UDP SETUP failed: %s", camera.address, exc)
            self._reply(request, 461)
            return
        target = UdpTarget(rtp, rtcp, self.peer, rtp_port, rtcp_port)
        self.sessions[session_id] = Session(session_id, clip, target)
        transport = (f"RTP/AVP;unicast;client_port={rtp_port}-{rtcp_port};"
                     f"server_port={server_port}-{server_port + 1};source={camera.address}")  # fmt: skip
        self._setup_reply(request, session_id, transport)

    def _setup_reply(self, request: RtspRequest, session_id: str, transport: str) -> None:
        self._reply(request, 200, [("Transport", transport), ("Session", f"{session_id};timeout={SESSION_TIMEOUT_S}")])

    def _session(self, request: RtspRequest) -> Session | None:
        session = self.sessions.get(request.headers.get("session", "").split(";")[0])
        if session is None:
            self._reply(request, 454)
        return session

    def _play(self, request: RtspRequest, camera: SimCamera) -> None:
        session = self._session(request)
        if session is None:
            return
        if session.task is None or session.task.done():
            session.sender = RtpSender(session.clip, camera.index, session.target)
            self.server.sessions_started += 1
        sender = session.sender
        assert sender is not None
        track = request.url.rstrip("/")
        self._reply(request, 200, [("Session", session.id), ("Range", "npt=now-"),
                                   ("RTP-Info", f"url={track}/trackID=1;seq={sender.first_seq};"
                                                f"rtptime={sender.first_timestamp}")])  # fmt: skip
        if session.task is None or session.task.done():
            session.task = asyncio.ensure_future(sender.run())

    def _pause(self, request: RtspRequest, camera: SimCamera) -> None:
        session = self._session(request)
        if session is not None:
            if session.task is not None:
                session.task.cancel()
            self._reply(request, 200, [("Session", session.id)])

    def _teardown(self, request: RtspRequest, camera: SimCamera) -> None:
        session = self._session(request)
        if session is not None:
            self._end(session)
            self._reply(request, 200, [("Session", session.id)])

    def _keepalive(self, request: RtspRequest, camera: SimCamera) -> None:
        headers = [("Session", request.headers["session"].split(";")[0])] if "session" in request.headers else []
        self._reply(request, 200, headers)

    def _end(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        if session.task is not None:
            session.task.cancel()
        if isinstance(session.target, UdpTarget):
            session.target.rtp.close()
            session.target.rtcp.close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def shutdown(self) -> None:
        """End every session and close the connection (server stop)."""
        tasks = [s.task for s in self.sessions.values() if s.task is not None]
        tasks.extend(self.setups)
        for setup in self.setups:
            setup.cancel()
        for session in list(self.sessions.values()):
            self._end(session)
        if self.pending is not None:
            self.pending.cancel()
            tasks.append(self.pending)
        self._close()
        await asyncio.gather(*tasks, return_exceptions=True)
