"""ONVIF connector: device client (probe, PTZ, PullPoint events) and WS-Discovery.

Public API (everything else is internal)::

    from xueliang.connectors.onvif import OnvifClient, OnvifSettings, create_session, warm_up
    create_session(settings, policy=guard)  # refuses addresses outside the guard's networks
    from xueliang.connectors.onvif import discover_unicast, discover_multicast, DiscoveredDevice
    from xueliang.connectors.onvif.errors import OnvifError, Unreachable, AuthFailed, ...
    from xueliang.connectors.onvif import classify_fault, reached_service, reached_stream  # pure rules
"""

from xueliang.connectors.onvif.client import OnvifClient
from xueliang.connectors.onvif.discovery import DiscoveredDevice, DiscoveryReport, discover_multicast, discover_unicast
from xueliang.connectors.onvif.errors import (
    AddressRefused,
    AuthFailed,
    ClockSkew,
    DeviceFault,
    MalformedResponse,
    NotOnvif,
    OnvifError,
    Timeout,
    TlsFailed,
    Unreachable,
    Unsupported,
    classify_fault,
)
from xueliang.connectors.onvif.events import PullPointState, PullPointSubscription
from xueliang.connectors.onvif.models import CameraEvent, DeviceIdentity, MediaProfile, ProbeResult, PtzPreset
from xueliang.connectors.onvif.policy import AddressPolicy
from xueliang.connectors.onvif.settings import DiscoverySettings, OnvifSettings
from xueliang.connectors.onvif.soap import create_session
from xueliang.connectors.onvif.urls import reached_service, reached_stream
from xueliang.connectors.onvif.wsdl import warm_up

__all__ = [
    "AddressPolicy",
    "AddressRefused",
    "AuthFailed",
    "CameraEvent",
    "ClockSkew",
    "DeviceFault",
    "DeviceIdentity",
    "DiscoveredDevice",
    "DiscoveryReport",
    "DiscoverySettings",
    "MalformedResponse",
    "MediaProfile",
    "NotOnvif",
    "OnvifClient",
    "OnvifError",
    "OnvifSettings",
    "ProbeResult",
    "PtzPreset",
    "PullPointState",
    "PullPointSubscription",
    "Timeout",
    "TlsFailed",
    "Unreachable",
    "Unsupported",
    "classify_fault",
    "create_session",
    "discover_multicast",
    "discover_unicast",
    "reached_service",
    "reached_stream",
    "warm_up",
]
