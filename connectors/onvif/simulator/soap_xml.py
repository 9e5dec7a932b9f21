"""Build SOAP 1.2 response envelopes and faults from compact string templates."""

from __future__ import annotations

import datetime as dt
from xml.sax.saxutils import escape

NAMESPACES = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "xs": "http://www.w3.org/2001/XMLSchema",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "tt": "http://www.onvif.org/ver10/schema",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tr2": "http://www.onvif.org/ver20/media/wsdl",
    "tptz": "http://www.onvif.org/ver20/ptz/wsdl",
    "timg": "http://www.onvif.org/ver20/imaging/wsdl",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "ter": "http://www.onvif.org/ver10/error",
    "tns1": "http://www.onvif.org/ver10/topics",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wstop": "http://docs.oasis-open.org/wsn/t-1",
    "wsa": "http://www.w3.org/2005/08/addressing",
}
NS_DEVICE = NAMESPACES["tds"]
NS_MEDIA = NAMESPACES["trt"]
NS_MEDIA2 = NAMESPACES["tr2"]
NS_PTZ = NAMESPACES["tptz"]
NS_EVENTS = NAMESPACES["tev"]
NS_WSNT = NAMESPACES["wsnt"]

_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<env:Envelope '
    + " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NAMESPACES.items())
    + ">"
)
CONTENT_TYPE = "application/soap+xml; charset=utf-8"


def envelope(body: str, action: str | None = None) -> bytes:
    """Wrap ``body`` (XML text of the body's children) into a SOAP 1.2 envelope."""
    header = f"<env:Header><wsa:Action>{action}</wsa:Action></env:Header>" if action else ""
    return f"{_OPEN}{header}<env:Body>{body}</env:Body></env:Envelope>".encode()


def fault(code: str, subcodes: tuple[str, ...], reason: str) -> bytes:
    """A SOAP 1.2 fault envelope; ``code`` is Sender or Receiver, subcodes like ``ter:NotAuthorized``."""
    sub = "".join(f"<env:Subcode><env:Value>{value}</env:Value>" for value in subcodes)
    sub += "</env:Subcode>" * len(subcodes)
    body = (
        f"<env:Fault><env:Code><env:Value>env:{code}</env:Value>{sub}</env:Code>"
        f'<env:Reason><env:Text xml:lang="en">{escape(reason)}</env:Text></env:Reason></env:Fault>'
    )
    return envelope(body)


def text(value: str) -> str:
    """Escape text for element content or attribute values."""
    return escape(value, {'"': "&quot;"})


def xs_datetime(value: dt.datetime) -> str:
    """xs:dateTime in UTC with a Z suffix, whole seconds (as cameras send)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def flt(value: float) -> str:
    """Format a float the way cameras do (six decimals)."""
    return f"{value:.6f}"


def xs_bool(value: bool) -> str:
    """xs:boolean text."""
    return "true" if value else "false"
