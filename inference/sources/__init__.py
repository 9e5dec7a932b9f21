"""Frame sources: ONVIF snapshots over HTTP, RTSP streams, video files and image folders.

Public API::

    from xueliang.inference.sources import SnapshotClient, RtspSource, FileSource, FrameSource
    async with SnapshotClient(settings.inference.sources, target_size=detector.input_size) as snaps:
        frame = await snaps.source("cam-1", snapshot_uri, username=user, password=pw).read()
"""

from xueliang.inference.sources.base import FrameSource, SourceState, SourceStats, paced
from xueliang.inference.sources.file import FileSource
from xueliang.inference.sources.rtsp import RtspSource
from xueliang.inference.sources.snapshot import SnapshotClient, SnapshotSource

__all__ = [
    "FileSource",
    "FrameSource",
    "RtspSource",
    "SnapshotClient",
    "SnapshotSource",
    "SourceState",
    "SourceStats",
    "paced",
]
