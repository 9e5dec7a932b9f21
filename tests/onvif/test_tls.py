"""HTTPS cameras: a replayed real camera behind a self-signed certificate (generated here) is
refused by default with a TlsFailed that names the settings to change, and probed fully once its
certificate is trusted through ``onvif.ca_bundle`` (or verification is turned off explicitly)."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from xueliang.connectors.onvif import OnvifClient, OnvifError, OnvifSettings, ProbeResult, TlsFailed
from xueliang.connectors.onvif.replay import CaptureReplayServer

from .conftest import CAPTURES


def self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A camera-style self-signed certificate for ``host`` (its IP in subjectAltName): (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"IPC {host}")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "camera.pem", folder / "camera.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


@pytest.fixture
async def https_camera(certificate: tuple[Path, Path]) -> AsyncIterator[CaptureReplayServer]:
    """The captured Hikvision camera, served over HTTPS with the self-signed certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    async with CaptureReplayServer(CAPTURES / "hikvision", ssl_context=context, live_clock=True) as server:
        yield server


async def probe(server: CaptureReplayServer, settings: OnvifSettings) -> ProbeResult:
    async with OnvifClient("127.0.0.1", server.port, "admin", "pw", settings=settings) as client:
        client.device_xaddr = f"{server.url()}/onvif/device_service"  # a camera reached over HTTPS
        return await client.probe()


async def test_a_self_signed_camera_is_refused_by_default_naming_the_settings(
    https_camera: CaptureReplayServer, settings: OnvifSettings
) -> None:
    assert settings.verify_tls and settings.ca_bundle is None  # the defaults
    with pytest.raises(OnvifError) as caught:
        await probe(https_camera, settings)
    error = caught.value
    assert type(error) is TlsFailed
    assert f"127.0.0.1:{https_camera.port}" in str(error) and error.operation == "GetSystemDateAndTime"
    # OpenSSL's reason (1.1 spells it without the hyphen), not only the advice, which names them too
    assert re.search(r"did not verify: self[- ]signed certificate", str(error)), str(error)
    assert "onvif.ca_bundle" in str(error) and "onvif.verify_tls" in str(error)
    assert "onvif.ca_bundle" in error.message_zh and "自签名证书" in error.message_zh
    assert len(https_camera.requests) == 0  # nothing was sent to an unverified peer


async def test_the_camera_is_probed_over_https_once_its_certificate_is_trusted(
    https_camera: CaptureReplayServer, settings: OnvifSettings, certificate: tuple[Path, Path]
) -> None:
    trusting = settings.model_copy(update={"ca_bundle": certificate[0]})
    result = await probe(https_camera, trusting)
    assert result.identity.manufacturer == "HIKVISION"
    assert {r.method for r in https_camera.requests} >= {"GetSystemDateAndTime", "GetProfiles", "GetStreamUri"}


async def test_turning_verification_off_is_explicit_and_logged(
    https_camera: CaptureReplayServer, settings: OnvifSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="xueliang.connectors.onvif.tls")
    result = await probe(https_camera, settings.model_copy(update={"verify_tls": False}))
    assert result.identity.manufacturer == "HIKVISION"
    assert "NOT verified" in caplog.text


def test_a_ca_bundle_that_cannot_be_used_is_a_settings_error(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    with pytest.raises(ValidationError, match=r"onvif.ca_bundle .*missing.pem: no such file"):
        OnvifSettings(ca_bundle=tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ValidationError, match=r"cannot load it as PEM certificates"):
        OnvifSettings(ca_bundle=garbage)
    with pytest.raises(ValidationError, match=r"no effect with onvif.verify_tls: false"):
        OnvifSettings(ca_bundle=certificate[0], verify_tls=False)
    assert OnvifSettings(ca_bundle=certificate[0]).ca_bundle == certificate[0]
