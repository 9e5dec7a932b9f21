"""Media (trt, ver10) and Media2 (tr2, ver20) services: profiles, stream and snapshot URIs."""

from __future__ import annotations

from xueliang.connectors.onvif.simulator.errors import SoapFault
from xueliang.connectors.onvif.simulator.ptz_xml import PTZ_CONFIG_TOKEN, configuration_body
from xueliang.connectors.onvif.simulator.soap_context import SoapContext, SoapHandler, StreamInfo
from xueliang.connectors.onvif.simulator.soap_request import child_text
from xueliang.connectors.onvif.simulator.soap_xml import NS_MEDIA, NS_MEDIA2

MAIN, SUB = "Profile_1", "Profile_2"
CHANNELS = {MAIN: "101", SUB: "102"}
SNAPSHOT_PATH = "/onvif/snapshot/1.jpg"
_MULTICAST = (
    "<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address>"
    "<tt:Port>0</tt:Port><tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast>"
)


def _profile_params(streams: StreamInfo, token: str) -> tuple[str, int, int, int, int, int]:
    if token == MAIN:
        (w, h), fps, gop, bitrate = streams.main_size, streams.main_fps, streams.gop_main, 4096
        return "mainStream", w, h, fps, gop, bitrate
    (w, h), fps, gop, bitrate = streams.sub_size, streams.sub_fps, streams.gop_sub, 512
    return "subStream", w, h, fps, gop, bitrate


def _source_config(streams: StreamInfo) -> str:
    w, h = streams.main_size
    return (
        "<tt:Name>VideoSourceConfig</tt:Name><tt:UseCount>2</tt:UseCount><tt:SourceToken>VideoSource_1</tt:SourceToken>"
        f'<tt:Bounds x="0" y="0" width="{w}" height="{h}"/>'
    )


def _token(ctx: SoapContext) -> str:
    token = child_text(ctx.request.body, "ProfileToken") or ""
    if token not in CHANNELS:
        raise SoapFault("Sender", ("ter:InvalidArgVal", "ter:NoProfile"), f"profile {token!r} does not exist")
    return token


def _media1_profile(ctx: SoapContext, token: str) -> str:
    name, w, h, fps, gop, bitrate = _profile_params(ctx.streams, token)
    ptz = (
        f'<tt:PTZConfiguration token="{PTZ_CONFIG_TOKEN}">{configuration_body()}</tt:PTZConfiguration>'
        if ctx.camera.has_ptz
        else ""
    )
    return (
        f'<trt:Profiles token="{token}" fixed="true"><tt:Name>{name}</tt:Name>'
        f'<tt:VideoSourceConfiguration token="VideoSourceConfig_1">{_source_config(ctx.streams)}'
        f'</tt:VideoSourceConfiguration><tt:VideoEncoderConfiguration token="VideoEncoder_{token[-1]}">'
        f"<tt:Name>VideoEncoder_{token[-1]}</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>"
        f"<tt:Resolution><tt:Width>{w}</tt:Width><tt:Height>{h}</tt:Height></tt:Resolution><tt:Quality>4</tt:Quality>"
        f"<tt:RateControl><tt:FrameRateLimit>{fps}</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval>"
        f"<tt:BitrateLimit>{bitrate}</tt:BitrateLimit></tt:RateControl><tt:H264><tt:GovLength>{gop}</tt:GovLength>"
        f"<tt:H264Profile>Baseline</tt:H264Profile></tt:H264>{_MULTICAST}<tt:SessionTimeout>PT60S</tt:SessionTimeout>"
        f"</tt:VideoEncoderConfiguration>{ptz}</trt:Profiles>"
    )


def get_profiles(ctx: SoapContext) -> str:
    """Media1: the main and the sub profile."""
    body = _media1_profile(ctx, MAIN) + _media1_profile(ctx, SUB)
    return f"<trt:GetProfilesResponse>{body}</trt:GetProfilesResponse>"


def get_profile(ctx: SoapContext) -> str:
    """Media1: one profile by token."""
    profile = _media1_profile(ctx, _token(ctx)).replace("trt:Profiles", "trt:Profile")
    return f"<trt:GetProfileResponse>{profile}</trt:GetProfileResponse>"


def _stream_uri(ctx: SoapContext, token: str) -> str:
    return f"{ctx.rtsp_base}/Streaming/Channels/{CHANNELS[token]}"


def _snapshot_uri(ctx: SoapContext) -> str:
    if ctx.camera.faults.no_snapshot:
        raise SoapFault("Receiver", ("ter:ActionNotSupported",), "snapshots are not supported by this device")
    return ctx.http_base + SNAPSHOT_PATH


def _media_uri(uri: str, timeout: str) -> str:
    return (
        f"<trt:MediaUri><tt:Uri>{uri}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
        f"<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>{timeout}</tt:Timeout></trt:MediaUri>"
    )


def get_stream_uri(ctx: SoapContext) -> str:
    """Media1: the RTSP URI of a profile (channel 101 main, 102 sub)."""
    uri = _stream_uri(ctx, _token(ctx))
    return f"<trt:GetStreamUriResponse>{_media_uri(uri, 'PT60S')}</trt:GetStreamUriResponse>"


def get_snapshot_uri(ctx: SoapContext) -> str:
    """Media1: the HTTP URI of the JPEG snapshot (digest authentication)."""
    _token(ctx)
    return f"<trt:GetSnapshotUriResponse>{_media_uri(_snapshot_uri(ctx), 'PT0S')}</trt:GetSnapshotUriResponse>"


def get_video_sources(ctx: SoapContext) -> str:
    """Media1: the one video source."""
    w, h = ctx.streams.main_size
    return (
        '<trt:GetVideoSourcesResponse><trt:VideoSources token="VideoSource_1">'
        f"<tt:Framerate>{ctx.streams.main_fps}</tt:Framerate><tt:Resolution><tt:Width>{w}</tt:Width>"
        f"<tt:Height>{h}</tt:Height></tt:Resolution></trt:VideoSources></trt:GetVideoSourcesResponse>"
    )


def _media2_profile(ctx: SoapContext, token: str) -> str:
    name, w, h, fps, gop, bitrate = _profile_params(ctx.streams, token)
    ptz = f'<tr2:PTZ token="{PTZ_CONFIG_TOKEN}">{configuration_body()}</tr2:PTZ>' if ctx.camera.has_ptz else ""
    return (
        f'<tr2:Profiles token="{token}" fixed="true"><tr2:Name>{name}</tr2:Name><tr2:Configurations>'
        f'<tr2:VideoSource token="VideoSourceConfig_1">{_source_config(ctx.streams)}</tr2:VideoSource>'
        f'<tr2:VideoEncoder token="VideoEncoder_{token[-1]}" GovLength="{gop}" Profile="Baseline">'
        f"<tt:Name>VideoEncoder_{token[-1]}</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>"
        f"<tt:Resolution><tt:Width>{w}</tt:Width><tt:Height>{h}</tt:Height></tt:Resolution>"
        f'<tt:RateControl ConstantBitRate="false"><tt:FrameRateLimit>{fps}</tt:FrameRateLimit>'
        f"<tt:BitrateLimit>{bitrate}</tt:BitrateLimit></tt:RateControl>{_MULTICAST}<tt:Quality>4</tt:Quality>"
        f"</tr2:VideoEncoder>{ptz}</tr2:Configurations></tr2:Profiles>"
    )


def get_profiles2(ctx: SoapContext) -> str:
    """Media2: profiles, all or the one named by Token."""
    wanted = child_text(ctx.request.body, "Token")
    if wanted is not None and wanted not in CHANNELS:
        raise SoapFault("Sender", ("ter:InvalidArgVal", "ter:NoProfile"), f"profile {wanted!r} does not exist")
    tokens = [wanted] if wanted else [MAIN, SUB]
    return f"<tr2:GetProfilesResponse>{''.join(_media2_profile(ctx, t) for t in tokens)}</tr2:GetProfilesResponse>"


def get_stream_uri2(ctx: SoapContext) -> str:
    """Media2: the RTSP URI of a profile."""
    return f"<tr2:GetStreamUriResponse><tr2:Uri>{_stream_uri(ctx, _token(ctx))}</tr2:Uri></tr2:GetStreamUriResponse>"


def get_snapshot_uri2(ctx: SoapContext) -> str:
    """Media2: the snapshot URI."""
    _token(ctx)
    return f"<tr2:GetSnapshotUriResponse><tr2:Uri>{_snapshot_uri(ctx)}</tr2:Uri></tr2:GetSnapshotUriResponse>"


HANDLERS: dict[tuple[str, str], SoapHandler] = {
    (NS_MEDIA, "GetProfiles"): get_profiles,
    (NS_MEDIA, "GetProfile"): get_profile,
    (NS_MEDIA, "GetStreamUri"): get_stream_uri,
    (NS_MEDIA, "GetSnapshotUri"): get_snapshot_uri,
    (NS_MEDIA, "GetVideoSources"): get_video_sources,
    (NS_MEDIA2, "GetProfiles"): get_profiles2,
    (NS_MEDIA2, "GetStreamUri"): get_stream_uri2,
    (NS_MEDIA2, "GetSnapshotUri"): get_snapshot_uri2,
}
