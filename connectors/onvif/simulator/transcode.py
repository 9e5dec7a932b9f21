"""Transcode the video once to looping-friendly H.264 (constrained baseline, fixed GOP, in-band SPS/PPS)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from xueliang.connectors.onvif.simulator.errors import TranscodeError
from xueliang.connectors.onvif.simulator.h264 import H264Clip, parse_clip
from xueliang.connectors.onvif.simulator.video_cache import cache_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EncodeSpec:
    """Picture size, frame rate and GOP length of one stream."""

    width: int
    height: int
    fps: int
    gop: int

    @property
    def key(self) -> str:
        """Cache key part describing these settings (bump the version when the command changes)."""
        return f"h264v1-{self.width}x{self.height}-{self.fps}fps-g{self.gop}"


def ffmpeg_command(ffmpeg: str, video: Path, spec: EncodeSpec, output: Path) -> list[str]:
    """The ffmpeg argument list producing an Annex-B constrained-baseline stream."""
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(video), "-an",
        "-vf", f"scale={spec.width}:{spec.height},fps={spec.fps}",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
        "-g", str(spec.gop), "-keyint_min", str(spec.gop), "-sc_threshold", "0", "-bf", "0",
        "-x264-params", "repeat-headers=1", "-threads", "2", "-f", "h264", str(output),
    ]  # fmt: skip


async def load_clip(video: Path, spec: EncodeSpec, cache_dir: Path, ffmpeg: str) -> H264Clip:
    """The clip for ``spec``, transcoded now unless the cache already holds it."""
    target = cache_path(cache_dir, video, spec.key, "h264")
    if not target.exists():
        await _transcode(video, spec, target, ffmpeg)
    try:
        data = target.read_bytes()
        return parse_clip(data, spec.fps, spec.width, spec.height)
    except (OSError, ValueError) as exc:
        target.unlink(missing_ok=True)
        raise TranscodeError(f"cached stream {target} is unusable ({exc}); it was removed, start again") from exc


async def _transcode(video: Path, spec: EncodeSpec, target: Path, ffmpeg: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{id(spec)}.tmp")
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *ffmpeg_command(ffmpeg, video, spec, tmp),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise TranscodeError(f"cannot run {ffmpeg} ({exc}); install ffmpeg (apt-get install ffmpeg)") from exc
    try:
        _, stderr = await process.communicate()
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        tmp.unlink(missing_ok=True)
        raise
    if process.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        tail = stderr.decode(errors="replace").strip()[-400:]
        raise TranscodeError(f"ffmpeg failed on {video} ({spec.key}), exit {process.returncode}: {tail}")
    os.replace(tmp, target)
    logger.info("transcoded %s to %s in %.1f s", video, target.name, time.monotonic() - started)
