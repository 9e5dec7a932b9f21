"""The grading and routing tables: their schema, loading, and the checks that refuse a broken table.

``load_tables`` reads config/grading.yaml and config/routing.yaml (or the files named in the
settings), validates them with pydantic (``extra="forbid"``) and then across rows (unknown places,
windows, categories; overlapping or contradictory rows; a grade without a deadline). Every problem
is collected and raised at once as ``GradingTableError``, each naming the file, the row and the field.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from xueliang.events.errors import GradingTableError, TableProblem
from xueliang.events.models import DeadlineTier, Grade, RoutingLevel

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_RULE = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?)$")
DAY_MINUTES = 24 * 60


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeWindow(_Row):
    name: str
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"{value!r} is not a time of day HH:MM (00:00 to 23:59)")
        return value

    def minutes(self) -> frozenset[int]:
        start, end = _to_minutes(self.start), _to_minutes(self.end)
        if start < end:
            return frozenset(range(start, end))
        return frozenset(range(start, DAY_MINUTES)) | frozenset(range(end))


class Category(_Row):
    code: str = Field(min_length=1)
    name_zh: str
    name_en: str
    rules: list[str] = Field(min_length=1)


class GradeRow(_Row):
    rule: str
    places: list[str] = Field(default_factory=list)
    window: str | None = None
    value_min: float | None = None
    value_max: float | None = None
    grade: Grade


class DeadlineRow(_Row):
    grade: Grade
    category: str | None = None
    tier: DeadlineTier


class GradingFile(_Row):
    places: list[str] = Field(min_length=1)
    time_windows: list[TimeWindow] = Field(default_factory=list)
    categories: list[Category] = Field(min_length=1)
    rules: list[GradeRow] = Field(min_length=1)
    deadlines: list[DeadlineRow] = Field(min_length=1)
    tier_hours: dict[DeadlineTier, float]


class LevelRow(_Row):
    grade: Grade
    level: RoutingLevel


class OverrideRow(_Row):
    category: str
    level: RoutingLevel
    unit_code: str | None = None


class RoutingFile(_Row):
    levels: list[LevelRow] = Field(min_length=1)
    overrides: list[OverrideRow] = Field(default_factory=list)
    city_code: str | None = Field(None, pattern=r"^\d{6}$")  # the city centre when a camera has no region code


class Tables(_Row):
    """Both tables, checked."""

    grading: GradingFile
    routing: RoutingFile


def _to_minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def rule_matches(pattern: str, rule: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return rule.startswith(pattern[:-1])
    return pattern == rule


def rule_breadth(pattern: str) -> int:
    """0 exact, 1 + depth-from-root for ``family.*`` (narrower families first), 99 for ``*``."""
    if pattern == "*":
        return 99
    if pattern.endswith(".*"):
        return 50 - pattern.count(".")
    return 0


_M = TypeVar("_M", bound=BaseModel)


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top)"


def _message(item: Any) -> str:
    kind = item["type"]
    if kind in ("enum", "literal_error"):
        expected = str(item.get("ctx", {}).get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{item['input']!r} is not one of {expected}"
    if kind == "extra_forbidden":
        return "unknown key (remove it or correct its spelling)"
    if kind == "missing":
        return "required, missing"
    return f"{item['msg']} (got {item['input']!r})"


def _parse(model: type[_M], data: Any, source: str, problems: list[TableProblem]) -> _M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for item in exc.errors(include_url=False):
            problems.append(TableProblem(source, _where(item["loc"]), _message(item)))
        return None


def _read(path: Path | None, packaged: str, problems: list[TableProblem]) -> tuple[str, Any]:
    source = path.name if path is not None else packaged
    try:
        if path is None:
            text = importlib.resources.files("xueliang.config").joinpath(packaged).read_text("utf-8")
        else:
            text = path.read_text("utf-8-sig")
    except OSError as exc:
        problems.append(TableProblem(str(path), "(file)", f"cannot read: {exc.strerror}; check the path"))
        return source, None
    try:
        return source, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        problems.append(TableProblem(source, where, f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        return source, None


def load_tables(grading_path: Path | None = None, routing_path: Path | None = None) -> Tables:
    """Read, validate and cross-check both tables; raises ``GradingTableError`` listing every problem."""
    problems: list[TableProblem] = []
    g_source, g_data = _read(grading_path, "grading.yaml", problems)
    r_source, r_data = _read(routing_path, "routing.yaml", problems)
    grading = _parse(GradingFile, g_data, g_source, problems) if g_data is not None or not problems else None
    routing = _parse(RoutingFile, r_data, r_source, problems) if r_data is not None or not problems else None
    if grading is not None:
        problems += check_grading(grading, g_source)
    if grading is not None and routing is not None:
        problems += check_routing(routing, grading, r_source)
    if problems or grading is None or routing is None:
        raise GradingTableError(problems)
    return Tables(grading=grading, routing=routing)


def _duplicates(names: list[str], source: str, where: Callable[[int], str], what: str) -> list[TableProblem]:
    seen: dict[str, int] = {}
    out = []
    for index, name in enumerate(names):
        if name in seen:
            out.append(TableProblem(source, where(index), f"{what} {name!r} repeats row {seen[name]}"))
        seen.setdefault(name, index)
    return out


def check_grading(table: GradingFile, source: str) -> list[TableProblem]:
    problems = _duplicates(table.places, source, lambda i: f"places[{i}]", "place")
    problems += _duplicates([w.name for w in table.time_windows], source, lambda i: f"time_windows[{i}].name", "window")
    problems += _duplicates([c.code for c in table.categories], source, lambda i: f"categories[{i}].code", "code")
    for index, window in enumerate(table.time_windows):
        if window.start == window.end:
            problems.append(TableProblem(source, f"time_windows[{index}]", "start equals end (an empty window)"))
    windows = {w.name: w for w in table.time_windows}
    places = set(table.places)
    owner: dict[str, str] = {}
    for c_index, category in enumerate(table.categories):
        for r_index, pattern in enumerate(category.rules):
            where = f"categories[{c_index}].rules[{r_index}]"
            if not _RULE.match(pattern):
                problems.append(TableProblem(source, where, f"{pattern!r} is not a rule, `family.*` or `*`"))
            elif pattern in owner:
                problems.append(TableProblem(source, where, f"{pattern!r} is already in category {owner[pattern]}"))
            owner.setdefault(pattern, category.code)
    for index, row in enumerate(table.rules):
        where = f"rules[{index}]"
        if not _RULE.match(row.rule):
            problems.append(TableProblem(source, f"{where}.rule", f"{row.rule!r} is not a rule, `family.*` or `*`"))
        elif not any(_rule_within(row.rule, p) or _rule_within(p, row.rule) for p in owner):
            problems.append(TableProblem(source, f"{where}.rule", f"{row.rule!r} belongs to no category"))
        for p_index, place in enumerate(row.places):
            if place not in places:
                known = ", ".join(table.places)
                problems.append(TableProblem(source, f"{where}.places[{p_index}]", f"{place!r} is not one of {known}"))
        if row.window is not None and row.window not in windows:
            known = ", ".join(windows) or "(none defined)"
            problems.append(TableProblem(source, f"{where}.window", f"{row.window!r} is not one of {known}"))
        if row.value_min is not None and row.value_max is not None and row.value_min >= row.value_max:
            problems.append(TableProblem(source, f"{where}.value_max", "must be greater than value_min"))
    problems += _overlaps(table, windows, source)
    codes = {c.code for c in table.categories}
    seen: dict[tuple[Grade, str | None], int] = {}
    for index, deadline in enumerate(table.deadlines):
        if deadline.category is not None and deadline.category not in codes:
            problems.append(
                TableProblem(source, f"deadlines[{index}].category", f"{deadline.category!r} is not a category code")
            )
        if (deadline.grade, deadline.category) in seen:
            first = seen[(deadline.grade, deadline.category)]
            problems.append(
                TableProblem(source, f"deadlines[{index}]", f"repeats deadlines[{first}] (same grade/category)")
            )
        seen.setdefault((deadline.grade, deadline.category), index)
    for grade in Grade:
        if (grade, None) not in seen:
            problems.append(
                TableProblem(source, "deadlines", f"no row for grade {grade} without category (the default)")
            )
    for tier in DeadlineTier:
        if tier not in table.tier_hours:
            problems.append(TableProblem(source, "tier_hours", f"no hours for tier {tier}"))
        elif table.tier_hours[tier] <= 0:
            problems.append(TableProblem(source, f"tier_hours.{tier}", "must be more than 0 hours"))
    return problems


def _overlaps(table: GradingFile, windows: dict[str, TimeWindow], source: str) -> list[TableProblem]:
    """Rows with the same context must not overlap in value; partly overlapping contexts must agree."""
    problems: list[TableProblem] = []
    everything = frozenset(range(DAY_MINUTES))
    all_places = frozenset(table.places)
    ctx = []
    for row in table.rules:
        window = windows.get(row.window) if row.window else None
        ctx.append((frozenset(row.places) or all_places, window.minutes() if window else everything))
    for i, a in enumerate(table.rules):
        for j in range(i + 1, len(table.rules)):
            b = table.rules[j]
            if not _values_overlap(a, b):
                continue
            a_rule_in_b, b_rule_in_a = _rule_within(a.rule, b.rule), _rule_within(b.rule, a.rule)
            if not (a_rule_in_b or b_rule_in_a):
                continue  # different rules: no incident matches both
            (a_places, a_minutes), (b_places, b_minutes) = ctx[i], ctx[j]
            if not (a_places & b_places) or not (a_minutes & b_minutes):
                continue
            same = a.rule == b.rule and a_places == b_places and a_minutes == b_minutes
            if same:
                kind = "contradicts" if a.grade != b.grade else "repeats"
                problems.append(
                    TableProblem(
                        source, f"rules[{j}]", f"{kind} rules[{i}]: same rule, places and window, values overlap"
                    )
                )
                continue
            a_in_b = a_rule_in_b and a_places <= b_places and a_minutes <= b_minutes
            b_in_a = b_rule_in_a and b_places <= a_places and b_minutes <= a_minutes
            if not (a_in_b or b_in_a) and a.grade != b.grade:
                problems.append(
                    TableProblem(
                        source,
                        f"rules[{j}]",
                        f"contradicts rules[{i}]: contexts overlap without one inside the other and grades differ "
                        f"({b.grade} vs {a.grade}); add a row for the overlap or narrow one of them",
                    )
                )
    return problems


def _values_overlap(a: GradeRow, b: GradeRow) -> bool:
    low = max(_or(a.value_min, float("-inf")), _or(b.value_min, float("-inf")))
    high = min(_or(a.value_max, float("inf")), _or(b.value_max, float("inf")))
    return low < high


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _rule_within(inner: str, outer: str) -> bool:
    """Every rule ``inner`` matches is matched by ``outer``."""
    if outer == "*":
        return True
    if inner == "*":
        return False
    if outer.endswith(".*"):
        return inner.startswith(outer[:-1]) or inner == outer
    return inner == outer


def check_routing(table: RoutingFile, grading: GradingFile, source: str) -> list[TableProblem]:
    problems: list[TableProblem] = []
    seen: dict[Grade, int] = {}
    for index, row in enumerate(table.levels):
        if row.grade in seen:
            problems.append(
                TableProblem(source, f"levels[{index}].grade", f"{row.grade} repeats levels[{seen[row.grade]}]")
            )
        seen.setdefault(row.grade, index)
    for grade in Grade:
        if grade not in seen:
            problems.append(TableProblem(source, "levels", f"no routing level for grade {grade}"))
    codes = {c.code for c in grading.categories}
    for index, override in enumerate(table.overrides):
        if override.category not in codes:
            problems.append(
                TableProblem(source, f"overrides[{index}].category", f"{override.category!r} is not a category")
            )
    problems += _duplicates([o.category for o in table.overrides], source, lambda i: f"overrides[{i}]", "category")
    return problems
