"""Helpers for the simulator tests: a hand-built SOAP client and the ONVIF schemas from the onvif package."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import os
from pathlib import Path

import httpx
import onvif
from lxml import etree

from xueliang.connectors.onvif.simulator import password_digest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
VIDEO = SHARED / "data" / "vtest.avi"
WSDL_DIR = Path(onvif.__file__).parent / "wsdl"
XS = "http://www.w3.org/2001/XMLSchema"
NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "tt": "http://www.onvif.org/ver10/schema",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tr2": "http://www.onvif.org/ver20/media/wsdl",
    "tptz": "http://www.onvif.org/ver20/ptz/wsdl",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wsa": "http://www.w3.org/2005/08/addressing",
}
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST_TYPE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"


def request_xml(
    body: str,
    *,
    username: str | None = None,
    password: str | None = None,
    created: dt.datetime | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """A SOAP 1.2 request; with credentials it carries a WS-UsernameToken PasswordDigest."""
    header = ""
    if username is not None and password is not None:
        nonce_b64 = base64.b64encode(nonce or os.urandom(16)).decode()
        stamp = (created or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        digest = password_digest(nonce_b64, stamp, password)
        header = (
            f'<s:Header><wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
            f'<wsse:Username>{username}</wsse:Username><wsse:Password Type="{DIGEST_TYPE}">{digest}</wsse:Password>'
            f"<wsse:Nonce>{nonce_b64}</wsse:Nonce><wsu:Created>{stamp}</wsu:Created></wsse:UsernameToken>"
            "</wsse:Security></s:Header>"
        )
    namespaces = " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items() if k != "env")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{NS["env"]}" {namespaces}>'
        f"{header}<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


async def soap_call(
    client: httpx.AsyncClient, url: str, body: str, **credentials: object
) -> tuple[int, etree._Element]:
    """POST a SOAP request; return the HTTP status and the parsed response envelope."""
    response = await client.post(
        url,
        content=request_xml(body, **credentials),
        headers={"Content-Type": "application/soap+xml"},  # type: ignore[arg-type]
    )
    return response.status_code, etree.fromstring(response.content)


def body_child(root: etree._Element) -> etree._Element:
    """The first element inside env:Body."""
    body = root.find("env:Body", NS)
    assert body is not None and len(body) > 0
    return body[0]


def fault_subcodes(root: etree._Element) -> list[str]:
    """Subcode values of a SOAP fault, outermost first (empty when it is no fault)."""
    return [v.text or "" for v in root.iterfind(".//env:Subcode/env:Value", NS)]


@functools.cache
def wsdl_schema(wsdl_name: str) -> etree.XMLSchema:
    """The XML schema embedded in one of the onvif package's WSDL files (imports resolved beside it)."""
    path = WSDL_DIR / wsdl_name
    document = etree.parse(str(path))
    schema = document.find(f".//{{{XS}}}schema")
    assert schema is not None
    nsmap = {k: v for k, v in {**document.getroot().nsmap, **schema.nsmap}.items() if k}
    rebuilt = etree.Element(f"{{{XS}}}schema", nsmap=nsmap, attrib=dict(schema.attrib))
    rebuilt.extend(list(etree.fromstring(etree.tostring(schema))))
    return etree.XMLSchema(etree.fromstring(etree.tostring(rebuilt), base_url=str(path)))


def assert_valid(element: etree._Element, wsdl_name: str) -> None:
    """Validate a response body element against its service's schema; fail with the schema's message."""
    schema = wsdl_schema(wsdl_name)
    document = etree.fromstring(etree.tostring(element))
    if not schema.validate(document):
        raise AssertionError(f"{etree.QName(element).localname} is not schema-valid: {schema.error_log}")
