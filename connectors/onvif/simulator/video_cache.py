"""Where the simulator keeps derived video files: keys built from the video's content hash."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from xueliang.connectors.onvif.simulator.errors import SimulatorConfigError

_HASHES: dict[tuple[str, int, int], str] = {}


def video_digest(video: Path) -> str:
    """sha256 of the video file (memoised per path, size and mtime)."""
    try:
        stat = video.stat()
    except OSError as exc:
        raise SimulatorConfigError(f"video {video} cannot be read: {exc}; pass an existing file") from exc
    key = (str(video), stat.st_size, stat.st_mtime_ns)
    digest = _HASHES.get(key)
    if digest is None:
        hasher = hashlib.sha256()
        with video.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(block)
        digest = _HASHES[key] = hasher.hexdigest()
    return digest


def cache_path(cache_dir: Path, video: Path, kind: str, suffix: str) -> Path:
    """``<cache_dir>/<kind>-<sha16>.<suffix>`` for a derived file of ``video``."""
    return cache_dir / f"{kind}-{video_digest(video)[:16]}.{suffix}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename (concurrent writers are safe)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
