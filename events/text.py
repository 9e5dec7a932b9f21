"""Case titles and descriptions, Chinese first, English second, from rule, value, zone, place and time.

e.g. ``【橙色预警】城东街道 人民路与解放路口 发现人员聚集（42人）`` /
``[ORANGE] Crowd gathering (42 people) at 人民路与解放路口, 城东街道``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from xueliang.events.codes import to_local
from xueliang.events.models import CameraContext, DeadlineTier, Grade, RoutingLevel

GRADE_ZH = {Grade.BLUE: "蓝色预警", Grade.ORANGE: "橙色预警", Grade.RED: "红色预警"}
TIER_ZH = {
    DeadlineTier.ON_THE_SPOT: "即时办理",
    DeadlineTier.SAME_DAY: "当日办结",
    DeadlineTier.FIVE_DAYS: "5日内办结",
    DeadlineTier.TWO_MONTHS: "两个月内办结",
    DeadlineTier.LEADER_OWNED: "领导包案",
}
TIER_EN = {
    DeadlineTier.ON_THE_SPOT: "on the spot",
    DeadlineTier.SAME_DAY: "same day",
    DeadlineTier.FIVE_DAYS: "within 5 days",
    DeadlineTier.TWO_MONTHS: "within two months",
    DeadlineTier.LEADER_OWNED: "owned by a leader",
}
LEVEL_ZH = {
    RoutingLevel.GRID: "网格",
    RoutingLevel.TOWNSHIP: "乡镇(街道)",
    RoutingLevel.DISTRICT: "区县",
    RoutingLevel.CITY: "市级",
}

# rule -> (zh, en); ``{v}`` is the value formatted by the rule's unit.
_WHAT: dict[str, tuple[str, str]] = {
    "intrusion": ("人员闯入禁区（{v}人）", "Intrusion into a restricted area ({v} people)"),
    "crowd": ("人员聚集（{v}人）", "Crowd gathering ({v} people)"),
    "loitering": ("人员徘徊（{v}）", "Loitering ({v})"),
    "parking": ("违规停车（{v}）", "Illegal parking ({v})"),
    "quality.black": ("视频黑屏", "Black picture"),
    "quality.frozen": ("画面冻结", "Frozen picture"),
    "quality.blur": ("画面模糊", "Blurred picture"),
    "quality.occluded": ("镜头遮挡", "Lens blocked"),
    "quality.colour_cast": ("画面偏色", "Colour cast"),
    "quality.scene_changed": ("镜头移位（场景变化）", "Camera turned away (scene changed)"),
    "camera.offline": ("摄像机离线", "Camera offline"),
    "camera.auth_failed": ("摄像机认证失败", "Camera authentication failed"),
    "sensor.smoke": ("烟感告警", "Smoke alarm"),
    "sensor.water_level": ("水位告警", "Water level alarm"),
    "sensor.door": ("门磁告警", "Door alarm"),
}
_FAMILY: dict[str, tuple[str, str]] = {
    "quality": ("视频质量异常", "Video quality fault"),
    "camera": ("摄像机故障", "Camera fault"),
    "sensor": ("传感器告警", "Sensor alarm"),
}
_SECONDS_RULES = frozenset({"loitering", "parking"})


@dataclass(frozen=True, slots=True)
class CaseText:
    title_zh: str
    title_en: str
    description_zh: str
    description_en: str


def _value(rule: str, value: float, zh: bool) -> str:
    if rule in _SECONDS_RULES:
        return _span(value, zh)
    return f"{value:.0f}"


def _span(seconds: float, zh: bool) -> str:
    """A dwell time cut down, never rounded up (1799 s is 29分59秒, not 30 minutes: the grade's edge)."""
    minutes, secs = divmod(max(0, int(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if zh:
        parts = [(hours, "小时"), (minutes, "分钟" if not secs else "分"), (secs, "秒")]
        return "".join(f"{n}{unit}" for n, unit in parts if n) or "0秒"
    return " ".join(f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min"), (secs, "s")) if n) or "0 s"


def local_time(at: datetime, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """``at`` in the node's local time, with its UTC offset: ``2025-03-01 10:00:00 UTC+08:00``.

    A naive ``at`` is taken as UTC (the gateway keeps every time in UTC), never as the host's zone."""
    local = to_local(at, zone)
    offset = local.strftime("%z")
    return f"{local.strftime(fmt)} UTC{offset[:3]}:{offset[3:]}"


def what(rule: str, value: float) -> tuple[str, str]:
    """What was seen, (zh, en)."""
    zh, en = _WHAT.get(rule) or _FAMILY.get(rule.split(".", 1)[0]) or (f"异常（{rule}）", f"Anomaly ({rule})")
    return zh.format(v=_value(rule, value, True)), en.format(v=_value(rule, value, False))


def _duration(seconds: float, zh: bool) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if zh:
        return (f"{hours}小时" if hours else "") + (f"{minutes}分" if minutes or hours else "") + f"{secs}秒"
    return (f"{hours} h " if hours else "") + (f"{minutes} min " if minutes or hours else "") + f"{secs} s"


def case_text(
    *,
    rule: str,
    value: float,
    zone: str,
    camera: CameraContext,
    grade: Grade,
    category_zh: str,
    category_en: str,
    first_seen: datetime,
    last_seen: datetime,
    count: int,
    tier: DeadlineTier,
    due_at: datetime,
    level: RoutingLevel,
    unit_code: str,
    timezone: str,
) -> CaseText:
    zone_info = ZoneInfo(timezone)
    seen_zh, seen_en = what(rule, value)
    place = camera.address or camera.name or camera.id
    where_zh = " ".join(p for p in (camera.township, place) if p)
    where_en = ", ".join(p for p in (place, camera.township, camera.district) if p)
    title_zh = f"【{GRADE_ZH[grade]}】{where_zh} 发现{seen_zh}"
    title_en = f"[{grade.upper()}] {seen_en} at {where_en}"
    local_first = local_time(first_seen, zone_info)
    local_due = local_time(due_at, zone_info, "%Y-%m-%d %H:%M")
    lasted = max(0.0, (last_seen - first_seen).total_seconds())
    zone_zh = f"（区域“{zone}”）" if zone else ""
    zone_en = f" (zone '{zone}')" if zone else ""
    camera_label = f"「{camera.name}」" if camera.name else ""
    description_zh = (
        f"{local_first} 起，摄像机{camera_label}（{camera.id}）在{camera.district}{camera.township}{place}{zone_zh}"
        f"发现{seen_zh}，持续{_duration(lasted, True)}，共{count}次观测。"
        f"分类：{category_zh}；处置时限：{TIER_ZH[tier]}（{local_due}前）；派往：{LEVEL_ZH[level]} {unit_code}。"
    )
    description_en = (
        f"From {local_first} ({timezone}), camera {camera.name or camera.id} ({camera.id}) saw {seen_en.lower()} "
        f"at {where_en}{zone_en}, lasting {_duration(lasted, False)}, {count} observation(s). "
        f"Category: {category_en}; deadline: {TIER_EN[tier]} (by {local_due}); routed to {level} {unit_code}."
    )
    return CaseText(title_zh, title_en, description_zh, description_en)
