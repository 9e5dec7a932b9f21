"""Errors raised by the camera simulator.

The tree, drawn once::

    SimulatorError                      any failure of the simulator itself
    ├── SimulatorConfigError            a setting is unusable (bad address range, unreadable video, ...)
    ├── VideoSourceError                the video cannot be decoded into frames
    ├── TranscodeError                  ffmpeg failed to produce the H.264 elementary stream
    └── SimulatorStateError             start()/stop() called in the wrong lifecycle state

Faults a *simulated camera* answers (SOAP faults, HTTP 401, closed connections) are not exceptions
of this tree: they are the simulator working as configured. ``SoapFault`` below is the internal
signal a SOAP handler raises to make its camera answer a fault; it never leaves the simulator.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Base class of every error the camera simulator raises."""


class SimulatorConfigError(SimulatorError):
    """A configuration value cannot be used; the message names the field and what to do."""


class VideoSourceError(SimulatorError):
    """The configured video could not be opened or decoded."""


class TranscodeError(SimulatorError):
    """ffmpeg could not transcode the video to an H.264 elementary stream."""


class SimulatorStateError(SimulatorError):
    """A lifecycle method was called in a state that does not allow it."""


class SoapFault(Exception):
    """Raised by a SOAP handler to answer a SOAP 1.2 fault.

    ``code`` is ``"Sender"`` (the client's fault, HTTP 400) or ``"Receiver"`` (the camera's,
    HTTP 500); ``subcodes`` are qualified names in the ``ter`` namespace, outermost first.
    """

    def __init__(self, code: str, subcodes: tuple[str, ...], reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.subcodes = subcodes
        self.reason = reason
