"""Unit tests of the protocol helpers: H.264 packetization and SEI, durations, digest, WS-Security, config."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from xueliang.connectors.onvif.simulator import SimulatorConfig, read_wallclock_sei
from xueliang.connectors.onvif.simulator.durations import parse_duration, parse_termination
from xueliang.connectors.onvif.simulator.h264 import (
    escape_rbsp,
    group_access_units,
    rtp_payloads,
    split_nals,
    unescape_rbsp,
    wallclock_sei,
)
from xueliang.connectors.onvif.simulator.http_digest import DigestAuthority, Verdict, parse_params
from xueliang.connectors.onvif.simulator.http_server import is_loopback
from xueliang.connectors.onvif.simulator.soap_request import UsernameToken
from xueliang.connectors.onvif.simulator.wsse import AuthFailure, ReplayGuard, password_digest, verify_token


def test_fu_a_fragments_reassemble_to_the_nal() -> None:
    nal = bytes([0x65]) + bytes(range(256)) * 20  # an IDR slice of 5121 bytes
    packets = rtp_payloads(nal, mtu=1400)
    assert len(packets) == 4
    assert all(p[0] & 0x1F == 28 and p[0] & 0x60 == 0x60 for p in packets)  # FU-A, NRI kept
    assert packets[0][1] & 0x80 and not packets[0][1] & 0x40  # start bit
    assert packets[-1][1] & 0x40 and not packets[-1][1] & 0x80  # end bit
    assert bytes([(packets[0][0] & 0xE0) | (packets[0][1] & 0x1F)]) + b"".join(p[2:] for p in packets) == nal
    assert rtp_payloads(b"\x41small") == [b"\x41small"]  # single NAL unit packet


def test_annexb_split_and_access_units() -> None:
    sps, pps, idr, slice_a, slice_b = b"\x67\x42", b"\x68\xce", b"\x65\x88\x01", b"\x41\x9a\x02", b"\x41\x9a\x03"
    stream = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x01" + pps + b"\x00\x00\x01" + idr
    stream += b"\x00\x00\x00\x01" + slice_a + b"\x00\x00\x01" + slice_b
    nals = split_nals(stream)
    assert nals == [sps, pps, idr, slice_a, slice_b]
    assert group_access_units(nals) == [[sps, pps, idr], [slice_a], [slice_b]]


def test_wallclock_sei_round_trip_with_emulation_prevention() -> None:
    for value in (0, 1_700_000_000_000_000, 0x0000000300000001):
        nal = wallclock_sei(value)
        assert b"\x00\x00\x00" not in nal[1:] and b"\x00\x00\x01" not in nal[1:]
        assert read_wallclock_sei(nal) == value
    assert read_wallclock_sei(b"\x06\x05\x10" + bytes(26)) is None  # another user-data UUID
    assert unescape_rbsp(escape_rbsp(b"\x00\x00\x01\x00\x00\x00")) == b"\x00\x00\x01\x00\x00\x00"


def test_durations() -> None:
    assert parse_duration("PT10S") == 10
    assert parse_duration("PT1M30.5S") == 90.5
    assert parse_duration("P1DT1H") == 90000
    with pytest.raises(ValueError, match="xs:duration"):
        parse_duration("10 seconds")
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert parse_termination("PT60S", now) == now + dt.timedelta(seconds=60)
    assert parse_termination("2026-01-01T00:05:00Z", now) == now + dt.timedelta(minutes=5)


def test_http_digest_accepts_the_rfc_answer_and_marks_stale_nonces() -> None:
    authority = DigestAuthority("IP Camera")
    nonce = parse_params(authority.challenge())["nonce"]

    def answer(nonce: str, password: str) -> str:
        ha1 = hashlib.md5(f"admin:IP Camera:{password}".encode()).hexdigest()
        ha2 = hashlib.md5(b"GET:/onvif/snapshot/1.jpg").hexdigest()
        response = hashlib.md5(f"{ha1}:{nonce}:00000001:xyz:auth:{ha2}".encode()).hexdigest()
        return (f'Digest username="admin", realm="IP Camera", nonce="{nonce}", uri="/onvif/snapshot/1.jpg", '
                f'qop=auth, nc=00000001, cnonce="xyz", response="{response}"')  # fmt: skip

    assert authority.verify("GET", answer(nonce, "pw"), "admin", "pw") is Verdict.OK
    assert authority.verify("GET", answer(nonce, "bad"), "admin", "pw") is Verdict.DENIED
    assert authority.verify("GET", None, "admin", "pw") is Verdict.MISSING
    forged = "0." + nonce.partition(".")[2]
    assert authority.verify("GET", answer(forged, "pw"), "admin", "pw") is Verdict.DENIED
    expiry = "1"  # long past, correctly signed
    old = f"{expiry}.{authority._sign(expiry)}"
    assert authority.verify("GET", answer(old, "pw"), "admin", "pw") is Verdict.STALE


def test_password_digest_matches_the_published_example() -> None:
    """ONVIF Application Programmer's Guide 6.1.1.3: the tests' request builder signs with this function."""
    digest = password_digest("LKqI6G/AikKCQrN0zqZFlg==", "2010-09-16T07:50:45Z", "userpassword")
    assert digest == "tuOSpGlFlIXsozq4HFNeeGeFLEI="


def test_username_token_rules() -> None:
    now = dt.datetime.now(dt.UTC)
    created = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    nonce = "AAECAwQFBgcICQoLDA0ODw=="
    good = UsernameToken("admin", password_digest(nonce, created, "pw"), True, nonce, created)
    guard = ReplayGuard()
    verify_token(good, username="admin", password="pw", camera_now=now, camera_index=1, replay_guard=guard)
    verify_token(good, username="admin", password="pw", camera_now=now, camera_index=2, replay_guard=guard)
    with pytest.raises(AuthFailure, match="replayed"):
        verify_token(good, username="admin", password="pw", camera_now=now, camera_index=1, replay_guard=guard)
    with pytest.raises(AuthFailure, match="5 minutes"):
        later = now + dt.timedelta(minutes=10)
        verify_token(good, username="admin", password="pw", camera_now=later, camera_index=3, replay_guard=guard)
    plain = UsernameToken("admin", "pw", False, "", "")
    verify_token(plain, username="admin", password="pw", camera_now=now, camera_index=1, replay_guard=guard)
    with pytest.raises(AuthFailure, match="no WS-Security"):
        verify_token(None, username="admin", password="pw", camera_now=now, camera_index=1, replay_guard=guard)


def test_config_refuses_unusable_values() -> None:
    video = Path("video.avi")
    with pytest.raises(ValidationError, match=r"127\.0\.0\.0/8"):
        SimulatorConfig(video=video, base_address="10.0.0.1")
    with pytest.raises(ValidationError, match=r"past 127\.255\.255\.254"):
        SimulatorConfig(video=video, base_address="127.255.255.0", count=1000)
    with pytest.raises(ValidationError, match="even"):
        SimulatorConfig(video=video, snapshot_size=(1921, 1080))
    with pytest.raises(ValidationError, match="rtsp_count"):
        SimulatorConfig(video=video, count=2, rtsp_count=3)
    with pytest.raises(ValidationError, match="extra"):
        SimulatorConfig(video=video, colour="red")  # type: ignore[call-arg]


def test_only_loopback_local_addresses_reach_the_lab() -> None:
    """The listeners bind the wildcard (one socket for every 127.x.y.z camera); a connection that
    arrived on the machine's network address is refused (its cameras and control API are the lab's)."""
    assert is_loopback("127.0.0.1") and is_loopback("127.1.7.3") and is_loopback("::1")
    assert is_loopback("::ffff:127.1.0.9")
    assert not is_loopback("192.0.2.7") and not is_loopback("10.211.0.1") and not is_loopback("::ffff:192.0.2.7")
    assert not is_loopback("fe80::1%eth0") and not is_loopback("") and not is_loopback("not an address")


@pytest.mark.parametrize("bind", ["192.168.1.10", "10.211.0.1", "fe80::1", "camera.local"])
def test_a_bind_address_the_cameras_cannot_answer_on_is_refused(bind: str) -> None:
    """Old code: it started, printed its ready line, then reset every connection without a word."""
    with pytest.raises(ValidationError, match="host_bind"):
        SimulatorConfig(video=Path("v.avi"), host_bind=bind)
    for fine in ("0.0.0.0", "::", "127.0.0.1", "127.1.0.1"):
        assert SimulatorConfig(video=Path("v.avi"), host_bind=fine).host_bind == fine
