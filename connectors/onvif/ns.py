"""XML namespaces the connector speaks, in one place."""

from __future__ import annotations

SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENVS = frozenset({SOAP12_ENV, SOAP11_ENV})

WSA = "http://www.w3.org/2005/08/addressing"
WSA_2004 = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSNT = "http://docs.oasis-open.org/wsn/b-2"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

TT = "http://www.onvif.org/ver10/schema"
DEVICE = "http://www.onvif.org/ver10/device/wsdl"
MEDIA = "http://www.onvif.org/ver10/media/wsdl"
MEDIA2 = "http://www.onvif.org/ver20/media/wsdl"
PTZ = "http://www.onvif.org/ver20/ptz/wsdl"
EVENTS = "http://www.onvif.org/ver10/events/wsdl"
IMAGING = "http://www.onvif.org/ver20/imaging/wsdl"
ANALYTICS = "http://www.onvif.org/ver20/analytics/wsdl"
DEVICEIO = "http://www.onvif.org/ver10/deviceIO/wsdl"
RECORDING = "http://www.onvif.org/ver10/recording/wsdl"
SEARCH = "http://www.onvif.org/ver10/search/wsdl"
REPLAY = "http://www.onvif.org/ver10/replay/wsdl"
ONVIF_TOPICS = "http://www.onvif.org/ver10/topics"

WSDD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
DN = "http://www.onvif.org/ver10/network/wsdl"

# GetCapabilities answers by category, not by namespace; this maps each category element
# (including those under <Extension>) to the service namespace GetServices would report.
CAPABILITY_CATEGORIES: dict[str, str] = {
    "Analytics": ANALYTICS,
    "Device": DEVICE,
    "Events": EVENTS,
    "Imaging": IMAGING,
    "Media": MEDIA,
    "PTZ": PTZ,
    "DeviceIO": DEVICEIO,
    "Recording": RECORDING,
    "Search": SEARCH,
    "Replay": REPLAY,
}
