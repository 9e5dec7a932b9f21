"""WS-UsernameToken digest and the clock offset, checked against the WS-Security formula.

PasswordDigest = Base64(SHA-1(nonce + created + password)) (OASIS UsernameToken Profile 1.0, 3.1),
with ``created`` shifted by the camera's clock offset so that a skewed camera accepts the token.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from lxml import etree

from xueliang.connectors.onvif import OnvifSettings, create_session
from xueliang.connectors.onvif.soap import SoapChannel
from xueliang.connectors.onvif.wsdl import build_request, load_binding

WSSE = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}"
WSU = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}"


def test_digest_of_a_known_token() -> None:
    """The example of the ONVIF Application Programmer's Guide (6.1.1.3), by hand."""
    nonce = base64.b64decode("LKqI6G/AikKCQrN0zqZFlg==")
    created = "2010-09-16T07:50:45Z"
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + b"userpassword").digest()).decode()
    assert digest == "tuOSpGlFlIXsozq4HFNeeGeFLEI="


async def _signed_request(offset_s: float, *, nonce: str, created: datetime) -> etree._Element:
    session = create_session(OnvifSettings())
    try:
        channel = SoapChannel("127.0.0.1", 80, "admin", "Hik12345", session=session, settings=OnvifSettings())
        channel.set_clock_offset(offset_s)
        token = channel._token  # onvif-zeep-async's UsernameDigestTokenDtDiff
        token.nonce, token.created = nonce, created  # fixed instead of random / now
        envelope, headers = build_request(
            await load_binding("devicemgmt"), "GetDeviceInformation", {}, "http://127.0.0.1/onvif/device_service"
        )
        token.apply(envelope, headers)
        return envelope
    finally:
        await session.close()


async def test_token_created_is_shifted_by_the_clock_offset_and_digest_matches() -> None:
    created = datetime(2026, 11, 21, 6, 0, 0)  # naive UTC, as the token class expects
    envelope = await _signed_request(-3600.0, nonce="0123456789abcdef", created=created)
    token = envelope.find(f".//{WSSE}UsernameToken")
    assert token.findtext(f"{WSSE}Username") == "admin"
    assert token.findtext(f"{WSU}Created") == "2026-11-21T05:00:00Z"  # one hour behind, Zulu form
    assert base64.b64decode(token.findtext(f"{WSSE}Nonce")) == b"0123456789abcdef"
    expected = base64.b64encode(hashlib.sha1(b"0123456789abcdef" + b"2026-11-21T05:00:00Z" + b"Hik12345").digest())
    assert token.findtext(f"{WSSE}Password") == expected.decode()
    password_type = token.find(f"{WSSE}Password").get("Type")
    assert password_type.endswith("#PasswordDigest")


async def test_positive_offset_moves_created_forward() -> None:
    envelope = await _signed_request(90.0, nonce="n", created=datetime(2026, 1, 1, 23, 59, 0))
    assert envelope.findtext(f".//{WSSE}UsernameToken/{WSU}Created") == "2026-01-02T00:00:30Z"
