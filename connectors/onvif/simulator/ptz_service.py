"""PTZ service (tptz): a head that really moves, and a log of every command received."""

from __future__ import annotations

import itertools
import time

from lxml import etree

from xueliang.connectors.onvif.simulator import ptz_xml
from xueliang.connectors.onvif.simulator.durations import parse_duration
from xueliang.connectors.onvif.simulator.errors import SoapFault
from xueliang.connectors.onvif.simulator.models import PtzCommand, PtzPreset, PtzState
from xueliang.connectors.onvif.simulator.soap_context import SoapContext, SoapHandler
from xueliang.connectors.onvif.simulator.soap_request import child, child_text
from xueliang.connectors.onvif.simulator.soap_xml import NS_PTZ, text, xs_datetime

DEFAULT_MOVE_TIMEOUT_S = 10.0
MAX_PRESETS = 256
_preset_ids = itertools.count(100)


def _clamp(value: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, value))


def current_position(state: PtzState, now: float) -> tuple[float, float, float, bool]:
    """(pan, tilt, zoom, moving) at monotonic time ``now``."""
    if state.move_until <= 0:
        return state.pan, state.tilt, state.zoom, False
    elapsed = max(0.0, min(now, state.move_until) - state.move_started)
    vx, vy, vz = state.velocity
    return (
        _clamp(state.pan + vx * elapsed, -1, 1),
        _clamp(state.tilt + vy * elapsed, -1, 1),
        _clamp(state.zoom + vz * elapsed, 0, 1),
        now < state.move_until,
    )


def _settle(state: PtzState, now: float) -> None:
    state.pan, state.tilt, state.zoom, _ = current_position(state, now)
    state.velocity = (0.0, 0.0, 0.0)
    state.move_until = 0.0
    state.move_started = now


def _state(ctx: SoapContext) -> PtzState:
    state = ctx.camera.ptz
    if state is None:
        raise SoapFault("Receiver", ("ter:ActionNotSupported", "ter:PTZNotSupported"), "this camera has no PTZ")
    return state


def _vector(element: etree._Element | None) -> tuple[float | None, float | None, float | None]:
    if element is None:
        return None, None, None
    pan_tilt, zoom = child(element, "PanTilt"), child(element, "Zoom")
    try:
        pan = float(pan_tilt.get("x", "0")) if pan_tilt is not None else None
        tilt = float(pan_tilt.get("y", "0")) if pan_tilt is not None else None
        z = float(zoom.get("x", "0")) if zoom is not None else None
    except ValueError as exc:
        raise SoapFault("Sender", ("ter:InvalidArgVal", "ter:InvalidPosition"), f"not a number: {exc}") from exc
    return pan, tilt, z


def _log(state: PtzState, command: PtzCommand) -> None:
    if len(state.commands) == state.commands.maxlen:
        state.commands_dropped += 1
    state.commands.append(command)


def _profile(ctx: SoapContext) -> str:
    return child_text(ctx.request.body, "ProfileToken") or ""


def continuous_move(ctx: SoapContext) -> str:
    """Start moving at the given velocity until Stop or the timeout."""
    state, now = _state(ctx), time.monotonic()
    pan, tilt, zoom = _vector(child(ctx.request.body, "Velocity"))
    timeout_text = child_text(ctx.request.body, "Timeout")
    try:
        timeout = parse_duration(timeout_text) if timeout_text else DEFAULT_MOVE_TIMEOUT_S
    except ValueError as exc:
        raise SoapFault("Sender", ("ter:InvalidArgVal", "ter:TimeoutNotSupported"), str(exc)) from exc
    _settle(state, now)
    state.velocity = (pan or 0.0, tilt or 0.0, zoom or 0.0)
    state.move_until = now + timeout
    _log(state, PtzCommand(time.time(), "ContinuousMove", _profile(ctx), pan, tilt, zoom, timeout_s=timeout))
    return "<tptz:ContinuousMoveResponse/>"


def stop(ctx: SoapContext) -> str:
    """Stop every movement."""
    state = _state(ctx)
    _settle(state, time.monotonic())
    _log(state, PtzCommand(time.time(), "Stop", _profile(ctx)))
    return "<tptz:StopResponse/>"


def absolute_move(ctx: SoapContext) -> str:
    """Jump to a position in the generic space."""
    state = _state(ctx)
    pan, tilt, zoom = _vector(child(ctx.request.body, "Position"))
    _settle(state, time.monotonic())
    state.pan = _clamp(pan if pan is not None else state.pan, -1, 1)
    state.tilt = _clamp(tilt if tilt is not None else state.tilt, -1, 1)
    state.zoom = _clamp(zoom if zoom is not None else state.zoom, 0, 1)
    _log(state, PtzCommand(time.time(), "AbsoluteMove", _profile(ctx), pan, tilt, zoom))
    return "<tptz:AbsoluteMoveResponse/>"


def relative_move(ctx: SoapContext) -> str:
    """Move by a translation."""
    state = _state(ctx)
    pan, tilt, zoom = _vector(child(ctx.request.body, "Translation"))
    _settle(state, time.monotonic())
    state.pan = _clamp(state.pan + (pan or 0.0), -1, 1)
    state.tilt = _clamp(state.tilt + (tilt or 0.0), -1, 1)
    state.zoom = _clamp(state.zoom + (zoom or 0.0), 0, 1)
    _log(state, PtzCommand(time.time(), "RelativeMove", _profile(ctx), pan, tilt, zoom))
    return "<tptz:RelativeMoveResponse/>"


def goto_preset(ctx: SoapContext) -> str:
    """Move to a stored preset."""
    state = _state(ctx)
    token = child_text(ctx.request.body, "PresetToken") or ""
    preset = state.presets.get(token)
    if preset is None:
        raise SoapFault("Sender", ("ter:InvalidArgVal", "ter:NoToken"), f"preset {token!r} does not exist")
    _settle(state, time.monotonic())
    state.pan, state.tilt, state.zoom = preset.pan, preset.tilt, preset.zoom
    _log(state, PtzCommand(time.time(), "GotoPreset", _profile(ctx), preset_token=token))
    return "<tptz:GotoPresetResponse/>"


def goto_home_position(ctx: SoapContext) -> str:
    """Move to the home position (centre, wide)."""
    state = _state(ctx)
    _settle(state, time.monotonic())
    state.pan = state.tilt = state.zoom = 0.0
    _log(state, PtzCommand(time.time(), "GotoHomePosition", _profile(ctx)))
    return "<tptz:GotoHomePositionResponse/>"


def set_preset(ctx: SoapContext) -> str:
    """Store the current position as a preset."""
    state = _state(ctx)
    _settle(state, time.monotonic())
    token = child_text(ctx.request.body, "PresetToken") or str(next(_preset_ids))
    if token not in state.presets and len(state.presets) >= MAX_PRESETS:
        raise SoapFault("Receiver", ("ter:Action", "ter:TooManyPresets"), "preset memory is full")
    name = child_text(ctx.request.body, "PresetName") or f"preset {token}"
    state.presets[token] = PtzPreset(token, name, state.pan, state.tilt, state.zoom)
    _log(state, PtzCommand(time.time(), "SetPreset", _profile(ctx), preset_token=token))
    return f"<tptz:SetPresetResponse><tptz:PresetToken>{text(token)}</tptz:PresetToken></tptz:SetPresetResponse>"


def remove_preset(ctx: SoapContext) -> str:
    """Forget a preset."""
    state = _state(ctx)
    token = child_text(ctx.request.body, "PresetToken") or ""
    if state.presets.pop(token, None) is None:
        raise SoapFault("Sender", ("ter:InvalidArgVal", "ter:NoToken"), f"preset {token!r} does not exist")
    return "<tptz:RemovePresetResponse/>"


def get_presets(ctx: SoapContext) -> str:
    """Every stored preset with its position."""
    return f"<tptz:GetPresetsResponse>{ptz_xml.presets(_state(ctx))}</tptz:GetPresetsResponse>"


def get_status(ctx: SoapContext) -> str:
    """Position, move status and the camera's time."""
    state = _state(ctx)
    pan, tilt, zoom, moving = current_position(state, time.monotonic())
    vx, vy, vz = state.velocity
    pan_tilt = "MOVING" if moving and (vx or vy) else "IDLE"
    zooming = "MOVING" if moving and vz else "IDLE"
    return (
        f"<tptz:GetStatusResponse><tptz:PTZStatus><tt:Position>{ptz_xml.position(pan, tilt, zoom)}</tt:Position>"
        f"<tt:MoveStatus><tt:PanTilt>{pan_tilt}</tt:PanTilt><tt:Zoom>{zooming}</tt:Zoom></tt:MoveStatus>"
        f"<tt:UtcTime>{xs_datetime(ctx.now)}</tt:UtcTime></tptz:PTZStatus></tptz:GetStatusResponse>"
    )


def _configuration(response: str) -> str:
    return (
        f'<tptz:{response}><tptz:PTZConfiguration token="{ptz_xml.PTZ_CONFIG_TOKEN}">'
        f"{ptz_xml.configuration_body()}</tptz:PTZConfiguration></tptz:{response}>"
    )


def _node(response: str) -> str:
    return (
        f'<tptz:{response}><tptz:PTZNode token="{ptz_xml.PTZ_NODE_TOKEN}" FixedHomePosition="false">'
        f"{ptz_xml.node_body(MAX_PRESETS)}</tptz:PTZNode></tptz:{response}>"
    )


def get_configurations(ctx: SoapContext) -> str:
    """The one PTZ configuration."""
    _state(ctx)
    return _configuration("GetConfigurationsResponse")


def get_configuration(ctx: SoapContext) -> str:
    """The PTZ configuration by token."""
    _state(ctx)
    return _configuration("GetConfigurationResponse")


def get_nodes(ctx: SoapContext) -> str:
    """The one PTZ node and its spaces."""
    _state(ctx)
    return _node("GetNodesResponse")


def get_node(ctx: SoapContext) -> str:
    """The PTZ node by token."""
    _state(ctx)
    return _node("GetNodeResponse")


HANDLERS: dict[tuple[str, str], SoapHandler] = {
    (NS_PTZ, "ContinuousMove"): continuous_move,
    (NS_PTZ, "Stop"): stop,
    (NS_PTZ, "AbsoluteMove"): absolute_move,
    (NS_PTZ, "RelativeMove"): relative_move,
    (NS_PTZ, "GotoPreset"): goto_preset,
    (NS_PTZ, "GotoHomePosition"): goto_home_position,
    (NS_PTZ, "SetPreset"): set_preset,
    (NS_PTZ, "RemovePreset"): remove_preset,
    (NS_PTZ, "GetPresets"): get_presets,
    (NS_PTZ, "GetStatus"): get_status,
    (NS_PTZ, "GetConfigurations"): get_configurations,
    (NS_PTZ, "GetConfiguration"): get_configuration,
    (NS_PTZ, "GetNodes"): get_nodes,
    (NS_PTZ, "GetNode"): get_node,
}
