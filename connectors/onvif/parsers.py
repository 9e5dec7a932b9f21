"""Read ONVIF answers with lxml: safe parsing, SOAP faults, and one function per response.

Parsers match elements by local name (``{*}Name``): vendors put the same elements in different
namespaces (``wsa`` vs ``wsa5`` addresses, ``tt`` vs ``tds`` in capabilities), and the meaning
is in the name. A parser raises :class:`ParseError` when a required element is missing or
unreadable; the SOAP layer turns that into ``MalformedResponse`` naming the camera and operation.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

from lxml import etree

from xueliang.connectors.onvif import ns
from xueliang.connectors.onvif.models import CameraEvent, DeviceIdentity, MediaProfile, PtzPreset

logger = logging.getLogger(__name__)

# lxml.etree._Element; lxml ships no type stubs in this environment, so it is Any to mypy.
Element: TypeAlias = Any


class ParseError(ValueError):
    """An answer lacks a required element or holds an unreadable value."""


def make_parser(encoding: str | None = None) -> etree.XMLParser:
    """A parser that never expands entities, loads DTDs or touches the network (billion laughs,
    XXE). One per thread: lxml parser objects must not be shared between threads. ``encoding``
    overrides the one the document declares."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, encoding=encoding)


_LOOP_PARSER = make_parser()  # used only on the event loop's thread
_LOOP_GB_PARSER = make_parser("GB18030")  # likewise, for answers declaring a Chinese GB encoding

# Camera quirk: Chinese firmwares declare encoding="GB2312" (or GBK) and then send names
# (device, profile, preset) with GBK-only characters, which a strict GB2312 decoder refuses.
# GB18030 is a superset of both: reading such answers as GB18030 loses nothing.
_GB_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"'](gb2312|gbk|gb_2312-80|x-gbk|cp936)[\"']", re.I)


def parse_xml(content: bytes, parser: etree.XMLParser | None = None) -> Element:
    """Parse untrusted XML; refuses documents with a DTD (SOAP forbids them).

    ``parser`` is for a worker thread (:func:`make_parser`); on the event loop's thread leave it
    out. Raises ``etree.XMLSyntaxError`` for broken XML and :class:`ParseError` for a DTD.
    """
    if _GB_DECLARATION.match(content[:200].lstrip(b"\xef\xbb\xbf")):
        parser = _LOOP_GB_PARSER if parser is None else make_parser("GB18030")
    root = etree.fromstring(content, parser=parser or _LOOP_PARSER)
    if root.getroottree().docinfo.doctype:
        raise ParseError("the document declares a DTD, which SOAP does not allow")
    return root


def local_name(element: Element) -> str:
    return str(etree.QName(element).localname)


def soap_body(envelope: Element) -> Element:
    """The Body of a SOAP 1.1/1.2 envelope; ParseError when ``envelope`` is not one."""
    qname = etree.QName(envelope)
    if qname.localname != "Envelope" or qname.namespace not in ns.SOAP_ENVS:
        raise ParseError(f"the root element is {qname.text}, not a SOAP Envelope")
    body = envelope.find(f"{{{qname.namespace}}}Body")
    if body is None:
        raise ParseError("the SOAP Envelope has no Body")
    return body


def first_child(body: Element) -> Element | None:
    return next((child for child in body if isinstance(child.tag, str)), None)


@dataclass(frozen=True, slots=True)
class FaultInfo:
    codes: tuple[str, ...]  # local names of Code/Value and every Subcode/Value, outermost first
    reason: str
    detail: str

    def describe(self) -> str:
        codes = "/".join(self.codes) or "no code"
        text = self.reason or self.detail or "no reason given"
        return f"SOAP fault {codes}: {text}"


def parse_fault(fault: Element) -> FaultInfo:
    codes: list[str] = []
    code = fault.find("{*}Code")
    while code is not None:  # SOAP 1.2: Code/Value, Code/Subcode/Value, ...
        codes.append(_strip_prefix(code.findtext("{*}Value", "")))
        code = code.find("{*}Subcode")
    if not codes and fault.findtext("faultcode"):  # SOAP 1.1: unqualified children
        codes.append(_strip_prefix(fault.findtext("faultcode", "")))
    reason = " ".join(t.strip() for t in fault.xpath("./*[local-name()='Reason']/*/text()") if t.strip())
    reason = reason or (fault.findtext("faultstring") or "").strip()
    detail_el = fault.find("{*}Detail")
    if detail_el is None:
        detail_el = fault.find("detail")
    detail = " ".join(t.strip() for t in detail_el.itertext() if t.strip()) if detail_el is not None else ""
    return FaultInfo(codes=tuple(c for c in codes if c), reason=reason, detail=detail)


def _strip_prefix(value: str) -> str:
    return value.strip().rpartition(":")[2]


# ---------------------------------------------------------------- small readers


def _text(element: Element, path: str) -> str:
    """Stripped text at ``path``; "" when absent or empty."""
    found = element.find(path)
    return (found.text or "").strip() if found is not None else ""


def _required(element: Element, path: str, what: str) -> Element:
    found = element.find(path)
    if found is None:
        raise ParseError(f"missing {what} ({path.replace('{*}', '')})")
    return found


def _int(text: str, what: str) -> int:
    try:
        return int(float(text)) if text else 0
    except (ValueError, OverflowError):  # "abc", "NaN"; "INF", "1e400"
        raise ParseError(f"{what} is not a number: {text[:40]!r}") from None


def _float_or_none(text: str | None) -> float | None:
    """A finite number, or None when absent or unreadable (``NaN`` and ``INF`` included)."""
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_datetime(text: str | None) -> datetime | None:
    """An xsd:dateTime as an aware UTC datetime; None when absent or unreadable.

    Quirks handled: ``Z`` suffix, missing zone (taken as UTC), a space or ``-`` instead of ``T``.
    """
    if not text:
        return None
    value = text.strip()
    if len(value) > 10 and value[10] in " -":
        value = value[:10] + "T" + value[11:]
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# ---------------------------------------------------------------- device management


def parse_system_date_time(response: Element) -> datetime | None:
    """The camera's UTC clock from GetSystemDateAndTime; None when it reports no UTC time.

    Hours/minutes/seconds are added as a timedelta: some cameras overflow them (``00:61:16``).
    """
    utc = response.find("{*}SystemDateAndTime/{*}UTCDateTime")
    if utc is None:
        return None
    date, time = utc.find("{*}Date"), utc.find("{*}Time")
    if date is None or time is None:
        raise ParseError("UTCDateTime lacks Date or Time")
    try:
        day = datetime(
            _int(_text(date, "{*}Year"), "Year"),
            _int(_text(date, "{*}Month"), "Month"),
            _int(_text(date, "{*}Day"), "Day"),
            tzinfo=UTC,
        )
        return day + timedelta(
            hours=_int(_text(time, "{*}Hour"), "Hour"),
            minutes=_int(_text(time, "{*}Minute"), "Minute"),
            seconds=_int(_text(time, "{*}Second"), "Second"),
        )
    except (ValueError, OverflowError) as exc:  # month 13; an hour of 10^12 or past year 9999
        raise ParseError(f"UTCDateTime holds an impossible date or time: {exc}") from None


def parse_device_information(response: Element) -> DeviceIdentity:
    if local_name(response) != "GetDeviceInformationResponse":
        raise ParseError(f"expected GetDeviceInformationResponse, got {local_name(response)}")
    return DeviceIdentity(
        manufacturer=_text(response, "{*}Manufacturer"),
        model=_text(response, "{*}Model"),
        firmware=_text(response, "{*}FirmwareVersion"),
        serial=_text(response, "{*}SerialNumber"),
        hardware_id=_text(response, "{*}HardwareId"),
    )


@dataclass(slots=True)
class ServiceList:
    xaddrs: dict[str, str] = field(default_factory=dict)  # namespace -> XAddr, as the camera sent them
    pullpoint: bool | None = None  # the events service's WSPullPointSupport claim


def parse_services(response: Element) -> ServiceList:
    result = ServiceList()
    for service in response.findall("{*}Service"):
        namespace, xaddr = _text(service, "{*}Namespace"), _text(service, "{*}XAddr")
        if not namespace or not xaddr:
            logger.debug("GetServices entry without Namespace or XAddr skipped")
            continue
        result.xaddrs[namespace] = xaddr
        if namespace == ns.EVENTS:
            caps = service.find("{*}Capabilities/{*}Capabilities")
            if caps is not None and caps.get("WSPullPointSupport") is not None:
                result.pullpoint = caps.get("WSPullPointSupport", "").strip().lower() == "true"
    if not result.xaddrs:
        raise ParseError("GetServices listed no service with an address")
    return result


def parse_capabilities(response: Element) -> ServiceList:
    caps = _required(response, "{*}Capabilities", "Capabilities")
    result = ServiceList()
    categories = [c for c in caps if isinstance(c.tag, str)]
    extension = caps.find("{*}Extension")
    if extension is not None:
        categories += [c for c in extension if isinstance(c.tag, str)]
    for category in categories:
        namespace = ns.CAPABILITY_CATEGORIES.get(local_name(category))
        xaddr = _text(category, "{*}XAddr")
        if namespace is None or not xaddr:
            continue  # vendor extensions (hikCapabilities) and categories without an address
        result.xaddrs[namespace] = xaddr
        if namespace == ns.EVENTS and category.find("{*}WSPullPointSupport") is not None:
            result.pullpoint = _text(category, "{*}WSPullPointSupport").lower() == "true"
    if not result.xaddrs:
        raise ParseError("GetCapabilities listed no service with an address")
    return result


# ---------------------------------------------------------------- media


def normalise_encoding(value: str) -> str:
    key = value.strip().upper().replace(".", "").replace("-", "")
    return {"HEVC": "H265", "MJPEG": "JPEG", "MP4VES": "MPEG4"}.get(key, key)


def parse_profiles_media1(response: Element) -> list[MediaProfile]:
    profiles = []
    for node in response.findall("{*}Profiles"):
        encoder = node.find("{*}VideoEncoderConfiguration")
        source = _text(node, "{*}VideoSourceConfiguration/{*}SourceToken")
        profiles.append(_profile(node, encoder, source, ptz=node.find("{*}PTZConfiguration") is not None))
    return profiles


def parse_profiles_media2(response: Element) -> list[MediaProfile]:
    profiles = []
    for node in response.findall("{*}Profiles"):
        configs = node.find("{*}Configurations")
        if configs is None:
            profiles.append(_profile(node, None, "", ptz=False))
            continue
        source = _text(configs, "{*}VideoSource/{*}SourceToken")
        profiles.append(_profile(node, configs.find("{*}VideoEncoder"), source, ptz=configs.find("{*}PTZ") is not None))
    return profiles


def _profile(node: Element, encoder: Element | None, source: str, *, ptz: bool) -> MediaProfile:
    token = node.get("token")
    if not token:
        raise ParseError("a media profile has no token")
    name = _text(node, "{*}Name")
    if encoder is None:
        return MediaProfile(token, name, encoding="", width=0, height=0, fps=0.0, ptz=ptz, video_source=source)
    fps = _float_or_none(_text(encoder, "{*}RateControl/{*}FrameRateLimit"))
    width = _int(_text(encoder, "{*}Resolution/{*}Width"), f"profile {token} width")
    height = _int(_text(encoder, "{*}Resolution/{*}Height"), f"profile {token} height")
    if width < 0 or height < 0:
        raise ParseError(f"profile {token} has a negative resolution {width}x{height}")
    return MediaProfile(
        token=token,
        name=name,
        encoding=normalise_encoding(_text(encoder, "{*}Encoding")),
        width=width,
        height=height,
        fps=fps if fps is not None and fps > 0 else 0.0,  # unreadable or absurd: unknown
        ptz=ptz,
        video_source=source,
    )


def parse_media_uri(response: Element) -> str:
    """The Uri of GetStreamUri/GetSnapshotUri (Media1 wraps it in MediaUri, Media2 does not)."""
    uri = response.find("{*}MediaUri/{*}Uri")
    if uri is None:
        uri = response.find("{*}Uri")
    if uri is None or not (uri.text or "").strip():
        raise ParseError(f"{local_name(response)} holds no Uri")
    return (uri.text or "").strip()


# ---------------------------------------------------------------- PTZ


def parse_presets(response: Element) -> list[PtzPreset]:
    """Presets, in the camera's order. Hand-walked (no ElementPath): PTZ domes list 255 slots."""
    presets = []
    for node in response:
        if not _is(node, "Preset"):
            continue
        token = node.get("token")
        if not token:
            logger.debug("PTZ preset without a token skipped")
            continue
        name, pan, tilt, zoom = "", None, None, None
        for child in node:
            if _is(child, "Name"):
                name = (child.text or "").strip()
            elif _is(child, "PTZPosition"):
                for axis in child:
                    if _is(axis, "PanTilt"):
                        pan, tilt = _float_or_none(axis.get("x")), _float_or_none(axis.get("y"))
                    elif _is(axis, "Zoom"):
                        zoom = _float_or_none(axis.get("x"))
        presets.append(PtzPreset(token=token, name=name, pan=pan, tilt=tilt, zoom=zoom))
    return presets


def _is(element: Element, name: str) -> bool:
    """``element`` is named ``name`` in any namespace (comments and PIs are not)."""
    tag = element.tag
    return isinstance(tag, str) and (tag == name or tag.endswith("}" + name))


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    address: str
    reference_parameters: tuple[Element, ...]  # to echo as SOAP headers (WS-Addressing)
    current_time: datetime | None
    termination_time: datetime | None


def parse_subscription(response: Element) -> SubscriptionInfo:
    reference = _required(response, "{*}SubscriptionReference", "SubscriptionReference")
    address = _text(reference, "{*}Address")
    if not address:
        raise ParseError("the subscription reference has no Address")
    parameters = reference.find("{*}ReferenceParameters")
    return SubscriptionInfo(
        address=address,
        reference_parameters=tuple(p for p in parameters if isinstance(p.tag, str)) if parameters is not None else (),
        current_time=parse_datetime(_text(response, "{*}CurrentTime")),
        termination_time=parse_datetime(_text(response, "{*}TerminationTime")),
    )


def parse_termination(response: Element) -> tuple[datetime | None, datetime | None]:
    """(CurrentTime, TerminationTime) of a Renew or PullMessages answer."""
    return parse_datetime(_text(response, "{*}CurrentTime")), parse_datetime(_text(response, "{*}TerminationTime"))


@dataclass(frozen=True, slots=True)
class PullResult:
    current_time: datetime | None
    termination_time: datetime | None
    events: tuple[CameraEvent, ...]
    skipped: int  # notification messages that could not be read (logged)


def parse_pull_messages(response: Element, camera: str) -> PullResult:
    current, termination = parse_termination(response)
    events: list[CameraEvent] = []
    skipped = 0
    for message in response.findall("{*}NotificationMessage"):
        try:
            events.append(parse_notification(message, camera))
        except ParseError as exc:
            skipped += 1
            logger.warning("camera %s: notification skipped: %s", camera, exc)
    return PullResult(current, termination, tuple(events), skipped)


def parse_notification(message: Element, camera: str) -> CameraEvent:
    topic_el = _required(message, "{*}Topic", "Topic")
    topic = normalise_topic((topic_el.text or "").strip(), topic_el.nsmap)
    if not topic:
        raise ParseError("empty Topic")
    body = message.find("{*}Message/{*}Message")
    if body is None:
        raise ParseError(f"notification {topic} has no tt:Message")
    operation = body.get("PropertyOperation")
    return CameraEvent(
        camera=camera,
        topic=topic,
        source=_simple_items(body.find("{*}Source")),
        data=_simple_items(body.find("{*}Data")),
        key=_simple_items(body.find("{*}Key")),
        utc_time=parse_datetime(body.get("UtcTime")),
        property_operation=operation.strip() if operation else None,
    )


def _simple_items(container: Element | None) -> dict[str, str]:
    if container is None:
        return {}
    return {item.get("Name", ""): item.get("Value", "") for item in container.findall("{*}SimpleItem")}


def normalise_topic(text: str, nsmap: dict[str | None, str]) -> str:
    """``xyz:RuleEngine/...`` -> ``tns1:RuleEngine/...`` when ``xyz`` is the ONVIF topic namespace."""
    prefix, sep, rest = text.partition(":")
    if sep and nsmap.get(prefix) == ns.ONVIF_TOPICS:
        return f"tns1:{rest}"
    return text
