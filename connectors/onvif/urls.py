"""Addresses a camera hands out, made usable from where the gateway stands.

Camera quirk: cameras behind NAT, or re-addressed after installation, keep advertising their
original private IP in every XAddr, subscription, snapshot and stream URI (both capture sets in
``shared/onvif-captures`` do: 10.10.1.60 and 192.168.0.19). :class:`AddressFixer` rewrites such
an address to the host we actually reached, and logs it once per camera.
"""

from __future__ import annotations

import logging
from urllib.parse import SplitResult, urlsplit, urlunsplit

from onvif.util import normalize_url, obscure_user_pass_url

from xueliang.connectors.onvif.soap import format_camera

logger = logging.getLogger(__name__)


def _bare(host: str) -> str:
    return host.strip("[]").lower()


def _netloc(parts: SplitResult, host: str, port: int | None) -> str:
    userinfo = parts.netloc.rpartition("@")[0]
    hostport = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if port is not None:
        hostport = f"{hostport}:{port}"
    return f"{userinfo}@{hostport}" if userinfo else hostport


class AddressFixer:
    """Rewrites addresses whose host is not the one we connected to (when enabled)."""

    def __init__(self, host: str, port: int, *, enabled: bool) -> None:
        self.host = host
        self.port = port
        self.enabled = enabled
        self.camera = format_camera(host, port)
        self._reported: set[str] = set()

    def service(self, url: str) -> str:
        """An HTTP(S) address (XAddr, subscription, snapshot): foreign host -> our host:port.

        ``normalize_url`` (onvif-zeep-async) first repairs ``host:port:port`` duplicates, a quirk
        of some firmwares.
        """
        url = normalize_url(url) or url
        parts = urlsplit(url)
        if not self._foreign(parts, url):
            return url
        return urlunsplit(parts._replace(netloc=_netloc(parts, self.host, self.port)))

    def stream(self, url: str) -> str:
        """An RTSP URI: foreign host -> our host, keeping the RTSP port (its NAT mapping is unknown)."""
        parts = urlsplit(url)
        if not self._foreign(parts, url):
            return url
        return urlunsplit(parts._replace(netloc=_netloc(parts, self.host, parts.port)))

    def _foreign(self, parts: SplitResult, url: str) -> bool:
        if not self.enabled or not parts.hostname or _bare(parts.hostname) == _bare(self.host):
            return False
        if parts.hostname not in self._reported:
            self._reported.add(parts.hostname)
            logger.info(
                "camera %s: advertises addresses on %s (e.g. %s); using %s instead (NAT or changed IP)",
                self.camera,
                parts.hostname,
                obscure_user_pass_url(url),  # some cameras put credentials in snapshot URIs
                self.host,
            )
        return True
