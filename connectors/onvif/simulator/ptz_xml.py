"""XML fragments describing the PTZ node and configuration (shared by the media and PTZ services)."""

from __future__ import annotations

from xueliang.connectors.onvif.simulator.models import PtzState
from xueliang.connectors.onvif.simulator.soap_xml import flt, text

PTZ_NODE_TOKEN = "PTZNode_1"
PTZ_CONFIG_TOKEN = "PTZConfig_1"
SPACE = "http://www.onvif.org/ver10/tptz/"
PT_POSITION = SPACE + "PanTiltSpaces/PositionGenericSpace"
Z_POSITION = SPACE + "ZoomSpaces/PositionGenericSpace"
PT_TRANSLATION = SPACE + "PanTiltSpaces/TranslationGenericSpace"
Z_TRANSLATION = SPACE + "ZoomSpaces/TranslationGenericSpace"
PT_VELOCITY = SPACE + "PanTiltSpaces/VelocityGenericSpace"
Z_VELOCITY = SPACE + "ZoomSpaces/VelocityGenericSpace"
PT_SPEED = SPACE + "PanTiltSpaces/GenericSpeedSpace"
Z_SPEED = SPACE + "ZoomSpaces/ZoomGenericSpeedSpace"


def _range(lo: float, hi: float, axes: str = "XY") -> str:
    out = f"<tt:XRange><tt:Min>{flt(lo)}</tt:Min><tt:Max>{flt(hi)}</tt:Max></tt:XRange>"
    if "Y" in axes:
        out += f"<tt:YRange><tt:Min>{flt(lo)}</tt:Min><tt:Max>{flt(hi)}</tt:Max></tt:YRange>"
    return out


def _space(tag: str, uri: str, lo: float, hi: float, axes: str) -> str:
    return f"<tt:{tag}><tt:URI>{uri}</tt:URI>{_range(lo, hi, axes)}</tt:{tag}>"


def configuration_body() -> str:
    """Children of a PTZConfiguration element (Name, UseCount, NodeToken, default spaces, limits)."""
    return (
        f"<tt:Name>PTZ</tt:Name><tt:UseCount>2</tt:UseCount><tt:NodeToken>{PTZ_NODE_TOKEN}</tt:NodeToken>"
        f"<tt:DefaultAbsolutePantTiltPositionSpace>{PT_POSITION}</tt:DefaultAbsolutePantTiltPositionSpace>"
        f"<tt:DefaultAbsoluteZoomPositionSpace>{Z_POSITION}</tt:DefaultAbsoluteZoomPositionSpace>"
        f"<tt:DefaultRelativePanTiltTranslationSpace>{PT_TRANSLATION}</tt:DefaultRelativePanTiltTranslationSpace>"
        f"<tt:DefaultRelativeZoomTranslationSpace>{Z_TRANSLATION}</tt:DefaultRelativeZoomTranslationSpace>"
        f"<tt:DefaultContinuousPanTiltVelocitySpace>{PT_VELOCITY}</tt:DefaultContinuousPanTiltVelocitySpace>"
        f"<tt:DefaultContinuousZoomVelocitySpace>{Z_VELOCITY}</tt:DefaultContinuousZoomVelocitySpace>"
        f'<tt:DefaultPTZSpeed><tt:PanTilt x="0.500000" y="0.500000" space="{PT_SPEED}"/>'
        f'<tt:Zoom x="0.500000" space="{Z_SPEED}"/></tt:DefaultPTZSpeed>'
        "<tt:DefaultPTZTimeout>PT10S</tt:DefaultPTZTimeout>"
        f"<tt:PanTiltLimits>{_space('Range', PT_POSITION, -1, 1, 'XY')}</tt:PanTiltLimits>"
        f"<tt:ZoomLimits>{_space('Range', Z_POSITION, 0, 1, 'X')}</tt:ZoomLimits>"
    )


def node_body(max_presets: int) -> str:
    """Children of a PTZNode element."""
    spaces = (
        _space("AbsolutePanTiltPositionSpace", PT_POSITION, -1, 1, "XY")
        + _space("AbsoluteZoomPositionSpace", Z_POSITION, 0, 1, "X")
        + _space("RelativePanTiltTranslationSpace", PT_TRANSLATION, -1, 1, "XY")
        + _space("RelativeZoomTranslationSpace", Z_TRANSLATION, -1, 1, "X")
        + _space("ContinuousPanTiltVelocitySpace", PT_VELOCITY, -1, 1, "XY")
        + _space("ContinuousZoomVelocitySpace", Z_VELOCITY, -1, 1, "X")
        + _space("PanTiltSpeedSpace", PT_SPEED, 0, 1, "X")
        + _space("ZoomSpeedSpace", Z_SPEED, 0, 1, "X")
    )
    return (
        f"<tt:Name>PTZNode</tt:Name><tt:SupportedPTZSpaces>{spaces}</tt:SupportedPTZSpaces>"
        f"<tt:MaximumNumberOfPresets>{max_presets}</tt:MaximumNumberOfPresets><tt:HomeSupported>true</tt:HomeSupported>"
    )


def position(pan: float, tilt: float, zoom: float) -> str:
    """Children of a PTZVector in the generic position spaces."""
    return (
        f'<tt:PanTilt x="{flt(pan)}" y="{flt(tilt)}" space="{PT_POSITION}"/>'
        f'<tt:Zoom x="{flt(zoom)}" space="{Z_POSITION}"/>'
    )


def presets(state: PtzState) -> str:
    """tptz:Preset elements of every stored preset."""
    return "".join(
        f'<tptz:Preset token="{text(p.token)}"><tt:Name>{text(p.name)}</tt:Name>'
        f"<tt:PTZPosition>{position(p.pan, p.tilt, p.zoom)}</tt:PTZPosition></tptz:Preset>"
        for p in state.presets.values()
    )
