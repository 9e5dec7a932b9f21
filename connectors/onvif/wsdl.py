"""Process-wide catalogue of parsed ONVIF WSDLs, and the request envelopes built from them.

onvif-zeep-async's ``ONVIFCamera`` builds, for every camera and every service, a new aiohttp
``TCPConnector`` + ``ClientSession`` and two zeep clients (with and without WS-Security). Only the
parsed WSDL ``Document`` is cached. At 31,000 cameras that per-camera setup, and above all zeep's
response deserialisation (4.5 ms for one Hikvision ``GetProfiles``, 9.8 ms for all the answers of
one probed camera against 1.5 ms with lxml: ``benchmarks/onvif_probe.py --compare-zeep``), is
what makes a bulk import slow.

So this connector uses onvif-zeep-async for what it is good at, once per process:

* its bundled WSDLs and service table (``onvif.definition.SERVICES``), loaded into zeep once per
  ``(wsdl file, binding)`` (off the event loop, guarded so concurrent first uses load once);
* zeep's binding to *build* each request envelope (checks the operation and its arguments, sets
  the SOAP 1.2 action, adds WS-Addressing headers to event operations through onvif-zeep-async's
  ``WsAddressingIfMissingPlugin``);
* its ``UsernameDigestTokenDtDiff`` for the WS-UsernameToken digest shifted by the camera's clock
  offset (see :mod:`xueliang.connectors.onvif.soap`).

Responses are read by :mod:`xueliang.connectors.onvif.parsers` with lxml directly (20-40x faster
than zeep's typed deserialisation, and tolerant of vendor quirks).

Media2 (``ver20/media``) has no WSDL in onvif-zeep-async, so its three requests are built by
:func:`build_plain_request` from the operation's element names.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import threading
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onvif
from lxml import etree
from onvif.client import ZeepAsyncClient
from onvif.definition import SERVICES
from onvif.settings import DEFAULT_SETTINGS
from onvif.transport import ASYNC_TRANSPORT
from onvif.wsa import WsAddressingIfMissingPlugin
from zeep.wsdl import Document

from xueliang.connectors.onvif import ns

WSDL_DIR = Path(onvif.__file__).resolve().parent / "wsdl"

# Services this connector calls through zeep, by onvif-zeep-async's service key.
ZEEP_SERVICES = ("devicemgmt", "media", "ptz", "events", "pullpoint", "subscription")


@dataclass(frozen=True, slots=True)
class LoadedBinding:
    """One WSDL binding, parsed once and shared by every camera in the process."""

    service: str
    client: Any  # onvif.client.ZeepAsyncClient without transport I/O or WS-Security
    binding: Any  # zeep.wsdl.bindings.soap.Soap12Binding


_DOCUMENTS: dict[Path, Document] = {}
_BINDINGS: dict[tuple[Path, str], LoadedBinding] = {}
_LOAD_LOCK = threading.Lock()  # a thread lock: loads run in executor threads, across event loops


def _binding_key(service: str) -> tuple[Path, str]:
    try:
        definition = SERVICES[service]
    except KeyError:
        raise ValueError(f"unknown ONVIF service {service!r}; known: {', '.join(sorted(SERVICES))}") from None
    return WSDL_DIR / definition["wsdl"], "{{{}}}{}".format(definition["ns"], definition["binding"])


def _load_sync(service: str) -> LoadedBinding:
    path, qname = _binding_key(service)
    with _LOAD_LOCK:
        loaded = _BINDINGS.get((path, qname))
        if loaded is not None:
            return loaded
        document = _DOCUMENTS.get(path)
        if document is None:
            # ASYNC_TRANSPORT only reads local files: a WSDL import can never reach the network.
            document = Document(str(path), ASYNC_TRANSPORT, settings=DEFAULT_SETTINGS)
            _DOCUMENTS[path] = document
        client = ZeepAsyncClient(
            wsdl=document,
            transport=ASYNC_TRANSPORT,
            settings=DEFAULT_SETTINGS,
            plugins=[WsAddressingIfMissingPlugin()],
        )
        loaded = LoadedBinding(service=service, client=client, binding=client.wsdl.bindings[qname])
        _BINDINGS[(path, qname)] = loaded
        return loaded


async def load_binding(service: str) -> LoadedBinding:
    """The shared binding for ``service``; the first call parses the WSDL in an executor thread."""
    loaded = _BINDINGS.get(_binding_key(service))
    if loaded is not None:
        return loaded
    return await asyncio.get_running_loop().run_in_executor(None, _load_sync, service)


async def warm_up(services: Sequence[str] = ZEEP_SERVICES) -> None:
    """Parse every WSDL the connector uses now (a gateway calls this at start, ~0.3 s once)."""
    for service in services:
        await load_binding(service)


def build_request(
    loaded: LoadedBinding, operation: str, params: Mapping[str, Any], address: str
) -> tuple[etree._Element, dict[str, str]]:
    """Envelope and HTTP headers for ``operation`` (no WS-Security yet: the caller signs it).

    ``binding._create`` is zeep's own request builder (what ``send_async`` calls before it
    posts); used directly so the shared client never holds per-camera credentials. Requests of
    the services in ``TEMPLATE_SERVICES`` do not depend on the address, so the envelope built for
    one camera is kept (LRU, ``TEMPLATE_LIMIT`` entries) and copied for the next: zeep's
    serialisation is ~0.15 ms a call, a copy ~0.01 ms.
    """
    key = _template_key(loaded.service, operation, params)
    if key is not None:
        cached = _TEMPLATES.get(key)
        if cached is not None:
            _TEMPLATES.move_to_end(key)
            return copy.deepcopy(cached[0]), dict(cached[1])
    envelope, headers = loaded.binding._create(
        operation, (), dict(params), client=loaded.client, options={"address": address}
    )
    if key is not None:
        _TEMPLATES[key] = (copy.deepcopy(envelope), dict(headers))
        if len(_TEMPLATES) > TEMPLATE_LIMIT:
            _TEMPLATES.popitem(last=False)  # drop the least recently used
    return envelope, dict(headers)


# Services whose requests carry no WS-Addressing headers (those hold a unique MessageID and the
# address), so an envelope depends only on the operation and its arguments.
TEMPLATE_SERVICES = frozenset({"devicemgmt", "media", "ptz"})
TEMPLATE_LIMIT = 4096
_TEMPLATES: collections.OrderedDict[Hashable, tuple[etree._Element, dict[str, str]]] = collections.OrderedDict()


def _template_key(service: str, operation: str, params: Mapping[str, Any]) -> Hashable | None:
    if service not in TEMPLATE_SERVICES:
        return None
    try:
        frozen = _freeze(params)
        hash(frozen)
    except TypeError:  # an argument that cannot be a key (a zeep object): build afresh
        return None
    return (service, operation, frozen)


def _freeze(value: Any) -> Hashable:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return (type(value).__name__, value)


def build_plain_request(
    namespace: str, operation: str, children: Sequence[tuple[str, str]]
) -> tuple[etree._Element, dict[str, str]]:
    """A SOAP 1.2 request ``<operation><child>text</child>...</operation>`` in ``namespace``.

    For services onvif-zeep-async ships no WSDL for (Media2).
    """
    envelope = etree.Element(f"{{{ns.SOAP12_ENV}}}Envelope", nsmap={"s": ns.SOAP12_ENV, "m": namespace})
    body = etree.SubElement(envelope, f"{{{ns.SOAP12_ENV}}}Body")
    request = etree.SubElement(body, f"{{{namespace}}}{operation}")
    for name, text in children:
        etree.SubElement(request, f"{{{namespace}}}{name}").text = text
    headers = {"Content-Type": f'application/soap+xml; charset=utf-8; action="{namespace}/{operation}"'}
    return envelope, headers
