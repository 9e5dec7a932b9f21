"""TLS towards cameras: the SSL context of the shared HTTP session.

Certificates are verified by default, against the system's CAs plus ``onvif.ca_bundle`` (a PEM
file: the site CA that signed the cameras' certificates, or the cameras' self-signed certificates
themselves). Camera quirk: many cameras ship a self-signed certificate for their own IP; trust it
through ``ca_bundle``, or turn verification off explicitly with ``onvif.verify_tls: false``.
A refused certificate surfaces as :class:`xueliang.connectors.onvif.errors.TlsFailed`.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)


def load_ca_bundle(context: ssl.SSLContext, path: Path) -> None:
    """Trust the certificates of the PEM file ``path`` too; ``ValueError`` naming the file and the
    problem when it cannot be read or holds no certificate."""
    try:
        context.load_verify_locations(cafile=str(path))
    except FileNotFoundError as exc:
        raise ValueError(f"onvif.ca_bundle {path}: no such file; give the PEM file of the site CA") from exc
    except OSError as exc:  # ssl.SSLError is an OSError
        reason = exc.strerror or getattr(exc, "reason", None) or str(exc)
        raise ValueError(
            f"onvif.ca_bundle {path}: cannot load it as PEM certificates ({reason}); "
            "give the site CA (or the cameras' certificates) in PEM format"
        ) from exc


def ssl_context(verify: bool, ca_bundle: Path | None) -> ssl.SSLContext | Literal[False]:
    """What ``aiohttp.TCPConnector(ssl=...)`` gets: a verifying context, or ``False`` (no checks)."""
    if not verify:
        logger.warning(
            "onvif.verify_tls is false: camera TLS certificates are NOT verified (anyone on the path "
            "can impersonate a camera); prefer onvif.ca_bundle with the site CA"
        )
        return False
    context = ssl.create_default_context()
    if ca_bundle is not None:
        load_ca_bundle(context, ca_bundle)
    return context
