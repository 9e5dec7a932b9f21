"""Just enough H.264 bitstream handling for a passthrough relay (Annex B, ITU-T H.264 section 7.4.1).

Cameras send SPS/PPS in band before each IDR, or only out of band (RTSP ``sprop-parameter-sets``,
which FFmpeg hands over as the stream's extradata). A new viewer starts at the cached IDR, so that
IDR must carry its parameter sets: ``with_parameter_sets`` puts them in front when they are missing.
"""

from __future__ import annotations

from collections.abc import Iterator

START_CODE = b"\x00\x00\x00\x01"

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9


def split_nals(data: bytes) -> Iterator[bytes]:
    """The NAL units of an Annex B buffer, without their start codes."""
    i = data.find(b"\x00\x00\x01")
    while i != -1:
        start = i + 3
        nxt = data.find(b"\x00\x00\x01", start)
        if nxt == -1:
            yield data[start:]
            return
        end = nxt - 1 if data[nxt - 1] == 0 else nxt
        if end > start:
            yield data[start:end]
        i = nxt


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F if nal else 0


def nal_types(data: bytes) -> list[int]:
    return [nal_type(nal) for nal in split_nals(data)]


def is_idr(data: bytes) -> bool:
    return NAL_IDR in nal_types(data)


def join_nals(nals: list[bytes]) -> bytes:
    return b"".join(START_CODE + nal for nal in nals)


def avcc_to_annexb(extradata: bytes) -> bytes:
    """Convert an ``avcC`` record (MP4/FLV extradata) to Annex B SPS/PPS; Annex B input is returned as is.

    Raises ``ValueError`` for a truncated record."""
    if not extradata or extradata[0] != 1:
        return extradata
    if len(extradata) < 7:
        raise ValueError("avcC record shorter than its 7-byte header")
    out: list[bytes] = []
    pos = 5
    count = extradata[pos] & 0x1F
    pos += 1
    for group in range(2):
        if group == 1:
            count = extradata[pos]
            pos += 1
        for _ in range(count):
            size = int.from_bytes(extradata[pos : pos + 2], "big")
            pos += 2
            nal = extradata[pos : pos + size]
            if len(nal) != size:
                raise ValueError("avcC record truncated inside a parameter set")
            out.append(nal)
            pos += size
    return join_nals(out)


def parameter_sets(extradata: bytes) -> list[bytes]:
    """SPS and PPS NAL units found in Annex B or avcC extradata (others ignored)."""
    return [nal for nal in split_nals(avcc_to_annexb(extradata)) if nal_type(nal) in (NAL_SPS, NAL_PPS)]


def with_parameter_sets(access_unit: bytes, sets: list[bytes]) -> bytes:
    """The access unit with ``sets`` put before its first slice when it carries no SPS or PPS itself."""
    nals = list(split_nals(access_unit))
    types = {nal_type(nal) for nal in nals}
    if not sets or (NAL_SPS in types and NAL_PPS in types):
        return access_unit
    head = [nal for nal in nals if nal_type(nal) == NAL_AUD]
    rest = [nal for nal in nals if nal_type(nal) not in (NAL_AUD, NAL_SPS, NAL_PPS)]
    return join_nals(head + sets + rest)


def sps_profile(sets: list[bytes]) -> str:
    """``profile_idc`` + constraint flags + ``level_idc`` of the first SPS as 6 hex digits (e.g. 42e01f)."""
    for nal in sets:
        if nal_type(nal) == NAL_SPS and len(nal) >= 4:
            return nal[1:4].hex()
    return ""
