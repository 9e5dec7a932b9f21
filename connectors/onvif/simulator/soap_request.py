"""Parse the few parts of an incoming SOAP request the simulator needs (lxml, no schema)."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
PASSWORD_DIGEST = "#PasswordDigest"

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=True)
_USERNAME_TOKEN = f"{{{NS_WSSE}}}UsernameToken"


class SoapParseError(ValueError):
    """The request is not a SOAP envelope with a body element."""


@dataclass(slots=True)
class UsernameToken:
    """WS-Security UsernameToken fields as sent (all text, stripped)."""

    username: str
    password: str
    digest: bool  # Type ends with #PasswordDigest (else PasswordText)
    nonce: str
    created: str


@dataclass(slots=True)
class SoapRequest:
    """The operation (namespace + local name of the body's first element) and its security header."""

    namespace: str
    operation: str
    body: etree._Element
    token: UsernameToken | None


def parse_soap_request(payload: bytes) -> SoapRequest:
    """Parse ``payload``; raise SoapParseError when it is not a usable SOAP envelope."""
    try:
        root = etree.fromstring(payload, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SoapParseError(f"request is not well-formed XML: {exc}") from exc
    envelope_ns = etree.QName(root).namespace
    if etree.QName(root).localname != "Envelope" or envelope_ns not in (NS_SOAP12, NS_SOAP11):
        raise SoapParseError("request root is not a SOAP Envelope")
    header = root.find(f"{{{envelope_ns}}}Header")
    body = root.find(f"{{{envelope_ns}}}Body")
    if body is None or len(body) == 0:
        raise SoapParseError("SOAP Body is missing or empty")
    operation_element = body[0]
    qname = etree.QName(operation_element)
    return SoapRequest(
        namespace=qname.namespace or "",
        operation=qname.localname,
        body=operation_element,
        token=_username_token(header),
    )


def _username_token(header: etree._Element | None) -> UsernameToken | None:
    if header is None:
        return None
    for element in header.iter(_USERNAME_TOKEN):
        password = element.find(f"{{{NS_WSSE}}}Password")
        return UsernameToken(
            username=(element.findtext(f"{{{NS_WSSE}}}Username") or "").strip(),
            password=(password.text or "").strip() if password is not None else "",
            digest=password is not None and (password.get("Type") or "").endswith(PASSWORD_DIGEST),
            nonce=(element.findtext(f"{{{NS_WSSE}}}Nonce") or "").strip(),
            created=(element.findtext(f"{{{NS_WSU}}}Created") or "").strip(),
        )
    return None


def child_text(element: etree._Element, *path: str) -> str | None:
    """Text of the first descendant path given by local names (namespace-agnostic), stripped."""
    found = child(element, *path)
    if found is None or found.text is None:
        return None
    value: str = found.text
    return value.strip()


def child(element: etree._Element, *path: str) -> etree._Element | None:
    """The first descendant element along ``path`` of local names, or None."""
    current: etree._Element | None = element
    for name in path:
        if current is None:
            return None
        current = next((c for c in current if isinstance(c.tag, str) and etree.QName(c).localname == name), None)
    return current
