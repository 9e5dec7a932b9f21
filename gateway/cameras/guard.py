"""The allowed-networks guard: the gateway connects to a camera only if every address its host
stands for lies inside ``security.allowed_networks``.

Used before provisioning and before every later connection the gateway makes to a camera (health
sweep, re-probe, PTZ, snapshots). IP literals are checked at once; DNS names are resolved off the
event loop (``loop.getaddrinfo`` runs in the default executor) and the answer is trusted for
``cameras.dns_cache_s`` seconds. A name is refused if ANY of its addresses is outside, so a
round-robin record cannot smuggle one in.

This is the check-before-connect. It cannot stop what a camera says later (XAddrs, redirects) nor a
name that resolves elsewhere when the connection is made (DNS rebinding): a guard is also an
``xueliang.connectors.onvif.AddressPolicy``, and ``create_session(onvif, policy=guard)`` checks
every ONVIF connection on the IP it is about to use. A path that connects by name itself (a raw
socket, ffmpeg) must connect to an address ``check`` returned, not to the name again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections import OrderedDict
from collections.abc import Sequence

from xueliang.gateway.cameras.errors import AddressNotAllowed, AddressUnresolvable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
CACHE_LIMIT = 50_000  # resolved names kept; the least recently used is forgotten first


class NetworkGuard:
    """Checks hosts against the allowed networks; ``check`` raises a precise ``CameraAddressError``."""

    def __init__(self, networks: Sequence[IPNetwork], *, dns_cache_s: float = 60.0) -> None:
        self.networks = tuple(networks)
        self.dns_cache_s = dns_cache_s
        self._names: OrderedDict[str, tuple[float, tuple[IPAddress, ...]]] = OrderedDict()

    @property
    def described(self) -> str:
        return ", ".join(str(n) for n in self.networks) or "(none)"

    def allows(self, address: IPAddress) -> bool:
        # An IPv4-mapped IPv6 address (::ffff:10.1.2.3) is judged as the IPv4 address it carries.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address.version == net.version and address in net for net in self.networks)

    def check_literal(self, host: str) -> IPAddress | None:
        """The checked address when ``host`` is an IP literal; None when it is a name."""
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return None
        if not self.allows(address):
            raise AddressNotAllowed(
                host,
                f"{address} is outside the allowed networks {self.described}: "
                "add it to security.allowed_networks or fix the address",
            )
        return address

    async def check(self, host: str) -> tuple[IPAddress, ...]:
        """The host's addresses, all allowed; ``AddressNotAllowed`` / ``AddressUnresolvable`` otherwise."""
        literal = self.check_literal(host)
        if literal is not None:
            return (literal,)
        addresses = await self._resolve(host)
        outside = [a for a in addresses if not self.allows(a)]
        if outside:
            shown = ", ".join(str(a) for a in outside)
            raise AddressNotAllowed(
                host,
                f"{host} resolves to {shown}, outside the allowed networks {self.described}: "
                "add it to security.allowed_networks or fix the address",
            )
        return addresses

    async def _resolve(self, name: str) -> tuple[IPAddress, ...]:
        now = time.monotonic()
        cached = self._names.get(name)
        if cached is not None and now - cached[0] < self.dns_cache_s:
            self._names.move_to_end(name)
            return cached[1]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, socket.gaierror) and exc.strerror else str(exc)
            raise AddressUnresolvable(
                name, f"cannot resolve the camera host name {name}: {reason}; check the name or give the IP address"
            ) from exc
        addresses = tuple(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
        if not addresses:
            raise AddressUnresolvable(name, f"the camera host name {name} has no address; give the IP address")
        if self.dns_cache_s > 0:
            self._names[name] = (now, addresses)
            if len(self._names) > CACHE_LIMIT:
                self._names.popitem(last=False)
        return addresses
