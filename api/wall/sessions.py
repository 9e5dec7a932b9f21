"""Viewer sessions: one aiortc peer connection per (operator, tile), answering a WHEP offer.

The gateway is the answerer. H.264 is forced on the transceiver with ``setCodecPreferences``
*before* ``setRemoteDescription``: otherwise aiortc picks the browser's first codec (VP8) and
would send our H.264 bytes labelled as VP8, which nothing decodes. ICE is not trickled: aiortc
gathers its candidates before the answer leaves, and the page waits for its own before offering.

``Sessions.run()`` is a node service: it closes sessions whose peer failed, closed or never
connected within ``connect_timeout_s``, and closes every session when the node stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import time
from dataclasses import dataclass, field

from aiortc import (
    InvalidAccessError,
    InvalidStateError,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.exceptions import OperationError

from xueliang.api.wall.errors import CapacityReached, OfferRejected, SessionNotFound
from xueliang.api.wall.models import SourceSpec
from xueliang.api.wall.relay import Relay
from xueliang.api.wall.viewer import ViewerTrack
from xueliang.gateway.wall_settings import WallSettings

log = logging.getLogger(__name__)

REAP_TICK_S = 0.5
CLOSED_STATES = frozenset({"failed", "closed"})
# What aiortc raises on an offer it cannot parse or answer: its SDP parser fails with ValueError,
# AssertionError, KeyError (an unknown a=setup), IndexError; applying it with OperationError (no
# codec we can send, e.g. H.264 packetization-mode 0 only), AttributeError (a repeated m-line),
# InvalidAccessError / InvalidStateError. All are a bad offer (400), never our failure (500).
OFFER_ERRORS = (
    ValueError,
    AssertionError,
    KeyError,
    IndexError,
    AttributeError,
    OperationError,
    InvalidAccessError,
    InvalidStateError,
)


@dataclass(slots=True)
class ViewerSession:
    id: str
    camera_id: str
    owner: str
    pc: RTCPeerConnection
    track: ViewerTrack
    created: float = field(default_factory=time.monotonic)
    connected: bool = False
    closing: bool = False


def h264_preferences() -> list[RTCRtpCodecCapability]:
    """aiortc's H.264 codecs (packetization-mode 1) and their RTX companions, nothing else."""
    codecs = RTCRtpSender.getCapabilities("video").codecs
    return [c for c in codecs if c.mimeType.lower() in ("video/h264", "video/rtx")]


def route_keyframe_requests(sender: RTCRtpSender, track: ViewerTrack) -> None:
    """aiortc answers PLI/FIR by asking its encoder for a keyframe (``_send_keyframe``); a relayed
    track has no encoder, so hand the request to the track, which replays its cached GOP."""
    if callable(getattr(sender, "_send_keyframe", None)):
        sender._send_keyframe = track.request_keyframe  # type: ignore[method-assign]


def filter_candidates(sdp: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    """Drop host candidates outside ``networks`` from an SDP (server-reflexive and relay ones stay)."""
    if not networks:
        return sdp
    kept = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) > 7 and parts[7] == "host":
                try:
                    address = ipaddress.ip_address(parts[4])
                except ValueError:
                    address = None
                if address is None or not any(address in net for net in networks):
                    continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"


class Sessions:
    def __init__(self, relay: Relay, settings: WallSettings) -> None:
        self.relay = relay
        self.settings = settings
        self._sessions: dict[str, ViewerSession] = {}
        self._opening: dict[str, int] = {}  # owner -> offers being answered (they count against the limits)
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> ViewerSession:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise SessionNotFound(f"no viewer session {session_id!r}: it ended or never existed") from None

    def owned_by(self, owner: str) -> int:
        """Sessions of ``owner``, counting the offers of theirs being answered right now."""
        return sum(1 for s in self._sessions.values() if s.owner == owner) + self._opening.get(owner, 0)

    def _configuration(self) -> RTCConfiguration:
        servers = [
            RTCIceServer(
                urls=server.urls,
                username=server.username or None,
                credential=server.credential.get_secret_value() or None,
            )
            for server in self.settings.ice_servers
        ]
        return RTCConfiguration(iceServers=servers or None)

    async def open(self, spec: SourceSpec, offer_sdp: str, owner: str) -> tuple[ViewerSession, str]:
        """Answer ``offer_sdp`` with a session streaming ``spec``'s camera; returns (session, answer SDP).

        The limits count offers still being answered: concurrent offers cannot pass them."""
        if len(self._sessions) + sum(self._opening.values()) >= self.settings.max_sessions:
            raise CapacityReached(
                f"this node serves {len(self._sessions)} viewer sessions (wall.max_sessions); try again later"
            )
        if self.owned_by(owner) >= self.settings.max_sessions_per_user:
            raise CapacityReached(
                f"user {owner} holds {self.settings.max_sessions_per_user} viewer sessions "
                "(wall.max_sessions_per_user): close tiles or other wall pages first",
                per_user=True,
            )
        if "m=video" not in offer_sdp:
            raise OfferRejected("the SDP offer has no video section: offer one recvonly video transceiver")
        if "h264" not in offer_sdp.lower():
            raise OfferRejected("the browser offers no H.264: the wall needs a browser with H.264 WebRTC support")
        self._opening[owner] = self._opening.get(owner, 0) + 1
        try:
            return await self._answer(spec, offer_sdp, owner)
        finally:
            self._opening[owner] -= 1
            if not self._opening[owner]:
                del self._opening[owner]

    async def _answer(self, spec: SourceSpec, offer_sdp: str, owner: str) -> tuple[ViewerSession, str]:
        track = self.relay.attach(spec)
        pc = RTCPeerConnection(self._configuration())
        session = ViewerSession(secrets.token_urlsafe(12), spec.camera_id, owner, pc, track)
        try:
            transceiver = pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(h264_preferences())
            route_keyframe_requests(transceiver.sender, track)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except OFFER_ERRORS as exc:  # aiortc: malformed or incompatible SDP
            await self._dispose(session)
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise OfferRejected(
                f"camera {spec.camera_id}: cannot answer the SDP offer ({why}): send an unmodified browser "
                "offer with one recvonly video section and H.264 packetization-mode=1"
            ) from exc
        except BaseException:
            await self._dispose(session)
            raise

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState == "connected" and not session.connected:
                session.connected = True
                log.info("camera %s: viewer session %s of %s connected", spec.camera_id, session.id, owner)
            self._changed.set()

        self._sessions[session.id] = session
        log.info("camera %s: viewer session %s opened for %s", spec.camera_id, session.id, owner)
        answer = filter_candidates(pc.localDescription.sdp, self.settings.host_candidate_networks)
        return session, answer

    async def close(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            raise SessionNotFound(f"no viewer session {session_id!r}: it ended or never existed")
        await self._dispose(session)
        log.info("camera %s: viewer session %s of %s closed", session.camera_id, session.id, session.owner)

    async def _dispose(self, session: ViewerSession) -> None:
        session.closing = True
        session.track.stop()
        await session.pc.close()

    async def run(self) -> None:
        """Reap dead sessions until cancelled; then close them all."""
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(REAP_TICK_S):
                        await self._changed.wait()
                self._changed.clear()
                await self._reap()
        finally:
            sessions, self._sessions = list(self._sessions.values()), {}
            for session in sessions:
                await self._dispose(session)

    async def _reap(self) -> None:
        now = time.monotonic()
        for session in list(self._sessions.values()):
            state = session.pc.connectionState
            late = not session.connected and now - session.created > self.settings.connect_timeout_s
            if state in CLOSED_STATES or late:
                why = "never connected" if late else state
                log.info("camera %s: viewer session %s %s, closing it", session.camera_id, session.id, why)
                await self.close(session.id)
