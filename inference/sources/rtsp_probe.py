"""Where an RTSP URL points, and why a camera gives no stream.

:func:`parse_rtsp_url` splits an ``rtsp://``/``rtsps://`` URL (credentials decoded) or raises
:class:`BadRtspUrl` saying why it cannot work; :func:`shown_url` is the URL without credentials,
for messages and logs, whatever the URL holds.

OpenCV does not say why it could not open a stream. :func:`diagnose` opens it once more with PyAV
(FFmpeg's own RTSP client over TCP, answering the camera's digest or basic challenge) and maps the
error FFmpeg raises::

    401 (wrong password, or none given)     -> SourceAuthFailed
    403 (user may not watch this stream)    -> SourceAuthFailed
    404, other 4xx/5xx, refused, unresolved -> SourceUnavailable
    no RTSP answer before the timeout       -> SourceTimeout
    opened (the camera serves the stream)   -> SourceUnavailable (the fault is on this side)

FFmpeg reports "no answer in time" and "an answer that is not RTSP" with the same error
(``InvalidDataError``), so the two are told apart by the time taken: the timeout interrupts the
open only once ``timeout`` has passed. Only ``strerror`` of FFmpeg's errors is shown: their
``filename`` and text hold the URL with its password.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

import av
import av.error

from xueliang.inference.errors import SourceAuthFailed, SourceError, SourceTimeout, SourceUnavailable

_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}
_USERINFO = re.compile(r"//.*@")  # greedy, to the last '@': an unencoded password may hold '/' or '@'
# TCP (the control connection itself); the smallest probe: only whether a stream comes matters
_PROBE_OPTIONS = {"rtsp_transport": "tcp", "probesize": "32", "analyzeduration": "0"}


class BadRtspUrl(ValueError):
    """A stream URL that cannot work; the message holds no credentials."""


@dataclass(frozen=True, slots=True)
class RtspTarget:
    """Where a stream URL points: for the diagnosis and for messages (``uri`` has no credentials)."""

    host: str
    port: int
    uri: str
    username: str | None
    password: str | None = field(repr=False)

    def url(self) -> str:
        """``uri`` with the credentials percent-encoded into it, for FFmpeg only (never shown)."""
        if self.username is None:
            return self.uri
        userinfo = quote(self.username, safe="")
        if self.password is not None:
            userinfo += ":" + quote(self.password, safe="")
        scheme, _, rest = self.uri.partition("://")
        return f"{scheme}://{userinfo}@{rest}"


def parse_rtsp_url(url: str) -> RtspTarget:
    """The parts of an ``rtsp://`` or ``rtsps://`` URL; :class:`BadRtspUrl` saying why it cannot work."""
    if not url or any(c.isspace() or ord(c) < 32 for c in url):
        raise BadRtspUrl("empty, or holds white space or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # urllib's own text may quote a piece of the password: not shown
        raise BadRtspUrl(
            "unparsable (an unclosed '[' or a port that is no number 0-65535; "
            "percent-encode '@', ':' and '/' in the user name and password)"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise BadRtspUrl(f"scheme {scheme + '://' if scheme else 'missing'} is not rtsp:// or rtsps://")
    if not parts.hostname:
        raise BadRtspUrl("no host")
    if "@" in parts.path or "@" in parts.query:
        raise BadRtspUrl("an '@' after the host (percent-encode '/' and '@' in the user name and password)")
    netloc = parts.netloc.rpartition("@")[2]
    uri = f"{scheme}://{netloc}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
    return RtspTarget(
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[scheme],
        uri=uri,
        username=None if parts.username is None else unquote(parts.username),
        password=None if parts.password is None else unquote(parts.password),
    )


def shown_url(url: str) -> str:
    """``url`` without credentials, for messages and logs, whatever it holds."""
    try:
        return parse_rtsp_url(url).uri
    except BadRtspUrl:
        return "".join(c if c.isprintable() else "?" for c in _USERINFO.sub("//", url))


def diagnose(target: RtspTarget, timeout: float) -> tuple[type[SourceError], str]:
    """Why the camera gives no stream: the error class to raise and the reason, without secrets.

    One PyAV open of the stream; the RTSP exchange and the stream probe after it each end within
    ``timeout`` s (so at most twice that in all).
    """
    where = f"{target.host}:{target.port}"
    started = time.monotonic()
    try:
        with av.open(target.url(), options=_PROBE_OPTIONS, timeout=(timeout, timeout)) as container:
            has_video = bool(container.streams.video)
    except av.error.HTTPUnauthorizedError:
        if target.username is None:
            return SourceAuthFailed, "the camera asks for credentials and the URL has none: set the camera's login"
        return SourceAuthFailed, (
            f"the camera refused the password of user {target.username!r} (RTSP 401): correct the camera's "
            "login (cameras lock the account after repeated failures)"
        )
    except av.error.HTTPForbiddenError:
        return SourceAuthFailed, f"user {target.username!r} may not watch {target.uri} (RTSP 403): grant it the right"
    except av.error.HTTPNotFoundError:
        return SourceUnavailable, f"the camera has no stream {target.uri} (RTSP 404): re-probe its stream URI"
    except (av.error.HTTPClientError, av.error.HTTPServerError) as exc:
        return SourceUnavailable, f"the camera refused the stream {target.uri} ({exc.strerror})"
    except ConnectionRefusedError:
        return SourceUnavailable, (
            f"{where} refused the connection: nothing listens there (check the RTSP port and that RTSP is "
            "enabled on the camera)"
        )
    except (av.error.InvalidDataError, av.error.ExitError, TimeoutError) as exc:
        if isinstance(exc, av.error.InvalidDataError) and time.monotonic() - started < timeout:
            return SourceUnavailable, f"{where} does not speak RTSP ({exc.strerror}): check the stream URI's port"
        return SourceTimeout, f"{where} gave no RTSP answer within {timeout:g} s (camera offline, firewalled or busy)"
    except av.error.FFmpegError as exc:  # FFmpeg says only 'Input/output error' for a host it cannot resolve
        return SourceUnavailable, _unreachable(target, where, exc.strerror)
    if not has_video:
        return SourceUnavailable, f"the camera serves {target.uri} (RTSP 200) but it holds no video stream"
    return SourceUnavailable, "the camera serves the stream (RTSP 200) but OpenCV's FFmpeg could not open it (codec?)"


def _unreachable(target: RtspTarget, where: str, strerror: str | None) -> str:
    try:
        socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot resolve host {target.host} ({exc.strerror}): check the stream URI"
    return f"cannot reach {where}: {strerror or 'FFmpeg gave no reason'}"
