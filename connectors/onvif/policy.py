"""Where the ONVIF connector may connect: the address policy of its HTTP session.

Cameras are untrusted: every address a camera gives (service XAddrs, the PullPoint subscription
address, snapshot URIs) and every host name it is reached by could point anywhere. The check is
therefore made where the connection is made, on the IP address the socket is about to connect
to: after DNS (a name that resolves, or re-resolves, outside is caught: no check-then-connect
gap) and for every address, however it was learnt. :func:`guarded_socket_factory` is what
``aiohttp.TCPConnector(socket_factory=...)`` gets; ``create_session(settings, policy=...)``
installs it. The policy itself comes from the composition root (the gateway's ``NetworkGuard``,
``security.allowed_networks``); the connector only asks it.

A refused address surfaces as :class:`AddressRefusedError` (an ``OSError``, so aiohttp wraps it in
``ClientConnectorError`` like any failed connect), mapped to the connector's
:class:`~xueliang.connectors.onvif.errors.AddressRefused` in :mod:`.soap`.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable
from typing import Any, Protocol

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddrInfo = tuple[Any, Any, int, str, tuple[Any, ...]]  # one getaddrinfo() row


class AddressPolicy(Protocol):
    """Which IP addresses the gateway may connect to (``NetworkGuard`` is one)."""

    @property
    def described(self) -> str:
        """The allowed networks, for messages ("10.0.0.0/8, 192.168.1.0/24")."""
        ...

    def allows(self, address: IPAddress) -> bool: ...


class AddressRefusedError(OSError):
    """A connection the policy refused, before any packet was sent. ``address`` is the IP."""

    def __init__(self, address: str, described: str) -> None:
        self.address = address
        self.described = described
        self.reason = f"outside the allowed networks {described}"
        # The same text for every address: when all of a name's addresses are refused,
        # aiohappyeyeballs then raises the first refusal itself instead of a joined OSError.
        super().__init__(errno.EACCES, self.reason)


def guarded_socket_factory(policy: AddressPolicy) -> Callable[[AddrInfo], socket.socket]:
    """A socket factory for ``aiohttp.TCPConnector`` that refuses addresses outside ``policy``."""

    def make(addr_info: AddrInfo) -> socket.socket:
        family, kind, proto, _canonname, sockaddr = addr_info
        address = str(sockaddr[0]).split("%")[0]
        if not policy.allows(ipaddress.ip_address(address)):
            raise AddressRefusedError(address, policy.described)
        return socket.socket(family=family, type=kind, proto=proto)

    return make


def refused_by_policy(exc: BaseException) -> AddressRefusedError | None:
    """The policy refusal behind a failed connect (aiohttp's ``ClientConnectorError.os_error``),
    if that is what it was; None for any other failure (including a name with one address refused
    and another unreachable: that one is reported as unreachable, naming both)."""
    os_error = getattr(exc, "os_error", exc)
    return os_error if isinstance(os_error, AddressRefusedError) else None
