"""Media profiles: read them (Media2 when offered, else Media1), their URIs, and pick the two we use."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Literal

from xueliang.connectors.onvif import ns
from xueliang.connectors.onvif.errors import DeviceFault, MalformedResponse, Unsupported
from xueliang.connectors.onvif.models import MediaProfile
from xueliang.connectors.onvif.parsers import parse_media_uri, parse_profiles_media1, parse_profiles_media2
from xueliang.connectors.onvif.soap import SoapChannel
from xueliang.connectors.onvif.urls import SNAPSHOT_SCHEMES, STREAM_SCHEMES, AddressFixer, uri_problem

logger = logging.getLogger(__name__)

MediaVersion = Literal[1, 2]
VIDEO_ENCODINGS = frozenset({"H264", "H265", "MPEG4", "JPEG"})
SUB_STREAM_WORDS = ("sub", "second", "third", "minor", "low")
MIN_ANALYSIS_WIDTH = 640


class MediaReader:
    """Reads profiles and URIs from one camera's Media (1) or Media2 service."""

    def __init__(self, channel: SoapChannel, xaddr: str, version: MediaVersion, fixer: AddressFixer) -> None:
        self._channel = channel
        self.xaddr = xaddr
        self.version: MediaVersion = version
        self._fixer = fixer

    async def profiles(self) -> list[MediaProfile]:
        if self.version == 2:
            answer = await self._channel.call_plain(ns.MEDIA2, "GetProfiles", [("Type", "All")], self.xaddr)
            return self._channel.read("GetProfiles", parse_profiles_media2, answer)
        answer = await self._channel.call("media", "GetProfiles", {}, self.xaddr)
        return self._channel.read("GetProfiles", parse_profiles_media1, answer)

    async def stream_uri(self, token: str) -> str:
        """The profile's RTSP URI; "" when the camera refuses it for this profile or gives one that
        cannot be used (relative, not RTSP, not a URI: logged)."""
        try:
            if self.version == 2:
                answer = await self._channel.call_plain(
                    ns.MEDIA2, "GetStreamUri", [("Protocol", "RTSP"), ("ProfileToken", token)], self.xaddr
                )
            else:
                setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
                answer = await self._channel.call(
                    "media", "GetStreamUri", {"StreamSetup": setup, "ProfileToken": token}, self.xaddr
                )
        except (DeviceFault, Unsupported) as exc:
            logger.warning("camera %s: no stream URI for profile %s: %s", self._channel.camera, token, exc.detail)
            return ""
        uri = self._channel.read("GetStreamUri", parse_media_uri, answer)
        problem = uri_problem(uri, STREAM_SCHEMES)
        if problem is not None:  # like a refusal: this profile has no stream, the others may
            logger.warning("camera %s: stream URI of profile %s unusable: %s", self._channel.camera, token, problem)
            return ""
        return self._fixer.stream(uri)

    async def snapshot_uri(self, token: str) -> str:
        """The profile's JPEG snapshot URI; "" when the camera has none (many do not: that is fine)."""
        try:
            if self.version == 2:
                answer = await self._channel.call_plain(
                    ns.MEDIA2, "GetSnapshotUri", [("ProfileToken", token)], self.xaddr
                )
            else:
                answer = await self._channel.call("media", "GetSnapshotUri", {"ProfileToken": token}, self.xaddr)
            uri = self._channel.read("GetSnapshotUri", parse_media_uri, answer)
        except (DeviceFault, Unsupported) as exc:
            logger.info("camera %s: no snapshot URI for profile %s: %s", self._channel.camera, token, exc.detail)
            return ""
        except MalformedResponse as exc:  # snapshots are optional: a broken answer must not fail the probe
            logger.warning(
                "camera %s: snapshot URI of profile %s unreadable, going on without: %s",
                self._channel.camera,
                token,
                exc.detail,
            )
            return ""
        problem = uri_problem(uri, SNAPSHOT_SCHEMES)
        if problem is not None:
            logger.warning(
                "camera %s: snapshot URI of profile %s unusable, going on without: %s",
                self._channel.camera,
                token,
                problem,
            )
            return ""
        return self._fixer.service(uri)


def mark_sub_streams(profiles: Sequence[MediaProfile]) -> list[MediaProfile]:
    """Flag sub-streams: a smaller video encoding of the same source, or a name that says so."""
    largest: dict[str, int] = {}
    for profile in profiles:
        if profile.encoding in VIDEO_ENCODINGS:
            area = profile.width * profile.height
            largest[profile.video_source] = max(largest.get(profile.video_source, 0), area)
    marked = []
    for profile in profiles:
        smaller = profile.encoding in VIDEO_ENCODINGS and profile.width * profile.height < largest[profile.video_source]
        named = any(word in profile.name.lower() for word in SUB_STREAM_WORDS)
        marked.append(dataclasses.replace(profile, is_sub_stream=smaller or named))
    return marked


def choose_profiles(profiles: Sequence[MediaProfile]) -> tuple[str, str]:
    """(analysis token, live token).

    Live: the main H.264 stream (largest H.264; else the largest video profile; else the first).
    Analysis: a sub-stream is cheaper to decode, so the smallest H.264 sub-stream at least
    640 px wide; else the live one.
    """
    if not profiles:
        return "", ""
    h264 = [p for p in profiles if p.encoding == "H264"]
    video = [p for p in profiles if p.encoding in VIDEO_ENCODINGS]
    candidates = h264 or video or list(profiles)
    live = max(candidates, key=lambda p: (p.width * p.height, not p.is_sub_stream))  # max keeps the first of ties
    subs = [p for p in h264 if p.is_sub_stream and p.width >= MIN_ANALYSIS_WIDTH]
    analysis = min(subs, key=lambda p: p.width * p.height) if subs else live
    return analysis.token, live.token
