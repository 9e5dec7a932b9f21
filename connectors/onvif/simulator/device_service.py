"""Device management service (tds): identity, clock, services, capabilities, network."""

from __future__ import annotations

import datetime as dt

from xueliang.connectors.onvif.simulator.errors import SoapFault
from xueliang.connectors.onvif.simulator.soap_context import SoapContext, SoapHandler
from xueliang.connectors.onvif.simulator.soap_request import child_text
from xueliang.connectors.onvif.simulator.soap_xml import NAMESPACES, NS_DEVICE, text, xs_bool

LOCAL_OFFSET = dt.timedelta(hours=8)  # cameras are set to China Standard Time (CST-8)
PATH_DEVICE = "/onvif/device_service"
PATH_MEDIA = "/onvif/media_service"
PATH_MEDIA2 = "/onvif/media2_service"
PATH_PTZ = "/onvif/ptz_service"
PATH_EVENTS = "/onvif/events_service"


def _date_time(value: dt.datetime) -> str:
    return (
        f"<tt:Time><tt:Hour>{value.hour}</tt:Hour><tt:Minute>{value.minute}</tt:Minute>"
        f"<tt:Second>{value.second}</tt:Second></tt:Time><tt:Date><tt:Year>{value.year}</tt:Year>"
        f"<tt:Month>{value.month}</tt:Month><tt:Day>{value.day}</tt:Day></tt:Date>"
    )


def get_system_date_and_time(ctx: SoapContext) -> str:
    """UTC and local time of the camera's (possibly skewed) clock; no authentication needed."""
    utc = ctx.now
    return (
        "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
        "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
        "<tt:TimeZone><tt:TZ>CST-8</tt:TZ></tt:TimeZone>"
        f"<tt:UTCDateTime>{_date_time(utc)}</tt:UTCDateTime>"
        f"<tt:LocalDateTime>{_date_time(utc + LOCAL_OFFSET)}</tt:LocalDateTime>"
        "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
    )


def get_device_information(ctx: SoapContext) -> str:
    """Manufacturer, model, firmware, serial number and hardware id."""
    cam = ctx.camera
    return (
        f"<tds:GetDeviceInformationResponse><tds:Manufacturer>{text(cam.manufacturer)}</tds:Manufacturer>"
        f"<tds:Model>{text(cam.model)}</tds:Model><tds:FirmwareVersion>{text(cam.firmware)}</tds:FirmwareVersion>"
        f"<tds:SerialNumber>{text(cam.serial)}</tds:SerialNumber><tds:HardwareId>{cam.hardware_id}</tds:HardwareId>"
        "</tds:GetDeviceInformationResponse>"
    )


def _service(namespace: str, xaddr: str, capabilities: str | None, major: int, minor: int) -> str:
    caps = f"<tds:Capabilities>{capabilities}</tds:Capabilities>" if capabilities is not None else ""
    return (
        f"<tds:Service><tds:Namespace>{namespace}</tds:Namespace><tds:XAddr>{xaddr}</tds:XAddr>{caps}"
        f"<tds:Version><tt:Major>{major}</tt:Major><tt:Minor>{minor}</tt:Minor></tds:Version></tds:Service>"
    )


_DEVICE_CAPS = (
    '<tds:Capabilities><tds:Network IPFilter="false" ZeroConfiguration="false" IPVersion6="false" DynDNS="false" '
    'NTP="1" HostnameFromDHCP="false"/><tds:Security TLS1.2="false" UsernameToken="true" HttpDigest="true" '
    'DefaultAccessPolicy="true"/><tds:System DiscoveryResolve="false" DiscoveryBye="true" RemoteDiscovery="false" '
    'SystemBackup="false" SystemLogging="false" FirmwareUpgrade="false"/></tds:Capabilities>'
)
_MEDIA_CAPS = (
    '<trt:Capabilities SnapshotUri="true" Rotation="false" OSD="false">'
    '<trt:ProfileCapabilities MaximumNumberOfProfiles="2"/>'
    '<trt:StreamingCapabilities RTPMulticast="false" RTP_TCP="true" RTP_RTSP_TCP="true"/></trt:Capabilities>'
)
_MEDIA2_CAPS = (
    '<tr2:Capabilities SnapshotUri="true" Rotation="false" OSD="false">'
    '<tr2:ProfileCapabilities MaximumNumberOfProfiles="2" ConfigurationsSupported="VideoSource VideoEncoder PTZ"/>'
    '<tr2:StreamingCapabilities RTSPStreaming="true" RTPMulticast="false" RTP_RTSP_TCP="true"/></tr2:Capabilities>'
)
_EVENTS_CAPS = (
    '<tev:Capabilities WSSubscriptionPolicySupport="true" WSPullPointSupport="true" '
    'WSPausableSubscriptionManagerInterfaceSupport="false" MaxNotificationProducers="0" MaxPullPoints="10"/>'
)
_PTZ_CAPS = '<tptz:Capabilities EFlip="false" Reverse="false" MoveStatus="true" StatusPosition="true"/>'


def get_services(ctx: SoapContext) -> str:
    """Every service with its XAddr; capabilities only when IncludeCapability is true."""
    if ctx.camera.faults.no_get_services:
        raise SoapFault("Receiver", ("ter:ActionNotSupported",), "GetServices is not supported; use GetCapabilities")
    include = (child_text(ctx.request.body, "IncludeCapability") or "false").lower() in ("true", "1")
    base = ctx.http_base
    parts = [
        _service(NS_DEVICE, base + PATH_DEVICE, _DEVICE_CAPS if include else None, 2, 60),
        _service(NAMESPACES["trt"], base + PATH_MEDIA, _MEDIA_CAPS if include else None, 2, 60),
        _service(NAMESPACES["tr2"], base + PATH_MEDIA2, _MEDIA2_CAPS if include else None, 2, 60),
        _service(NAMESPACES["tev"], base + PATH_EVENTS, _EVENTS_CAPS if include else None, 2, 60),
    ]
    if ctx.camera.has_ptz:
        parts.append(_service(NAMESPACES["tptz"], base + PATH_PTZ, _PTZ_CAPS if include else None, 2, 60))
    return f"<tds:GetServicesResponse>{''.join(parts)}</tds:GetServicesResponse>"


def get_capabilities(ctx: SoapContext) -> str:
    """The ver10 capability tree (the fallback when GetServices is missing)."""
    category = child_text(ctx.request.body, "Category") or "All"
    base = ctx.http_base
    sections = {
        "Device": (
            f"<tt:Device><tt:XAddr>{base}{PATH_DEVICE}</tt:XAddr><tt:Network><tt:IPFilter>false</tt:IPFilter>"
            "<tt:ZeroConfiguration>false</tt:ZeroConfiguration><tt:IPVersion6>false</tt:IPVersion6>"
            "<tt:DynDNS>false</tt:DynDNS></tt:Network><tt:System><tt:DiscoveryResolve>false</tt:DiscoveryResolve>"
            "<tt:DiscoveryBye>true</tt:DiscoveryBye><tt:RemoteDiscovery>false</tt:RemoteDiscovery>"
            "<tt:SystemBackup>false</tt:SystemBackup><tt:SystemLogging>false</tt:SystemLogging>"
            "<tt:FirmwareUpgrade>false</tt:FirmwareUpgrade><tt:SupportedVersions><tt:Major>2</tt:Major>"
            "<tt:Minor>60</tt:Minor></tt:SupportedVersions></tt:System><tt:Security><tt:TLS1.1>false</tt:TLS1.1>"
            "<tt:TLS1.2>false</tt:TLS1.2><tt:OnboardKeyGeneration>false</tt:OnboardKeyGeneration>"
            "<tt:AccessPolicyConfig>false</tt:AccessPolicyConfig><tt:X.509Token>false</tt:X.509Token>"
            "<tt:SAMLToken>false</tt:SAMLToken><tt:KerberosToken>false</tt:KerberosToken>"
            "<tt:RELToken>false</tt:RELToken></tt:Security></tt:Device>"
        ),
        "Events": (
            f"<tt:Events><tt:XAddr>{base}{PATH_EVENTS}</tt:XAddr>"
            "<tt:WSSubscriptionPolicySupport>true</tt:WSSubscriptionPolicySupport>"
            "<tt:WSPullPointSupport>true</tt:WSPullPointSupport>"
            "<tt:WSPausableSubscriptionManagerInterfaceSupport>false"
            "</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>"
        ),
        "Media": (
            f"<tt:Media><tt:XAddr>{base}{PATH_MEDIA}</tt:XAddr><tt:StreamingCapabilities>"
            "<tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>"
            "<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>"
        ),
    }
    if ctx.camera.has_ptz:
        sections["PTZ"] = f"<tt:PTZ><tt:XAddr>{base}{PATH_PTZ}</tt:XAddr></tt:PTZ>"
    if category == "All":
        chosen = "".join(sections.values())
    elif category in sections:
        chosen = sections[category]
    else:
        raise SoapFault("Receiver", ("ter:ActionNotSupported", "ter:NoSuchService"), f"no {category} capability")
    return f"<tds:GetCapabilitiesResponse><tds:Capabilities>{chosen}</tds:Capabilities></tds:GetCapabilitiesResponse>"


def get_hostname(ctx: SoapContext) -> str:
    """The camera's host name (its simulator name)."""
    return (
        "<tds:GetHostnameResponse><tds:HostnameInformation><tt:FromDHCP>false</tt:FromDHCP>"
        f"<tt:Name>{text(ctx.camera.name)}</tt:Name></tds:HostnameInformation></tds:GetHostnameResponse>"
    )


def get_network_interfaces(ctx: SoapContext) -> str:
    """One wired interface carrying the camera's address."""
    cam = ctx.camera
    return (
        '<tds:GetNetworkInterfacesResponse><tds:NetworkInterfaces token="eth0"><tt:Enabled>true</tt:Enabled>'
        f"<tt:Info><tt:Name>eth0</tt:Name><tt:HwAddress>{cam.mac}</tt:HwAddress><tt:MTU>1500</tt:MTU></tt:Info>"
        f"<tt:IPv4><tt:Enabled>true</tt:Enabled><tt:Config><tt:Manual><tt:Address>{cam.address}</tt:Address>"
        f"<tt:PrefixLength>8</tt:PrefixLength></tt:Manual><tt:DHCP>{xs_bool(False)}</tt:DHCP></tt:Config>"
        "</tt:IPv4></tds:NetworkInterfaces></tds:GetNetworkInterfacesResponse>"
    )


def get_scopes(ctx: SoapContext) -> str:
    """ONVIF scopes: type, name and hardware, as WS-Discovery would advertise."""
    cam = ctx.camera
    items = (
        "onvif://www.onvif.org/type/video_encoder",
        "onvif://www.onvif.org/Profile/Streaming",
        f"onvif://www.onvif.org/name/{cam.name}",
        f"onvif://www.onvif.org/hardware/{cam.model}",
    )
    scopes = "".join(
        f"<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>{text(item)}</tt:ScopeItem></tds:Scopes>"
        for item in items
    )
    return f"<tds:GetScopesResponse>{scopes}</tds:GetScopesResponse>"


HANDLERS: dict[tuple[str, str], SoapHandler] = {
    (NS_DEVICE, "GetSystemDateAndTime"): get_system_date_and_time,
    (NS_DEVICE, "GetDeviceInformation"): get_device_information,
    (NS_DEVICE, "GetServices"): get_services,
    (NS_DEVICE, "GetCapabilities"): get_capabilities,
    (NS_DEVICE, "GetHostname"): get_hostname,
    (NS_DEVICE, "GetNetworkInterfaces"): get_network_interfaces,
    (NS_DEVICE, "GetScopes"): get_scopes,
}
