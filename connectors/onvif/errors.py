"""The ONVIF connector's exception tree, drawn once.

::

    OnvifError                  base: something went wrong talking to one camera
    ├── Unreachable             no TCP connection: refused, no route, DNS failure, connection dropped
    │   └── AddressRefused      not attempted: the address (as the camera gave it, or as its
    │                           name resolved) lies outside the allowed networks
    ├── Timeout                 connected (or trying to) but no answer within the time allowed
    ├── TlsFailed               HTTPS: the camera's certificate is not trusted (self-signed, another
    │                           CA, another name) or the TLS handshake failed
    ├── AuthFailed              the camera refused our credentials (HTTP 401/403, SOAP fault
    │   │                       NotAuthorized / FailedAuthentication / "not authorized")
    │   └── ClockSkew           ... and the camera's clock is off by more than the allowed window
    ├── NotOnvif                HTTP answers, but not with SOAP (an HTML page, another service)
    ├── Unsupported             the camera does not offer this service or operation
    │                           (service absent from GetServices/GetCapabilities, ActionNotSupported)
    ├── DeviceFault             the camera answered with another SOAP fault (invalid argument, ...)
    └── MalformedResponse       the answer is SOAP-ish but broken: truncated or invalid XML, a
                                required element missing or unreadable

Every error names the camera (``host:port``), what was being done (the ONVIF operation) and what
the technician should do about it. ``str(err)`` is English; :attr:`OnvifError.message_zh` is the
same advice in Chinese for operator-facing screens (Chinese first, English second).

Where they come from (mapped in :mod:`xueliang.connectors.onvif.soap`, one place; a SOAP fault
by :func:`classify_fault`, which the gateway's lean sweep path uses too)::

    aiohttp.ClientConnectorError (refused, no route, ClientConnectorDNSError)   -> Unreachable
    ... carrying policy.AddressRefusedError (the session's address policy)     -> AddressRefused
    an HTTP redirect (3xx; never followed: a camera must not send us elsewhere) -> NotOnvif
    aiohttp.ServerDisconnectedError (after one retry), ClientOSError,
        ClientPayloadError                                                     -> Unreachable
    TimeoutError (asyncio.TimeoutError, aiohttp.ServerTimeoutError)            -> Timeout
    aiohttp.ClientConnectorCertificateError, ClientSSLError (HTTPS)            -> TlsFailed
    HTTP 401/403; SOAP fault NotAuthorized, FailedAuthentication, ...,
        or a reason saying "not authorized"                                    -> AuthFailed / ClockSkew
    aiohttp.ClientResponseError (the peer does not speak HTTP), an HTML page,
        XML that is no SOAP Envelope                                           -> NotOnvif
    SOAP fault ActionNotSupported / NoSuchService, a service absent from the
        camera's service list                                                  -> Unsupported
    any other SOAP fault                                                       -> DeviceFault
    lxml.etree.XMLSyntaxError on a SOAP-looking answer, a DTD, a missing
        element (parsers.ParseError), aiohttp.InvalidURL / NonHttpUrlClientError
        from a camera address, an answer past onvif.max_answer_bytes           -> MalformedResponse

zeep's ``Fault``/``TransportError`` and onvif-zeep-async's ``ONVIFError`` never reach callers:
zeep only builds requests here, and the answers are read by this connector's own parsers.
WS-Discovery raises ``ValueError`` (bad targets) and ``OSError`` (socket) and counts bad replies.
"""

from __future__ import annotations

from collections.abc import Iterable


class OnvifError(Exception):
    """Base of every error this connector raises on purpose.

    ``camera`` is ``host:port``; ``operation`` the ONVIF operation (``GetProfiles``) or step;
    ``detail`` what happened; the class supplies the advice unless ``advice`` overrides it.
    """

    title_en = "ONVIF request failed"
    title_zh = "ONVIF 请求失败"
    advice_en = "Check the camera and try again."
    advice_zh = "请检查摄像机后重试。"

    def __init__(self, camera: str, operation: str, detail: str, *, advice: str | None = None) -> None:
        self.camera = camera
        self.operation = operation
        self.detail = detail
        self.advice = advice if advice is not None else self.advice_en
        super().__init__(self._render())

    def _render(self) -> str:
        where = f" during {self.operation}" if self.operation else ""
        return f"{self.title_en}: camera {self.camera}{where}: {self.detail}. {self.advice}"

    @property
    def message_zh(self) -> str:
        """Chinese text for operator-facing screens (the English ``str(err)`` follows it)."""
        step = f"（{self.operation}）" if self.operation else ""
        return f"摄像机 {self.camera}{step}：{self.title_zh}。{self.advice_zh}"


class Unreachable(OnvifError):
    title_en = "Camera unreachable"
    title_zh = "无法连接摄像机"
    advice_en = (
        "Check that the camera is powered and on the network, that the address and HTTP port are "
        "right, and that no firewall blocks the gateway"
    )
    advice_zh = "请确认摄像机已通电并接入网络、IP 地址和 HTTP 端口正确，且防火墙未拦截网关。"


class AddressRefused(Unreachable):
    """The gateway did not connect: the address lies outside the allowed networks (the session's
    :class:`~xueliang.connectors.onvif.policy.AddressPolicy`). Nothing was sent to it."""

    title_en = "Not connecting: address outside the allowed networks"
    title_zh = "拒绝连接：地址不在允许的网络内"
    advice_en = (
        "The camera gave (or its name resolves to) an address outside security.allowed_networks; "
        "add that network to security.allowed_networks if the camera really is there, otherwise fix "
        "the camera's configuration (or set onvif.rewrite_addresses: true for cameras behind NAT)"
    )
    advice_zh = (
        "摄像机提供的地址（或其主机名解析出的地址）不在 security.allowed_networks 内；若摄像机确实在该网络，"
        "请将其加入 security.allowed_networks，否则请修正摄像机配置"
        "（NAT 后的摄像机可设置 onvif.rewrite_addresses: true）。"
    )


class Timeout(OnvifError):
    title_en = "Camera did not answer in time"
    title_zh = "摄像机响应超时"
    advice_en = (
        "The camera may be overloaded, on a slow link, or a different device answers on that port; "
        "check the network path and retry, or raise onvif.timeout_s"
    )
    advice_zh = "摄像机可能负载过高、链路过慢，或该端口不是摄像机；请检查网络后重试，或调大 onvif.timeout_s。"


class TlsFailed(OnvifError):
    """The HTTPS connection was refused on our side: the camera's certificate did not verify
    (self-signed, signed by a CA we do not trust, issued for another name or expired), or the
    TLS handshake itself failed. ``onvif.ca_bundle`` / ``onvif.verify_tls`` decide what is trusted."""

    title_en = "Camera's TLS certificate is not trusted"
    title_zh = "摄像机的 TLS 证书不受信任"
    advice_en = (
        "Many cameras use self-signed certificates: put the site CA (or the camera's certificate) in a "
        "PEM file and set onvif.ca_bundle to it; onvif.verify_tls: false turns verification off "
        "(an explicit opt-out, for trusted networks only)"
    )
    advice_zh = (
        "很多摄像机使用自签名证书：请将站点 CA（或摄像机证书）保存为 PEM 文件并配置 onvif.ca_bundle；"
        "onvif.verify_tls: false 可关闭证书校验（仅限可信网络，需明确选择）。"
    )


class AuthFailed(OnvifError):
    title_en = "Camera refused the username or password"
    title_zh = "摄像机拒绝了用户名或密码"
    advice_en = (
        "Check the username and password, that the ONVIF user exists on the camera (many cameras keep "
        "ONVIF users apart from web users) and that it is not locked after failed attempts"
    )
    advice_zh = (
        "请核对用户名和密码，确认摄像机上已创建 ONVIF 用户（很多摄像机的 ONVIF 用户与网页用户分开），"
        "且账户未因多次失败被锁定。"
    )


class ClockSkew(AuthFailed):
    """Authentication failed while the camera's clock is far from ours.

    WS-UsernameToken digests carry a timestamp; many cameras reject a token whose ``Created`` time
    is too far from their own clock, even when it was shifted by the measured offset.
    """

    title_en = "Camera refused the login and its clock is wrong"
    title_zh = "摄像机拒绝登录，且其时钟偏差过大"

    def __init__(self, camera: str, operation: str, offset_s: float, window_s: float) -> None:
        self.offset_s = offset_s
        self.window_s = window_s
        direction = "ahead of" if offset_s > 0 else "behind"
        detail = (
            f"the camera's clock is {_human_duration(abs(offset_s))} {direction} the gateway's "
            f"(allowed: {window_s:g} s) and it rejected the WS-Security login"
        )
        advice = (
            "Set the camera's NTP server (or its time) so its clock is right, then probe again; "
            "if it still fails, check the username and password"
        )
        super().__init__(camera, operation, detail, advice=advice)

    @property
    def message_zh(self) -> str:
        step = f"（{self.operation}）" if self.operation else ""
        return (
            f"摄像机 {self.camera}{step}：{self.title_zh}（相差 {_human_duration(abs(self.offset_s))}）。"
            "请为摄像机配置 NTP 服务器或校准时间后重试；如仍失败，请核对用户名和密码。"
        )


class NotOnvif(OnvifError):
    title_en = "Not an ONVIF service"
    title_zh = "该地址不是 ONVIF 服务"
    advice_en = (
        "Something answers HTTP on that port but not ONVIF SOAP: check the port (ONVIF is often on 80, "
        "8000 or 8080) and that ONVIF is enabled in the camera's web settings"
    )
    advice_zh = "该端口有 HTTP 服务但不是 ONVIF：请核对端口（常见为 80、8000、8080），并在摄像机网页设置中启用 ONVIF。"


class Unsupported(OnvifError):
    title_en = "Camera does not support this"
    title_zh = "摄像机不支持该功能"
    advice_en = "The camera does not offer this ONVIF service or operation; use another profile or camera"
    advice_zh = "摄像机未提供该 ONVIF 服务或操作；请换用其他配置或摄像机。"


class DeviceFault(OnvifError):
    title_en = "Camera rejected the request"
    title_zh = "摄像机拒绝了请求"
    advice_en = "Check the values sent (profile and preset tokens) and the camera's ONVIF settings"
    advice_zh = "请检查请求参数（配置文件、预置位标识）及摄像机的 ONVIF 设置。"


class MalformedResponse(OnvifError):
    title_en = "Camera sent a broken answer"
    title_zh = "摄像机返回的数据无法解析"
    advice_en = (
        "The answer was truncated or not valid ONVIF; retry, and if it persists update the camera's "
        "firmware or report the camera model"
    )
    advice_zh = "返回内容被截断或不符合 ONVIF 规范；请重试，如持续出现请升级摄像机固件或上报该型号。"


AUTH_FAULT_CODES = frozenset(
    {
        "NotAuthorized",  # ter:NotAuthorized (ONVIF Core)
        "FailedAuthentication",  # wsse:FailedAuthentication (WS-Security)
        "InvalidSecurity",
        "InvalidSecurityToken",
        "FailedCheck",
        "MessageExpired",  # wsse: the token's Created is too old for the camera
        "Unauthorized",
    }
)
AUTH_FAULT_REASONS = ("not authorized", "unauthorized", "authenticat")  # firmwares with a generic code
UNSUPPORTED_FAULT_CODES = frozenset({"ActionNotSupported", "NoSuchService", "NotSupported", "OperationNotSupported"})
UNSUPPORTED_FAULT_REASONS = ("not supported", "not implemented")


def classify_fault(codes: Iterable[str], reason: str) -> type[AuthFailed] | type[Unsupported] | type[DeviceFault]:
    """The error class a SOAP fault means: ``codes`` are the local names of its Code/Subcode values
    (``parsers.FaultInfo.codes``), ``reason`` its Reason text. Camera quirk: some firmwares send a
    generic code (``env:Sender``) and say what happened only in the reason, so it is read too.
    An ``AuthFailed`` becomes a ``ClockSkew`` where the caller knows the clock is off."""
    found, text = set(codes), reason.lower()
    if found & AUTH_FAULT_CODES or any(words in text for words in AUTH_FAULT_REASONS):
        return AuthFailed
    if found & UNSUPPORTED_FAULT_CODES or any(words in text for words in UNSUPPORTED_FAULT_REASONS):
        return Unsupported
    return DeviceFault


def _human_duration(seconds: float) -> str:
    """``3725`` -> ``'1h 2m 5s'``; sub-minute values keep one decimal."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    total = round(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours else []
    parts += [f"{minutes}m"] if minutes else []
    parts += [f"{secs}s"] if secs else []
    return " ".join(parts)
