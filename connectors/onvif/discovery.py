"""WS-Discovery (SOAP-over-UDP, 2005/04): find ONVIF cameras with a Probe for NetworkVideoTransmitter.

Two ways to look:

* :func:`discover_multicast` sends one Probe to 239.255.255.250:3702 and collects every
  ProbeMatches that arrives within the time allowed (cameras on the local segment);
* :func:`discover_unicast` sends a Probe to each address of a list or CIDR range (port 3702),
  ``concurrency`` at a time, and waits up to ``timeout_s`` for each (cameras behind routers,
  where multicast does not reach).

Replies are parsed with the connector's safe XML parser (no DTD, no entity expansion, no network);
a reply that cannot be read is skipped and counted in :attr:`DiscoveryReport.malformed`, one that
answers somebody else's Probe in :attr:`DiscoveryReport.foreign`. Errors:

    ValueError     a target is not an IP address or network, or the range is larger than allowed
    OSError        the UDP socket could not be opened (no such local address, no permission)
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from lxml import etree

from xueliang.connectors.onvif import ns
from xueliang.connectors.onvif.parsers import Element, ParseError, parse_xml
from xueliang.connectors.onvif.settings import DiscoverySettings

logger = logging.getLogger(__name__)

MULTICAST_GROUP = ("239.255.255.250", 3702)
WSD_PORT = 3702
RESEND_AFTER_FRACTION = 0.4  # UDP is lossy: a unicast Probe unanswered by then is sent once more
MAX_DATAGRAM = 65_507

PROBE_TEMPLATE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
    'xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
    "<s:Header>"
    '<a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>'
    "<a:MessageID>{message_id}</a:MessageID>"
    "<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>"
    '<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>'
    "</s:Header>"
    "<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>"
    "</s:Envelope>"
)


@dataclass(frozen=True, slots=True)
class DiscoveredDevice:
    address: str  # IP the ProbeMatches came from
    xaddrs: tuple[str, ...]  # device service addresses the camera gives
    scopes: tuple[str, ...]
    types: tuple[str, ...]  # local names, e.g. ("NetworkVideoTransmitter", "Device")
    epr: str  # endpoint reference (stable device id, usually urn:uuid:...)
    name: str = ""  # from onvif://www.onvif.org/name/...
    hardware: str = ""  # from onvif://www.onvif.org/hardware/...
    location: str = ""  # from onvif://www.onvif.org/location/... (path after location/)


@dataclass(slots=True)
class DiscoveryReport:
    devices: list[DiscoveredDevice] = field(default_factory=list)
    malformed: int = 0  # replies that could not be read (skipped)
    foreign: int = 0  # well-formed replies to another Probe (skipped)
    unanswered: int = 0  # unicast targets that did not reply in time


def probe_message(message_id: str) -> bytes:
    return PROBE_TEMPLATE.format(message_id=message_id).encode()


def parse_probe_matches(data: bytes, source: str, message_id: str | None) -> list[DiscoveredDevice]:
    """Devices in one ProbeMatches datagram; ParseError (or XMLSyntaxError) when unreadable.

    ``message_id``: the Probe's MessageID; a reply that relates to another raises ``_Foreign``.
    """
    if len(data) > MAX_DATAGRAM:
        raise ParseError("datagram too large")
    root = parse_xml(data)
    header = root.find("{*}Header")
    relates_to = header.findtext("{*}RelatesTo", "").strip() if header is not None else ""
    if message_id is not None and relates_to != message_id:
        raise _Foreign(relates_to)
    matches = root.find(f"{{*}}Body/{{{ns.WSDD}}}ProbeMatches")
    if matches is None:
        raise ParseError("no ProbeMatches in the Body")
    devices = []
    for match in matches.findall(f"{{{ns.WSDD}}}ProbeMatch"):
        epr = match.findtext("{*}EndpointReference/{*}Address", "").strip()
        if not epr:
            raise ParseError("a ProbeMatch has no EndpointReference Address")
        scopes = tuple(match.findtext("{*}Scopes", "").split())
        devices.append(
            DiscoveredDevice(
                address=source,
                xaddrs=tuple(match.findtext("{*}XAddrs", "").split()),
                scopes=scopes,
                types=_type_names(match.find("{*}Types")),
                epr=epr,
                name=_scope_value(scopes, "name"),
                hardware=_scope_value(scopes, "hardware"),
                location=_scope_value(scopes, "location"),
            )
        )
    return devices


class _Foreign(ParseError):
    """A well-formed reply to somebody else's Probe."""


def _type_names(types: Element | None) -> tuple[str, ...]:
    if types is None or not types.text:
        return ()
    return tuple(name.rpartition(":")[2] for name in types.text.split())


def _scope_value(scopes: tuple[str, ...], kind: str) -> str:
    """``onvif://www.onvif.org/<kind>/<value...>`` -> unquoted value ("" when absent)."""
    for scope in scopes:
        parts = urlsplit(scope)
        if parts.scheme != "onvif" or parts.netloc != "www.onvif.org":
            continue
        head, _, rest = parts.path.lstrip("/").partition("/")
        if head == kind and rest:
            return unquote(rest)
    return ""


def expand_targets(targets: Iterable[str] | str, max_addresses: int) -> list[str]:
    """IP addresses from addresses and CIDR ranges (hosts only: no network or broadcast address)."""
    specs = [targets] if isinstance(targets, str) else list(targets)
    addresses: list[str] = []
    for spec in specs:
        try:
            network = ipaddress.ip_network(spec.strip(), strict=False)
        except ValueError:
            raise ValueError(
                f"discovery target {spec!r} is not an IP address or CIDR range (e.g. 10.1.2.0/24)"
            ) from None
        size = network.num_addresses - (2 if network.num_addresses > 2 and network.version == 4 else 0)
        if len(addresses) + size > max_addresses:
            raise ValueError(
                f"discovery targets hold more than {max_addresses} addresses (at {spec}); "
                "scan smaller ranges or raise onvif.discovery.max_addresses"
            )
        hosts = network.hosts() if network.num_addresses > 2 else iter(network)
        addresses.extend(str(address) for address in hosts)
    return addresses


class _ReplyProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_reply: Callable[[bytes, str], None]) -> None:
        self._on_reply = on_reply

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._on_reply(data, str(addr[0]))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a host without a WS-Discovery listener: it stays unanswered.
        logger.debug("WS-Discovery socket error: %s", exc)


class _Collector:
    """Parses replies to one Probe, deduplicating devices by endpoint reference."""

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.report = DiscoveryReport()
        self.answered: dict[str, asyncio.Event] = {}
        self._seen: set[str] = set()

    def on_reply(self, data: bytes, source: str) -> None:
        try:
            devices = parse_probe_matches(data, source, self.message_id)
        except _Foreign:
            self.report.foreign += 1
            return
        except (ParseError, etree.XMLSyntaxError) as exc:
            self.report.malformed += 1
            logger.info("WS-Discovery: unreadable reply from %s skipped: %s", source, exc)
            self._mark_answered(source)  # it answered: not "unanswered", and no resend
            return
        for device in devices:
            if device.epr not in self._seen:  # SOAP-over-UDP repeats messages: keep one per device
                self._seen.add(device.epr)
                self.report.devices.append(device)
        self._mark_answered(source)

    def _mark_answered(self, source: str) -> None:
        event = self.answered.get(source)
        if event is not None:
            event.set()


async def _open_socket(
    collector: _Collector, bind: str, *, multicast_ttl: int | None = None
) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    transport, _protocol = await loop.create_datagram_endpoint(
        lambda: _ReplyProtocol(collector.on_reply), local_addr=(bind, 0), family=family
    )
    if multicast_ttl is not None and family == socket.AF_INET:
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, multicast_ttl)
    return transport


async def discover_multicast(
    settings: DiscoverySettings | None = None,
    *,
    timeout_s: float | None = None,
    target: tuple[str, int] = MULTICAST_GROUP,
    bind: str = "0.0.0.0",
    ttl: int = 1,
) -> DiscoveryReport:
    """Send one Probe to the WS-Discovery multicast group and collect ProbeMatches for ``timeout_s``."""
    settings = settings or DiscoverySettings()
    wait = timeout_s if timeout_s is not None else settings.timeout_s
    collector = _Collector(f"urn:uuid:{uuid.uuid4()}")
    transport = await _open_socket(collector, bind, multicast_ttl=ttl)
    try:
        transport.sendto(probe_message(collector.message_id), target)
        await asyncio.sleep(wait)
    finally:
        transport.close()
    logger.info(
        "WS-Discovery multicast: %d device(s), %d unreadable repl(ies)",
        len(collector.report.devices),
        collector.report.malformed,
    )
    return collector.report


async def discover_unicast(
    targets: Iterable[str] | str,
    settings: DiscoverySettings | None = None,
    *,
    port: int = WSD_PORT,
    timeout_s: float | None = None,
    bind: str = "0.0.0.0",
) -> DiscoveryReport:
    """Probe each address (or CIDR range) directly, ``settings.concurrency`` at a time."""
    settings = settings or DiscoverySettings()
    addresses = expand_targets(targets, settings.max_addresses)
    wait = timeout_s if timeout_s is not None else settings.timeout_s
    collector = _Collector(f"urn:uuid:{uuid.uuid4()}")
    payload = probe_message(collector.message_id)
    limit = asyncio.Semaphore(settings.concurrency)
    transport = await _open_socket(collector, bind)

    async def probe(address: str) -> None:
        async with limit:
            answered = collector.answered[address] = asyncio.Event()
            transport.sendto(payload, (address, port))
            try:
                async with asyncio.timeout(wait * RESEND_AFTER_FRACTION):
                    await answered.wait()
                return
            except TimeoutError:
                transport.sendto(payload, (address, port))
            try:
                async with asyncio.timeout(wait * (1 - RESEND_AFTER_FRACTION)):
                    await answered.wait()
            except TimeoutError:
                collector.report.unanswered += 1

    try:
        async with asyncio.TaskGroup() as group:
            for address in addresses:
                group.create_task(probe(address))
    finally:
        transport.close()
    report = collector.report
    logger.info(
        "WS-Discovery unicast over %d address(es): %d device(s), %d unanswered, %d unreadable",
        len(addresses),
        len(report.devices),
        report.unanswered,
        report.malformed,
    )
    return report
