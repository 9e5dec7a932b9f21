"""Zones: named polygons over a camera's picture, in NORMALISED coordinates (0..1 of width and height).

A zone says where a rule looks (``kind``), when (``active`` hour windows in local time; none means
always) and with which thresholds (``None`` takes the rule default). Normalised coordinates keep
a zone valid whatever resolution the camera streams or the frame is decoded at.

Validation is strict and says what to fix: fewer than 3 points, a point outside 0..1 (its index and
value), a point repeated, two edges that cross or touch (their indices and where; an outline
folding back on itself touches itself), zero area. The inside test (``contains``) is even-odd ray
casting in plain Python over each polygon's cached edges: a frame has a few boxes per zone.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from datetime import datetime, time
from typing import Annotated, Protocol

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from xueliang.inference.frames import Detection

Point = tuple[float, float]

_EPS = 1e-12
MIN_AREA = 1e-6  # of the picture: about one pixel of a 1280x720 frame


class ZoneKind(enum.StrEnum):
    INTRUSION = "intrusion"  # people inside during the active hours
    CROWD = "crowd"  # people counted inside at or above a threshold
    LOITERING = "loitering"  # a tracked person dwelling inside (watch mode only)
    NO_PARKING = "no_parking"  # a vehicle staying inside longer than a threshold


def _not_a_number(value: object) -> object:
    if isinstance(value, int | float):  # pydantic would read it as seconds after midnight, in UTC
        raise ValueError(  # noqa: TRY004 - pydantic turns ValueError (not TypeError) into a ValidationError
            f"time {value!r} is a number: write it as a quoted 'HH:MM' string (YAML reads an unquoted "
            "22:00 as the number 1320)"
        )
    return value


def _no_offset(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError(
            f"time {value.isoformat()} carries a UTC offset: give the local wall time (HH:MM) of the "
            "configured time zone, without an offset"
        )
    return value


# A local wall-clock time of day, "HH:MM[:SS]": numbers (seconds, or YAML's sexagesimal 22:00 = 1320)
# and times with a UTC offset are refused (an offset-aware time cannot be compared with local time)
LocalTime = Annotated[time, BeforeValidator(_not_a_number), AfterValidator(_no_offset)]


class TimeWindow(BaseModel):
    """Local hours a zone is active: ``start`` to ``end`` on the given ISO weekdays (1 = Monday).
    An ``end`` earlier than ``start`` runs past midnight (the weekday is the one it starts on).
    ``start`` is inclusive, ``end`` exclusive; ``start == end`` is refused (empty or all day would be
    a guess: leave ``active`` empty for always). Times are wall-clock times of the local zone: on a
    spring-forward day an hour that does not exist is never active, on a fall-back day an hour
    that occurs twice is active both times."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    start: LocalTime = Field(description="Local start time, e.g. '22:00' (quoted in YAML)")
    end: LocalTime = Field(description="Local end time, e.g. '06:00' (earlier than start: past midnight)")
    days: tuple[int, ...] = Field((1, 2, 3, 4, 5, 6, 7), description="ISO weekdays, 1 = Monday .. 7 = Sunday")

    @field_validator("days")
    @classmethod
    def _weekdays(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        bad = [d for d in days if not 1 <= d <= 7]
        if bad or not days:
            raise ValueError(f"weekdays must be 1 (Monday) .. 7 (Sunday), got {list(days)}")
        return days

    @model_validator(mode="after")
    def _not_empty(self) -> TimeWindow:
        if self.start == self.end:
            raise ValueError(f"window {self.start}-{self.end} is empty: start and end must differ")
        return self


class Zone(BaseModel):
    """One zone of one camera. Thresholds left ``None`` take the rule defaults (``RuleSettings``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    id: str = Field(min_length=1, max_length=64, description="Zone id, unique per camera; named in anomalies")
    name: str = Field("", description="Name shown to operators (Chinese first), e.g. 校门口 / school gate")
    kind: ZoneKind = Field(description="intrusion | crowd | loitering | no_parking")
    polygon: tuple[Point, ...] = Field(description="Outline as (x, y) points, normalised 0..1, in order")
    active: tuple[TimeWindow, ...] = Field((), description="Local hour windows the zone is active; empty: always")
    labels: tuple[str, ...] = Field((), description="Detector labels that count; empty: the kind's default")
    min_score: float | None = Field(None, ge=0, le=1, description="Least detection score; None: rule default")
    min_count: int | None = Field(None, ge=1, description="crowd: people at or above this; None: rule default")
    dwell_s: float | None = Field(
        None, gt=0, description="loitering / no_parking: seconds of dwell or stay; None: rule default"
    )

    @field_validator("polygon")
    @classmethod
    def _valid_polygon(cls, polygon: tuple[Point, ...]) -> tuple[Point, ...]:
        problem = _known_problem(polygon)
        if problem:
            raise ValueError(problem)
        return polygon


@functools.lru_cache(maxsize=4096)
def _known_problem(polygon: tuple[Point, ...]) -> str:
    """``polygon_problem``, remembered: every patrol job carries its camera's zones and is validated
    on each visit, the same few polygons again and again."""
    return polygon_problem(polygon)


def polygon_problem(polygon: Sequence[Point]) -> str:
    """What is wrong with ``polygon`` as a zone outline, in words; "" when it is valid."""
    n = len(polygon)
    if n < 3:
        return f"polygon has {n} point(s); a zone needs at least 3 (x, y) points, normalised 0..1"
    for index, (x, y) in enumerate(polygon):
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            return (
                f"point {index} ({x:g}, {y:g}) is outside the picture: x and y must be within 0..1 "
                "(normalised: divide pixel coordinates by the image width and height)"
            )
    for index in range(n):
        if polygon[index] == polygon[(index + 1) % n]:
            x, y = polygon[index]
            return f"points {index} and {(index + 1) % n} are the same ({x:g}, {y:g}); remove one of them"
    crossing = _first_crossing(polygon)
    if crossing:
        return crossing
    area = abs(polygon_area(polygon))
    if area < MIN_AREA:
        return (
            f"polygon has zero area ({area:.2g} of the picture: its points lie on one line or nearly on one "
            "spot); give an outline that encloses a region"
        )
    return ""


def polygon_area(polygon: Sequence[Point]) -> float:
    """Signed area (shoelace formula), in normalised units (1.0 = the whole picture)."""
    n = len(polygon)
    return 0.5 * sum(
        polygon[i][0] * polygon[(i + 1) % n][1] - polygon[(i + 1) % n][0] * polygon[i][1] for i in range(n)
    )


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _on_segment(p: Point, a: Point, b: Point) -> bool:
    return min(a[0], b[0]) - _EPS <= p[0] <= max(a[0], b[0]) + _EPS and (
        min(a[1], b[1]) - _EPS <= p[1] <= max(a[1], b[1]) + _EPS
    )


def _segments_meet(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    if ((d1 > _EPS and d2 < -_EPS) or (d1 < -_EPS and d2 > _EPS)) and (
        (d3 > _EPS and d4 < -_EPS) or (d3 < -_EPS and d4 > _EPS)
    ):
        return True
    return any(
        abs(d) <= _EPS and _on_segment(p, a, b)
        for d, p, a, b in ((d1, p1, q1, q2), (d2, p2, q1, q2), (d3, q1, p1, p2), (d4, q2, p1, p2))
    )


def _meeting_point(p1: Point, p2: Point, q1: Point, q2: Point) -> Point:
    rx, ry = p2[0] - p1[0], p2[1] - p1[1]
    sx, sy = q2[0] - q1[0], q2[1] - q1[1]
    denom = rx * sy - ry * sx
    if abs(denom) <= _EPS:  # collinear overlap: report where the second edge starts
        return q1
    t = ((q1[0] - p1[0]) * sy - (q1[1] - p1[1]) * sx) / denom
    return (p1[0] + t * rx, p1[1] + t * ry)


def _first_crossing(polygon: Sequence[Point]) -> str:
    """Two edges that are not neighbours and touch or cross."""
    n = len(polygon)
    edges = [(polygon[i], polygon[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        a1, a2 = edges[i]
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue  # neighbours through the closing edge
            b1, b2 = edges[j]
            if _segments_meet(a1, a2, b1, b2):
                x, y = _meeting_point(a1, a2, b1, b2)
                return (
                    f"polygon crosses itself: edge {i} (point {i} -> {(i + 1) % n}) and edge {j} "
                    f"(point {j} -> {(j + 1) % n}) meet at ({x:.3f}, {y:.3f}); list the points in order "
                    "around the outline"
                )
    return ""


def contains(polygon: Sequence[Point], x: float, y: float) -> bool:
    """Whether the point (``x``, ``y``) (normalised) lies inside ``polygon`` (even-odd ray casting).

    Plain Python on purpose: a frame has a few boxes and a zone a few edges, and a numpy version
    spends more on building its small arrays than on the test (3x slower on a patrol frame).
    """
    inside = False
    for xi, yi, xj, yj in _edges(tuple(polygon)):
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
    return inside


@functools.lru_cache(maxsize=4096)
def _edges(polygon: tuple[Point, ...]) -> tuple[tuple[float, float, float, float], ...]:
    """Start and end x and y of each edge (a zone's polygon is met on every frame)."""
    return tuple((x0, y0, x1, y1) for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1], strict=True))


def foot_point(detection: Detection, width: int, height: int) -> tuple[float, float]:
    """Bottom-centre of a box (where a person stands, where a vehicle touches the ground),
    normalised to 0..1 of the frame."""
    return (detection.x1 + detection.x2) / 2.0 / width, detection.y2 / height


class HourWindow(Protocol):
    """Local hours on ISO weekdays: a zone's ``TimeWindow``, a patrol category's window."""

    @property
    def start(self) -> time: ...

    @property
    def end(self) -> time: ...

    @property
    def days(self) -> tuple[int, ...]: ...


def window_active(window: HourWindow, local: datetime) -> bool:
    """Whether the local time ``local`` falls in ``window`` (an end earlier than the start runs past
    midnight; the weekday is the one it starts on)."""
    now, today = local.time(), local.isoweekday()
    if window.start < window.end:
        return today in window.days and window.start <= now < window.end
    yesterday = 7 if today == 1 else today - 1
    return (today in window.days and now >= window.start) or (yesterday in window.days and now < window.end)


def active_at(zone: Zone, local: datetime) -> bool:
    """Whether ``zone`` is active at the local time ``local`` (always, when it has no windows)."""
    return not zone.active or any(window_active(window, local) for window in zone.active)
