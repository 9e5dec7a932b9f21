"""WS-Discovery against UDP responders on loopback addresses (one port, one address per camera)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from lxml import etree

from xueliang.connectors.onvif.discovery import (
    DiscoveredDevice,
    discover_multicast,
    discover_unicast,
    expand_targets,
    parse_probe_matches,
    probe_message,
)
from xueliang.connectors.onvif.settings import DiscoverySettings

MATCHES = """<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope"
  xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"
  xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"
  xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns:tds="http://www.onvif.org/ver10/device/wsdl">
 <SOAP-ENV:Header>
  <wsa:MessageID>urn:uuid:{reply_id}</wsa:MessageID>
  <wsa:RelatesTo>{relates_to}</wsa:RelatesTo>
  <wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>
  <wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>
 </SOAP-ENV:Header>
 <SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch>
  <wsa:EndpointReference><wsa:Address>urn:uuid:{epr}</wsa:Address></wsa:EndpointReference>
  <d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>
  <d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/Profile/Streaming
   onvif://www.onvif.org/name/HIKVISION%20DS-2DF7276-AEL onvif://www.onvif.org/hardware/DS-2DF7276-AEL
   onvif://www.onvif.org/location/city/%E5%B7%B4%E4%B8%AD</d:Scopes>
  <d:XAddrs>http://{host}/onvif/device_service http://[fe80::1]/onvif/device_service</d:XAddrs>
  <d:MetadataVersion>10</d:MetadataVersion>
 </d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body>
</SOAP-ENV:Envelope>"""


class Responder(asyncio.DatagramProtocol):
    """A camera's WS-Discovery listener; ``mode``: ok, twice, malformed, foreign, silent."""

    def __init__(self, host: str, mode: str) -> None:
        self.host, self.mode = host, mode
        self.probes: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.probes.append(data)
        message_id = etree.fromstring(data).findtext("{*}Header/{*}MessageID")
        assert self.transport is not None
        reply = MATCHES.format(reply_id=len(self.probes), relates_to=message_id, epr=self.host, host=self.host)
        if self.mode == "malformed":
            self.transport.sendto(b"<SOAP-ENV:Envelope><d:ProbeMatches><oops", addr)
        elif self.mode == "foreign":
            self.transport.sendto(reply.replace(message_id, "urn:uuid:someone-else").encode(), addr)
        elif self.mode in ("ok", "twice"):
            for _ in range(2 if self.mode == "twice" else 1):
                self.transport.sendto(reply.encode(), addr)


Start = Callable[[dict[str, str]], Awaitable[tuple[int, dict[str, Responder]]]]


@pytest.fixture
async def responders() -> AsyncIterator[Start]:
    transports: list[asyncio.DatagramTransport] = []

    async def start(modes: dict[str, str]) -> tuple[int, dict[str, Responder]]:
        loop = asyncio.get_running_loop()
        port, started = 0, {}
        for host, mode in modes.items():
            responder = Responder(host, mode)
            transport, _ = await loop.create_datagram_endpoint(lambda r=responder: r, local_addr=(host, port))
            transports.append(transport)
            port = port or transport.get_extra_info("sockname")[1]
            started[host] = responder
        return port, started

    yield start
    for transport in transports:
        transport.close()


def _subnet() -> str:
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"


async def test_unicast_over_a_range_finds_cameras_and_counts_the_rest(responders: Start) -> None:
    net = _subnet()
    modes = {
        f"{net}.1": "ok",
        f"{net}.2": "twice",
        f"{net}.3": "malformed",
        f"{net}.4": "foreign",
        f"{net}.5": "silent",
    }
    port, started = await responders(modes)
    settings = DiscoverySettings(timeout_s=0.5, concurrency=4)

    report = await discover_unicast(f"{net}.0/29", settings, port=port, bind="127.0.0.1")

    assert sorted(d.address for d in report.devices) == [f"{net}.1", f"{net}.2"]  # "twice" is deduplicated
    assert report.malformed == 1 and report.foreign >= 1
    assert report.unanswered == 3  # .4 (foreign only), .5 (silent), .6 (nobody)
    device = next(d for d in report.devices if d.address == f"{net}.1")
    assert device.epr == f"urn:uuid:{net}.1"
    assert device.xaddrs == (f"http://{net}.1/onvif/device_service", "http://[fe80::1]/onvif/device_service")
    assert device.types == ("NetworkVideoTransmitter", "Device")
    assert (device.name, device.hardware, device.location) == (
        "HIKVISION DS-2DF7276-AEL",
        "DS-2DF7276-AEL",
        "city/巴中",
    )
    assert len(device.scopes) == 5
    # answered hosts got one Probe; the silent one got it twice (UDP is lossy: one resend)
    assert len(started[f"{net}.1"].probes) == 1 and len(started[f"{net}.3"].probes) == 1
    assert len(started[f"{net}.5"].probes) == 2
    probe = etree.fromstring(started[f"{net}.1"].probes[0])
    assert probe.findtext("{*}Body/{*}Probe/{*}Types") == "dn:NetworkVideoTransmitter"


async def test_multicast_collects_all_replies_in_the_window(responders: Start) -> None:
    """The collection path of a multicast Probe, aimed at one loopback responder (no multicast route here)."""
    net = _subnet()
    port, started = await responders({f"{net}.9": "twice"})
    report = await discover_multicast(timeout_s=0.3, target=(f"{net}.9", port), bind="127.0.0.1")
    assert [d.address for d in report.devices] == [f"{net}.9"]
    assert len(started[f"{net}.9"].probes) == 1


def test_targets_expand_and_refuse_bad_input() -> None:
    assert expand_targets(["10.0.0.0/30", "10.0.1.7"], 100) == ["10.0.0.1", "10.0.0.2", "10.0.1.7"]
    assert expand_targets("192.168.5.9/32", 10) == ["192.168.5.9"]
    with pytest.raises(ValueError, match="not an IP address"):
        expand_targets(["camera-7"], 10)
    with pytest.raises(ValueError, match="more than 256 addresses"):
        expand_targets("10.0.0.0/16", 256)


def test_replies_with_entities_are_refused() -> None:
    message_id = "urn:uuid:1"
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    with pytest.raises(ValueError, match="DTD"):
        parse_probe_matches(bomb, "127.0.0.1", message_id)
    good = MATCHES.format(reply_id=1, relates_to=message_id, epr="e", host="h").encode()
    assert parse_probe_matches(good, "127.0.0.1", message_id) == [
        DiscoveredDevice(
            address="127.0.0.1",
            xaddrs=("http://h/onvif/device_service", "http://[fe80::1]/onvif/device_service"),
            scopes=(
                "onvif://www.onvif.org/type/video_encoder",
                "onvif://www.onvif.org/Profile/Streaming",
                "onvif://www.onvif.org/name/HIKVISION%20DS-2DF7276-AEL",
                "onvif://www.onvif.org/hardware/DS-2DF7276-AEL",
                "onvif://www.onvif.org/location/city/%E5%B7%B4%E4%B8%AD",
            ),
            types=("NetworkVideoTransmitter", "Device"),
            epr="urn:uuid:e",
            name="HIKVISION DS-2DF7276-AEL",
            hardware="DS-2DF7276-AEL",
            location="city/巴中",
        )
    ]
    assert b"<d:Types>dn:NetworkVideoTransmitter</d:Types>" in probe_message("urn:uuid:2")
