"""The analytics' exception tree, drawn once.

::

    InferenceError                  base of everything ``xueliang.inference`` raises on purpose
    ├── ModelError                  a model file is missing, unreadable, or of an unknown layout;
    │                               the message names the path and the setting to change
    ├── DetectorError               the detector could not serve one request
    │   ├── DetectorNotRunning      detect() before start() / after stop()
    │   └── FrameDropped            the queued frame was dropped by the queue policy (a newer frame
    │                               of the same camera replaced it, or the queue overflowed)
    ├── SourceError                 a frame source could not deliver a frame
    │   ├── SourceUnavailable       cannot connect / refused / stream lost / HTTP error status
    │   ├── SourceTimeout           no answer or no frame within the configured time
    │   ├── SourceAuthFailed        the camera refused the credentials (HTTP 401 after auth)
    │   └── SourceEnded             a finite source (file, folder) has no more frames
    └── CorruptFrame                one frame could not be decoded (bad or truncated JPEG,
                                    decoder error); counted in the source's stats, never fatal

Other modules of the analytics (scheduler, rules, ...) may add their own errors in their own
modules, deriving from :class:`InferenceError`. Every message says what failed, which camera or
file, and what to do. Each carries ``camera_id`` where it is about one camera ("" otherwise).
"""

from __future__ import annotations


class InferenceError(Exception):
    """Base class of the analytics' deliberate errors."""

    def __init__(self, message: str, *, camera_id: str = "") -> None:
        super().__init__(message)
        self.camera_id = camera_id


class ModelError(InferenceError):
    """A model file is missing, unreadable, or its input/output layout is not recognised."""


class DetectorError(InferenceError):
    """The detector could not serve one request."""


class DetectorNotRunning(DetectorError):
    """detect() was called on a detector that is not started (or already stopped)."""


class FrameDropped(DetectorError):
    """The frame was dropped from the detector's input queue by its stated policy."""


class SourceError(InferenceError):
    """A frame source could not deliver a frame."""


class SourceUnavailable(SourceError):
    """The source cannot be reached, refused the request, or lost its stream."""


class SourceTimeout(SourceError):
    """The source gave no answer or no frame within the configured time."""


class SourceAuthFailed(SourceError):
    """The camera refused the credentials."""


class SourceEnded(SourceError):
    """A finite source (video file, image folder) has delivered its last frame."""


class CorruptFrame(InferenceError):
    """One frame could not be decoded (bad or truncated JPEG bytes, decoder error)."""
