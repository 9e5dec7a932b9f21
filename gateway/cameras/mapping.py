"""From what the ONVIF connector learned (``ProbeResult``) or failed with (``OnvifError``) to the
registry's ``CameraRecord`` fields and a camera status.

Status by error class (the connector's tree)::

    Unreachable, Timeout          -> offline       (power, network, address, port)
    AuthFailed, ClockSkew         -> auth_failed   (credentials; the camera's clock)
    NotOnvif, Unsupported         -> unsupported   (wrong port, ONVIF disabled, a missing service)
    MalformedResponse, DeviceFault-> degraded      (it answers, but brokenly)
    TlsFailed                     -> degraded      (HTTPS certificate not trusted: onvif.ca_bundle)
"""

from __future__ import annotations

from datetime import datetime

from xueliang.connectors.onvif import (
    AuthFailed,
    DeviceFault,
    MalformedResponse,
    NotOnvif,
    OnvifError,
    ProbeResult,
    Timeout,
    TlsFailed,
    Unreachable,
    Unsupported,
)
from xueliang.connectors.onvif.models import MediaProfile
from xueliang.gateway.models import CameraRecord, CameraStatus, StreamProfile

STATUS_BY_ERROR: tuple[tuple[type[OnvifError], CameraStatus], ...] = (
    (Unreachable, CameraStatus.OFFLINE),
    (Timeout, CameraStatus.OFFLINE),
    (AuthFailed, CameraStatus.AUTH_FAILED),  # ClockSkew is an AuthFailed
    (NotOnvif, CameraStatus.UNSUPPORTED),
    (Unsupported, CameraStatus.UNSUPPORTED),
    (MalformedResponse, CameraStatus.DEGRADED),
    (DeviceFault, CameraStatus.DEGRADED),
    (TlsFailed, CameraStatus.DEGRADED),
)


def status_for(error: OnvifError) -> CameraStatus:
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return CameraStatus.DEGRADED


def describe(error: OnvifError) -> str:
    """What went wrong and what to do, Chinese first, English second."""
    return f"{error.message_zh} / {error}"


def stream_profile(profile: MediaProfile) -> StreamProfile:
    return StreamProfile(
        token=profile.token,
        name=profile.name,
        encoding=profile.encoding,
        width=profile.width,
        height=profile.height,
        fps=profile.fps,
        stream_uri=profile.stream_uri,
        snapshot_uri=profile.snapshot_uri,
        ptz=profile.ptz,
    )


def chosen_profiles(result: ProbeResult) -> tuple[str, str]:
    """(analysis, live) tokens: the connector's choice (a sub-stream for analysis when there is one,
    the main stream live); when it chose nothing, the first profile with a stream URI."""
    fallback = next((p.token for p in result.profiles if p.stream_uri), "")
    fallback = fallback or (result.profiles[0].token if result.profiles else "")
    return result.analysis_profile or fallback, result.live_profile or fallback


def apply_probe(record: CameraRecord, result: ProbeResult, now: datetime) -> CameraRecord:
    """``record`` with everything the probe learned; online, seen now, no error."""
    analysis, live = chosen_profiles(result)
    identity = result.identity
    return record.model_copy(
        update={
            "manufacturer": identity.manufacturer,
            "model": identity.model,
            "firmware": identity.firmware,
            "serial": identity.serial,
            "hardware_id": identity.hardware_id,
            "profiles": [stream_profile(p) for p in result.profiles],
            "analysis_profile": analysis,
            "live_profile": live,
            "ptz": result.ptz,
            "ptz_presets": {p.token: p.name for p in result.presets},
            "status": CameraStatus.ONLINE,
            "last_seen": now,
            "last_error": "",
            "clock_offset_s": result.clock_offset_s,
            "updated_at": now,
        }
    )


def apply_failure(record: CameraRecord, error: OnvifError, now: datetime) -> CameraRecord:
    """``record`` marked with the status ``error`` implies; what an earlier probe learned is kept."""
    update: dict[str, object] = {"status": status_for(error), "last_error": describe(error), "updated_at": now}
    if not isinstance(error, Unreachable | Timeout):
        update["last_seen"] = now  # it answered, even if badly
    return record.model_copy(update=update)


def probe_notes(result: ProbeResult, max_clock_skew_s: float) -> list[str]:
    """Things a technician should know about a camera that was provisioned fine."""
    notes: list[str] = []
    if abs(result.clock_offset_s) > max_clock_skew_s:
        notes.append(
            f"摄像机时钟偏差 {result.clock_offset_s:+.0f} 秒，请配置 NTP / camera clock is "
            f"{result.clock_offset_s:+.0f} s off: requests are signed with the offset; set the camera's NTP server"
        )
    analysis, _live = chosen_profiles(result)
    profile = result.profile(analysis)
    if not result.profiles:
        notes.append("没有媒体配置 / the camera reports no media profiles: nothing to patrol")
    elif profile is not None and not profile.stream_uri:
        notes.append("分析码流无 RTSP 地址 / no stream URI for the analysis profile: re-probe or check the camera")
    if profile is not None and not profile.snapshot_uri:
        notes.append("无抓图地址 / no snapshot URI: patrol will take frames from the RTSP stream")
    if result.used_capabilities_fallback:
        notes.append("GetServices unsupported: services read with GetCapabilities")
    return notes
