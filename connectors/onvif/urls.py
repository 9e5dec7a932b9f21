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

from xueliang.connectors.onvif.soap import format_camera, hide_userinfo

logger = logging.getLogger(__name__)


def _bare(host: str) -> str:
    return host.strip("[]").lower()


def _netloc(parts: SplitResult, host: str, port: int | None) -> str:
    userinfo = parts.netloc.rpartition("@")[0]
    hostport = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if port is not None:
        hostport = f"{hostport}:{port}"
    return f"{userinfo}@{hostport}" if userinfo else hostport


def _foreign(parts: SplitResult, host: str) -> bool:
    return bool(parts.hostname) and _bare(parts.hostname or "") != _bare(host)


def reached_service(url: str, host: str, port: int, *, rewrite: bool = True) -> str:
    """An HTTP(S) address a camera reached on ``host:port`` advertises (XAddr, subscription,
    snapshot), made usable: ``host:port:port`` (a firmware quirk) repaired by onvif-zeep-async's
    ``normalize_url``, then, with ``rewrite``, a foreign host replaced by ``host:port``. Pure: the
    connector (:class:`AddressFixer`) and the gateway's health sweep both use it."""
    url = normalize_url(url) or url
    parts = urlsplit(url)
    if not rewrite or not _foreign(parts, host):
        return url
    return urlunsplit(parts._replace(netloc=_netloc(parts, host, port)))


def reached_stream(url: str, host: str, *, rewrite: bool = True) -> str:
    """An RTSP URI: with ``rewrite``, a foreign host becomes ``host``, keeping the RTSP port (its NAT
    mapping is unknown). Pure, like :func:`reached_service`."""
    parts = urlsplit(url)
    if not rewrite or not _foreign(parts, host):
        return url
    return urlunsplit(parts._replace(netloc=_netloc(parts, host, parts.port)))


STREAM_SCHEMES = frozenset({"rtsp", "rtsps"})
SNAPSHOT_SCHEMES = frozenset({"http", "https"})


def uri_problem(url: str, schemes: frozenset[str]) -> str | None:
    """Why ``url`` (a stream or snapshot URI a camera gave) cannot be used, or None when it can:
    it must be absolute, in one of ``schemes``, with a host and a valid port. The reason quotes the
    URI without its credentials."""
    shown = hide_userinfo(url)[:200]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:  # "http://[::1", "rtsp://h:99999/"
        return f"{shown!r} is not a valid URI ({exc})"
    if parts.scheme.lower() not in schemes:
        wanted = " or ".join(sorted(schemes))
        return f"{shown!r} is not an absolute {wanted} URI"
    if not parts.hostname:
        return f"{shown!r} names no host"
    return None


class AddressFixer:
    """One camera's addresses rewritten by :func:`reached_service` / :func:`reached_stream` (when
    enabled); each foreign host is logged once."""

    def __init__(self, host: str, port: int, *, enabled: bool) -> None:
        self.host = host
        self.port = port
        self.enabled = enabled
        self.camera = format_camera(host, port)
        self._reported: set[str] = set()

    def service(self, url: str) -> str:
        """An HTTP(S) address (XAddr, subscription, snapshot): foreign host -> our host:port."""
        # repaired here too (reached_service does it again, idempotent): the log line's
        # obscure_user_pass_url (yarl) raises ValueError on the host:port:port quirk
        url = normalize_url(url) or url
        return self._report(url, reached_service(url, self.host, self.port, rewrite=self.enabled))

    def stream(self, url: str) -> str:
        """An RTSP URI: foreign host -> our host, keeping the RTSP port."""
        return self._report(url, reached_stream(url, self.host, rewrite=self.enabled))

    def _report(self, url: str, fixed: str) -> str:
        hostname = urlsplit(url).hostname
        if hostname and urlsplit(fixed).hostname != hostname and hostname not in self._reported:
            self._reported.add(hostname)
            logger.info(
                "camera %s: advertises addresses on %s (e.g. %s); using %s instead (NAT or changed IP)",
                self.camera,
                hostname,
                obscure_user_pass_url(url),  # some cameras put credentials in snapshot URIs
                self.host,
            )
        return fixed
