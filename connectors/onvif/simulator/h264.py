"""H.264 Annex-B parsing and RFC 6184 packetization, plus the wall-clock SEI.

Wall-clock time (for glass-to-glass latency): every access unit the simulator sends starts (after
any SPS/PPS) with an SEI ``user_data_unregistered`` message (payload type 5) whose 16-byte UUID is
``WALLCLOCK_UUID`` followed by the send time as a big-endian unsigned 64-bit count of microseconds
since the Unix epoch. ``read_wallclock_sei`` decodes it from a NAL unit. RTCP sender reports carry
the same clock as NTP time mapped to the RTP timestamp.
"""

from __future__ import annotations

import base64
import struct
import uuid
from dataclasses import dataclass

WALLCLOCK_UUID = uuid.UUID("9a6f2f8e-5b1c-4d39-a8f0-2c8e4b7d1e01").bytes
RTP_MTU_PAYLOAD = 1400
NAL_SLICE, NAL_IDR, NAL_SEI, NAL_SPS, NAL_PPS, NAL_AUD = 1, 5, 6, 7, 8, 9
FU_A = 28


def split_nals(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B byte stream (start codes removed)."""
    nals: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    while start != -1:
        begin = start + 3
        nxt = data.find(b"\x00\x00\x01", begin)
        end = len(data) if nxt == -1 else nxt
        nal = data[begin:end].rstrip(b"\x00")
        if nal:
            nals.append(nal)
        start = nxt
    return nals


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One picture: its NAL units and its RTP payloads (SEI goes in at ``sei_at`` when sent)."""

    nals: tuple[bytes, ...]
    keyframe: bool
    payloads: tuple[bytes, ...]
    sei_at: int


def group_access_units(nals: list[bytes]) -> list[list[bytes]]:
    """Group NAL units into access units (a new one starts at non-VCL after VCL, or first_mb == 0)."""
    units: list[list[bytes]] = []
    current: list[bytes] = []
    has_vcl = False
    for nal in nals:
        kind = nal[0] & 0x1F
        if kind in (NAL_SLICE, NAL_IDR):
            if has_vcl and len(nal) > 1 and nal[1] & 0x80:
                units.append(current)
                current = []
            current.append(nal)
            has_vcl = True
        else:
            if has_vcl and kind in (NAL_SEI, NAL_SPS, NAL_PPS, NAL_AUD):
                units.append(current)
                current, has_vcl = [], False
            current.append(nal)
    if current and has_vcl:
        units.append(current)
    return units


def rtp_payloads(nal: bytes, mtu: int = RTP_MTU_PAYLOAD) -> list[bytes]:
    """One single-NAL payload, or FU-A fragments when the NAL is larger than ``mtu``."""
    if len(nal) <= mtu:
        return [nal]
    indicator = (nal[0] & 0xE0) | FU_A
    kind = nal[0] & 0x1F
    body = nal[1:]
    chunk = mtu - 2
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    out = []
    for i, piece in enumerate(pieces):
        header = kind | (0x80 if i == 0 else 0) | (0x40 if i == len(pieces) - 1 else 0)
        out.append(bytes((indicator, header)) + piece)
    return out


def build_access_unit(nals: list[bytes]) -> AccessUnit:
    """Precompute the RTP payloads of an access unit."""
    payloads: list[bytes] = []
    sei_at = -1
    for nal in nals:
        if sei_at < 0 and nal[0] & 0x1F in (NAL_SLICE, NAL_IDR):
            sei_at = len(payloads)
        payloads.extend(rtp_payloads(nal))
    keyframe = any(n[0] & 0x1F == NAL_IDR for n in nals)
    return AccessUnit(tuple(nals), keyframe, tuple(payloads), max(sei_at, 0))


def escape_rbsp(rbsp: bytes) -> bytes:
    """Insert emulation-prevention bytes (0x03 after two zeros before a byte <= 3)."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def unescape_rbsp(data: bytes) -> bytes:
    """Remove emulation-prevention bytes."""
    return data.replace(b"\x00\x00\x03", b"\x00\x00")


def wallclock_sei(unix_us: int) -> bytes:
    """An SEI NAL unit carrying ``unix_us`` (see the module docstring)."""
    payload = WALLCLOCK_UUID + struct.pack(">Q", unix_us)
    return bytes((NAL_SEI,)) + escape_rbsp(bytes((5, len(payload))) + payload + b"\x80")


def read_wallclock_sei(nal: bytes) -> int | None:
    """The microseconds since the epoch carried by a wall-clock SEI, or None for any other NAL."""
    if not nal or nal[0] & 0x1F != NAL_SEI:
        return None
    rbsp = unescape_rbsp(nal[1:])
    if len(rbsp) < 26 or rbsp[0] != 5 or rbsp[1] != 24 or rbsp[2:18] != WALLCLOCK_UUID:
        return None
    (value,) = struct.unpack(">Q", rbsp[18:26])
    return int(value)


@dataclass(frozen=True, slots=True)
class H264Clip:
    """A looping H.264 clip ready to packetize."""

    units: tuple[AccessUnit, ...]
    keyframes: tuple[int, ...]
    fps: int
    width: int
    height: int
    sps: bytes
    pps: bytes

    @property
    def profile_level_id(self) -> str:
        """profile_idc, constraint flags and level_idc as six hex digits (SDP)."""
        return self.sps[1:4].hex()

    @property
    def sprop_parameter_sets(self) -> str:
        """Base64 SPS and PPS for the SDP fmtp line."""
        return f"{base64.b64encode(self.sps).decode()},{base64.b64encode(self.pps).decode()}"

    def keyframe_at_or_before(self, index: int) -> int:
        """The index of the last keyframe not after ``index`` (the clip starts with one)."""
        best = self.keyframes[0]
        for key in self.keyframes:
            if key > index:
                break
            best = key
        return best


def parse_clip(data: bytes, fps: int, width: int, height: int) -> H264Clip:
    """Parse an Annex-B elementary stream whose first access unit is an IDR with SPS/PPS."""
    nals = split_nals(data)
    sps = next((n for n in nals if n[0] & 0x1F == NAL_SPS), None)
    pps = next((n for n in nals if n[0] & 0x1F == NAL_PPS), None)
    if sps is None or pps is None:
        raise ValueError("stream has no SPS/PPS")
    units = tuple(build_access_unit(group) for group in group_access_units(nals))
    keyframes = tuple(i for i, unit in enumerate(units) if unit.keyframe)
    if not keyframes or keyframes[0] != 0:
        raise ValueError("stream does not start with an IDR access unit")
    return H264Clip(units, keyframes, fps, width, height, sps, pps)
