"""The wall's exception tree, drawn once.

::

    WallError (GatewayError)            base of everything the wall raises on purpose
    ├── SourceError                     a camera's stream could not be read
    │   ├── SourceUnavailable           connect/read failed or timed out (network, offline camera)
    │   ├── SourceRefused               the camera refused us (401/403: wrong password)
    │   └── SourceUnsupported           no video track, or a codec we neither pass nor transcode
    ├── NoLiveStream                    the camera has no stream URI on record (HTTP 409)
    ├── CameraAddressRefused            the camera's address (ONVIF host or stream URI host) lies
    │                                   outside security.allowed_networks (HTTP 409)
    ├── RelayNotRunning                 the relay service is not started (HTTP 503)
    ├── CapacityReached                 upstream / session / per-user limit reached (HTTP 503 / 429)
    ├── OfferRejected                   the SDP offer cannot be answered (HTTP 400)
    ├── SessionNotFound                 no viewer session with that id (HTTP 404)
    ├── PtzError                        a PTZ command failed
    │   ├── PtzUnsupported              the camera has no PTZ (HTTP 409)
    │   └── PtzFailed                   the camera did not carry it out (HTTP 502)
    └── SavedWallError                  saved walls could not be read or written (HTTP 500)
        └── SavedWallLimit              more walls and tours than a user may keep (HTTP 422)

Two failures before anything reaches a camera are answered alike on every route of the wall
(WHEP, warm, PTZ), both a conflict between the camera's record and this node's configuration that
a technician must fix, never an upstream failure (502):

* the address is outside ``security.allowed_networks``: ``CameraAddressRefused`` (409);
* the stored password cannot be decrypted (``security.camera_key`` changed): the gateway's own
  ``SecretUnreadable`` (409, as everywhere in the API), its message prefixed with the camera.

A host name that does not resolve is a camera that cannot be reached: ``SourceUnavailable`` for a
stream, ``PtzFailed`` for PTZ (502). Both conversions live in ``xueliang.api.wall.cameras``
(``check_camera_host``, ``camera_password``).

``xueliang.api.errors`` maps them to HTTP answers; messages say what failed, which camera or
session, and what to do.

Operators read Chinese first (English second). ``str(err)`` stays English (logs, tests, the
technician); each class carries ``title_zh`` (what failed) and ``advice_zh`` (what to do), and
:func:`operator_text` is the one place that puts them together for the page:
``"<title_zh>：<advice_zh> / <English message>"`` (the house pattern, as the ONVIF connector's
``message_zh`` and the PTZ preset message). A message raised already in Chinese first is left
as it is. The Chinese text holds no variable data: nothing from the request or the camera record
(the English detail names the camera, and never a password: stream URLs are shown without
credentials).
"""

from __future__ import annotations

import re
from typing import ClassVar

from xueliang.gateway.errors import GatewayError

_STARTS_CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


class WallError(GatewayError):
    """Base class of the wall's deliberate errors."""

    title_zh: ClassVar[str] = "视频墙操作失败"
    advice_zh: ClassVar[str] = "请稍后重试；如仍失败，请联系技术人员。"

    @property
    def message_zh(self) -> str:
        """What failed and what to do, in Chinese, for the operator (the English follows it)."""
        return f"{self.title_zh}：{self.advice_zh}"


def operator_text(error: WallError) -> str:
    """``error`` as the wall page shows it: Chinese first, then the English message unchanged."""
    english = str(error)
    if _STARTS_CHINESE.match(english):
        return english  # already bilingual at the raise site: no second prefix
    return f"{error.message_zh} / {english}"


class SourceError(WallError):
    """A camera's stream could not be read."""

    title_zh = "无法读取摄像机视频流"
    advice_zh = "请确认摄像机在线，画面会自动重连；如仍失败，请联系技术人员。"


class SourceUnavailable(SourceError):
    """Connecting to or reading from the camera failed or timed out."""

    title_zh = "无法连接摄像机视频流或视频流已中断"
    advice_zh = "请确认摄像机已通电、接入网络且地址正确；画面会自动重连。"


class SourceRefused(SourceError):
    """The camera refused the credentials on record."""

    title_zh = "摄像机拒绝了用户名或密码"
    advice_zh = "请技术人员核对该摄像机登记的用户名和密码。"


class SourceUnsupported(SourceError):
    """The stream has no video, or a codec we can neither pass through nor transcode."""

    title_zh = "摄像机视频格式不受支持"
    advice_zh = "请技术人员将摄像机实时视频改为 H.264 编码，或开启 wall.transcode_fallback。"


class NoLiveStream(WallError):
    """The camera has no stream URI on record."""

    title_zh = "该摄像机没有可用的实时视频流"
    advice_zh = "请技术人员重新探测该摄像机，或设置其实时视频配置。"


class CameraAddressRefused(WallError):
    """The camera's address lies outside ``security.allowed_networks``: the node will not connect."""

    title_zh = "拒绝连接：摄像机地址不在允许的网络内"
    advice_zh = "请技术人员修正摄像机地址，或将其网络加入 security.allowed_networks。"


class RelayNotRunning(WallError):
    """The relay service is not running (node starting or stopping)."""

    title_zh = "视频转发服务未运行"
    advice_zh = "网关正在启动或停止，请稍后重试。"


class CapacityReached(WallError):
    """A relay or session limit is reached. ``per_user`` tells a user's own limit from the node's."""

    title_zh = "本节点可转发的视频路数已满"
    advice_zh = "请关闭其他画面后重试，或请管理员调高上限。"

    def __init__(self, message: str, *, per_user: bool = False) -> None:
        super().__init__(message)
        self.per_user = per_user

    @property
    def message_zh(self) -> str:
        if self.per_user:
            return "已达到您可同时观看的画面数上限：请关闭部分画面或其他视频墙页面后重试。"
        return super().message_zh


class OfferRejected(WallError):
    """The SDP offer cannot be answered."""

    title_zh = "浏览器的视频请求无法应答"
    advice_zh = "请使用支持 H.264 WebRTC 的浏览器（如新版 Chrome、Edge）并刷新页面。"


class SessionNotFound(WallError):
    """No viewer session with that id."""

    title_zh = "观看会话不存在"
    advice_zh = "会话已结束或从未建立，请重新打开该画面。"


class PtzError(WallError):
    """A PTZ command failed."""

    title_zh = "云台控制失败"
    advice_zh = "请稍后重试；如仍失败，请联系技术人员。"


class PtzUnsupported(PtzError):
    """The camera has no PTZ."""

    title_zh = "该摄像机不支持此云台操作"
    advice_zh = "请选择带云台的摄像机，或改用其他操作。"


class PtzFailed(PtzError):
    """The camera did not carry out the command."""

    title_zh = "云台命令执行失败"
    advice_zh = "请确认摄像机在线且登记的用户名密码正确，稍后重试。"


class SavedWallError(WallError):
    """Saved walls could not be read or written."""

    title_zh = "已保存的墙无法读取或写入"
    advice_zh = "请联系技术人员检查网关的数据目录。"


class SavedWallLimit(SavedWallError):
    """More saved walls and tours than one user may keep."""

    title_zh = "已保存的墙和巡视数量已达上限"
    advice_zh = "请先删除不用的墙或巡视，再保存。"
