"""Camera management's exception tree, drawn once.

::

    GatewayError (xueliang.gateway.errors)
    └── CameraError                 a camera cannot be provisioned or changed as asked
        ├── CameraAddressError      the camera's address cannot be used at all
        │   ├── AddressNotAllowed   it lies (or its name resolves) outside security.allowed_networks
        │   └── AddressUnresolvable the host name does not resolve
        ├── ImportFileError         a camera list as a whole cannot be read (format, encoding, header)
        └── ImportQueueFull         too many import jobs are waiting already (HTTP 429)

Errors talking to the camera itself are the connector's (``xueliang.connectors.onvif.errors``);
provisioning does not raise them: a camera that does not answer is still registered, with the
status the error implies (see :mod:`xueliang.gateway.cameras.mapping`). Store errors
(``NotFound``, ``Conflict``, ``StoreUnavailable``) pass through unchanged.
"""

from __future__ import annotations

from xueliang.gateway.errors import GatewayError


class CameraError(GatewayError):
    """A camera cannot be provisioned or changed as asked."""


class CameraAddressError(CameraError):
    """The camera's address cannot be used; ``host`` is the address as given."""

    def __init__(self, host: str, message: str) -> None:
        self.host = host
        super().__init__(message)


class AddressNotAllowed(CameraAddressError):
    """The address lies outside ``security.allowed_networks``."""


class AddressUnresolvable(CameraAddressError):
    """The host name does not resolve to any address."""


class ImportFileError(CameraError, ValueError):
    """The camera list as a whole cannot be read (format, encoding, no address column)."""


class ImportQueueFull(CameraError):
    """Too many import jobs wait already; try again when the running one has finished."""
