"""The wall's exception tree, drawn once.

::

    WallError (GatewayError)            base of everything the wall raises on purpose
    ├── SourceError                     a camera's stream could not be read
    │   ├── SourceUnavailable           connect/read failed or timed out (network, offline camera)
    │   ├── SourceRefused               the camera refused us (401/403: wrong password)
    │   └── SourceUnsupported           no video track, or a codec we neither pass nor transcode
    ├── NoLiveStream                    the camera has no stream URI on record (HTTP 409)
    ├── CameraAddressRefused            the camera's address (ONVIF host or stream URI host) lies
    │                                   outside security.allowed_networks (HTTP 409)
    ├── RelayNotRunning                 the relay service is not started (HTTP 503)
    ├── CapacityReached                 upstream / session / per-user limit reached (HTTP 503 / 429)
    ├── OfferRejected                   the SDP offer cannot be answered (HTTP 400)
    ├── SessionNotFound                 no viewer session with that id (HTTP 404)
    ├── PtzError                        a PTZ command failed
    │   ├── PtzUnsupported              the camera has no PTZ (HTTP 409)
    │   └── PtzFailed                   the camera did not carry it out (HTTP 502)
    └── SavedWallError                  saved walls could not be read or written (HTTP 500)
        └── SavedWallLimit              more walls and tours than a user may keep (HTTP 422)

Two failures before anything reaches a camera are answered alike on every route of the wall
(WHEP, warm, PTZ), both a conflict between the camera's record and this node's configuration that
a technician must fix, never an upstream failure (502):

* the address is outside ``security.allowed_networks``: ``CameraAddressRefused`` (409);
* the stored password cannot be decrypted (``security.camera_key`` changed): the gateway's own
  ``SecretUnreadable`` (409, as everywhere in the API), its message prefixed with the camera.

A host name that does not resolve is a camera that cannot be reached: ``SourceUnavailable`` for a
stream, ``PtzFailed`` for PTZ (502). Both conversions live in ``xueliang.api.wall.cameras``
(``check_camera_host``, ``camera_password``).

``xueliang.api.errors`` maps them to HTTP answers; messages say what failed, which camera or
session, and what to do.
"""

from __future__ import annotations

from xueliang.gateway.errors import GatewayError


class WallError(GatewayError):
    """Base class of the wall's deliberate errors."""


class SourceError(WallError):
    """A camera's stream could not be read."""


class SourceUnavailable(SourceError):
    """Connecting to or reading from the camera failed or timed out."""


class SourceRefused(SourceError):
    """The camera refused the credentials on record."""


class SourceUnsupported(SourceError):
    """The stream has no video, or a codec we can neither pass through nor transcode."""


class NoLiveStream(WallError):
    """The camera has no stream URI on record."""


class CameraAddressRefused(WallError):
    """The camera's address lies outside ``security.allowed_networks``: the node will not connect."""


class RelayNotRunning(WallError):
    """The relay service is not running (node starting or stopping)."""


class CapacityReached(WallError):
    """A relay or session limit is reached. ``per_user`` tells a user's own limit from the node's."""

    def __init__(self, message: str, *, per_user: bool = False) -> None:
        super().__init__(message)
        self.per_user = per_user


class OfferRejected(WallError):
    """The SDP offer cannot be answered."""


class SessionNotFound(WallError):
    """No viewer session with that id."""


class PtzError(WallError):
    """A PTZ command failed."""


class PtzUnsupported(PtzError):
    """The camera has no PTZ."""


class PtzFailed(PtzError):
    """The camera did not carry out the command."""


class SavedWallError(WallError):
    """Saved walls could not be read or written."""


class SavedWallLimit(SavedWallError):
    """More saved walls and tours than one user may keep."""
