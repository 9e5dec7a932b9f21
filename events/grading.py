"""Grading and classification (分级分类): colour grade, category, deadline tier and routing, from the tables.

``Grader`` applies checked tables (``grading_tables.load_tables``); it reads nothing itself. The
grade comes from the most specific matching row (see config/grading.yaml's header); the category
from the rule; the deadline tier from the grade and category; the routing level from the grade (or a
category override) and the unit from the camera's location.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from xueliang.events.codes import to_local
from xueliang.events.grading_tables import (
    DAY_MINUTES,
    Category,
    GradeRow,
    Tables,
    load_tables,
    rule_breadth,
    rule_matches,
)
from xueliang.events.models import CameraContext, DeadlineTier, Grade, Routing, RoutingLevel
from xueliang.events.settings import TableSettings

_REGION = re.compile(r"\d{6}")
OTHER_CATEGORY = Category(code="9999", name_zh="其他", name_en="Other", rules=["*"])
_LEVEL_UP = {
    RoutingLevel.GRID: RoutingLevel.TOWNSHIP,
    RoutingLevel.TOWNSHIP: RoutingLevel.DISTRICT,
    RoutingLevel.DISTRICT: RoutingLevel.CITY,
}


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the tables say about one incident."""

    grade: Grade
    category: Category
    tier: DeadlineTier
    due_at: datetime
    routing: Routing


@dataclass(frozen=True, slots=True)
class _CompiledRow:
    row: GradeRow
    places: frozenset[str] | None
    minutes: frozenset[int] | None
    low: float
    high: float

    def matches(self, place: str, minute: int, value: float) -> bool:
        return (
            (self.places is None or place in self.places)
            and (self.minutes is None or minute in self.minutes)
            and self.low <= value < self.high
        )


class Grader:
    """Grades, classifies, sets deadlines and routes incidents by the checked tables."""

    def __init__(self, tables: Tables, timezone: str = "Asia/Shanghai") -> None:
        self.tables = tables
        self.zone = ZoneInfo(timezone)
        grading = tables.grading
        windows = {w.name: w.minutes() for w in grading.time_windows}
        compiled = [
            _CompiledRow(
                row=row,
                places=frozenset(row.places) if row.places else None,
                minutes=windows[row.window] if row.window else None,
                low=row.value_min if row.value_min is not None else float("-inf"),
                high=row.value_max if row.value_max is not None else float("inf"),
            )
            for row in grading.rules
        ]
        # Most specific context first: exact rule, fewest places, shortest window.
        n_places = len(grading.places) + 1
        self._rows = sorted(
            compiled,
            key=lambda c: (
                rule_breadth(c.row.rule),
                len(c.places) if c.places is not None else n_places,
                len(c.minutes) if c.minutes is not None else DAY_MINUTES + 1,
            ),
        )
        self._deadlines = {(d.grade, d.category): d.tier for d in grading.deadlines}
        self._levels = {row.grade: row.level for row in tables.routing.levels}
        self._overrides = {row.category: row for row in tables.routing.overrides}
        self._rows_for = lru_cache(maxsize=1024)(self._rows_for_uncached)
        self._category_for = lru_cache(maxsize=1024)(self._category_uncached)
        # Per local minute of the day: which time windows it lies in, as a bitmask (``time_mark``).
        spans = list(windows.values())
        self._marks = [sum(1 << i for i, w in enumerate(spans) if minute in w) for minute in range(DAY_MINUTES)]

    @classmethod
    def from_settings(cls, tables: TableSettings, timezone: str) -> Grader:
        """Load and check the tables; raises ``GradingTableError`` listing every problem."""
        return cls(load_tables(tables.grading, tables.routing), timezone)

    def _rows_for_uncached(self, rule: str) -> tuple[_CompiledRow, ...]:
        return tuple(c for c in self._rows if rule_matches(c.row.rule, rule))

    def _category_uncached(self, rule: str) -> Category | None:
        best: tuple[int, Category] | None = None
        for category in self.tables.grading.categories:
            for pattern in category.rules:
                if rule_matches(pattern, rule) and (best is None or rule_breadth(pattern) < best[0]):
                    best = (rule_breadth(pattern), category)
        return best[1] if best else None

    def _minute(self, at: datetime) -> int:
        """The local minute of the day of ``at``."""
        local = to_local(at, self.zone)
        return local.hour * 60 + local.minute

    def time_mark(self, at: datetime) -> int:
        """Which of the tables' time windows ``at`` lies in, as a bitmask: a change of the mark is a
        window edge crossed (what the aggregator re-grades an incident on)."""
        return self._marks[self._minute(at)]

    def grade(self, rule: str, value: float, place: str, at: datetime) -> Grade | None:
        """The colour grade, or None when no row covers the value (no case)."""
        minute = self._minute(at)
        for compiled in self._rows_for(rule):
            if compiled.matches(place, minute, value):
                return compiled.row.grade
        return None

    def category(self, rule: str) -> Category:
        """The rule's category; ``OTHER_CATEGORY`` (9999) for a rule no table row names."""
        return self._category_for(rule) or OTHER_CATEGORY

    def deadline(self, grade: Grade, category_code: str, observed_at: datetime) -> tuple[DeadlineTier, datetime]:
        tier = self._deadlines.get((grade, category_code)) or self._deadlines[(grade, None)]
        return tier, observed_at + timedelta(hours=self.tables.grading.tier_hours[tier])

    def route(self, grade: Grade, category_code: str, camera: CameraContext) -> Routing:
        override = self._overrides.get(category_code)
        level = override.level if override is not None else self._levels[grade]
        if override is not None and override.unit_code:
            return Routing(level=level, unit_code=override.unit_code)
        wanted = level
        city = self.tables.routing.city_code or ""
        while True:
            unit = _unit_code(level, camera, city)
            if unit or level == RoutingLevel.CITY:
                break
            level = _LEVEL_UP[level]
        note = "" if level == wanted else f"camera {camera.id} has no {wanted} code; routed to {level}"
        if not unit:
            note += "; no city_code in routing.yaml either: the centre must assign the unit"
        return Routing(level=level, unit_code=unit, note=note)

    def assess(
        self, rule: str, value: float, camera: CameraContext, at: datetime, *, grade: Grade | None = None
    ) -> Assessment | None:
        """Everything for a case, or None when the value grades to nothing and no grade is forced."""
        chosen = grade or self.grade(rule, value, camera.place, at)
        if chosen is None:
            return None
        category = self.category(rule)
        tier, due_at = self.deadline(chosen, category.code, at)
        return Assessment(chosen, category, tier, due_at, self.route(chosen, category.code, camera))


def _unit_code(level: RoutingLevel, camera: CameraContext, city_code: str) -> str:
    region = camera.region_code if _REGION.fullmatch(camera.region_code) else ""  # 6 digits, else none
    if level == RoutingLevel.GRID:
        return camera.grid_code
    if level == RoutingLevel.TOWNSHIP:
        return camera.township_code
    if level == RoutingLevel.DISTRICT:
        return region
    return region[:4] + "00" if region else city_code
