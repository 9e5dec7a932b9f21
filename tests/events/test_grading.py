"""Grading tables: the packaged ones load; broken ones are refused naming file, row and field; decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from xueliang.events.errors import GradingTableError
from xueliang.events.grading import Grader
from xueliang.events.grading_tables import load_tables
from xueliang.events.models import CameraContext, DeadlineTier, Grade, RoutingLevel
from xueliang.events.service import CaseService
from xueliang.events.settings import TableSettings

from .conftest import make_settings

CONFIG = Path(__file__).resolve().parents[2] / "config"
DAY = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 local
NIGHT = datetime(2025, 3, 1, 15, 0, tzinfo=UTC)  # 23:00 local


@pytest.fixture
def grader() -> Grader:
    return Grader.from_settings(TableSettings(), "Asia/Shanghai")


def broken(tmp_path: Path, change: dict[str, object]) -> Path:
    data = yaml.safe_load((CONFIG / "grading.yaml").read_text("utf-8"))
    for key, value in change.items():
        data[key] = value
    path = tmp_path / "grading.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return path


def messages(exc: GradingTableError) -> list[str]:
    return [str(p) for p in exc.problems]


def test_packaged_tables_load(grader: Grader) -> None:
    assert len(grader.tables.grading.rules) > 10


@pytest.mark.parametrize(
    ("rule", "value", "place", "at", "grade"),
    [
        ("crowd", 5, "road", DAY, None),
        ("crowd", 12, "road", DAY, Grade.BLUE),
        ("crowd", 12, "school", DAY, Grade.ORANGE),  # the nested place row wins
        ("crowd", 40, "road", DAY, Grade.ORANGE),
        ("crowd", 60, "station", DAY, Grade.RED),
        ("crowd", 150, "road", DAY, Grade.RED),
        ("intrusion", 1, "road", DAY, Grade.BLUE),
        ("intrusion", 1, "road", NIGHT, Grade.ORANGE),  # the night window wraps midnight
        ("intrusion", 1, "school", NIGHT, Grade.RED),
        ("quality.black", 0, "road", DAY, Grade.BLUE),
        ("camera.offline", 1, "school", DAY, Grade.ORANGE),
        ("sensor.smoke", 1, "road", DAY, Grade.RED),
        ("sensor.door", 1, "road", DAY, Grade.ORANGE),
        ("unknown.rule", 1, "road", DAY, None),
    ],
)
def test_grades(grader: Grader, rule: str, value: float, place: str, at: datetime, grade: Grade | None) -> None:
    assert grader.grade(rule, value, place, at) == grade


def test_category_deadline_and_routing(grader: Grader) -> None:
    cam = CameraContext(id="c1", region_code="511902", township_code="511902001", grid_code="", place="road")
    crowd = grader.assess("crowd", 40, cam, DAY)
    assert crowd is not None
    assert (crowd.category.code, crowd.tier) == ("0201", DeadlineTier.SAME_DAY)
    assert (crowd.routing.level, crowd.routing.unit_code) == (RoutingLevel.TOWNSHIP, "511902001")
    blue = grader.assess("crowd", 12, cam, DAY)
    assert blue is not None and blue.routing.level == RoutingLevel.TOWNSHIP  # no grid code: one level up
    assert "no grid code" in blue.routing.note
    fault = grader.assess("quality.frozen", 0, cam, DAY)
    assert fault is not None and fault.tier == DeadlineTier.SAME_DAY  # category row wins
    assert (fault.routing.level, fault.routing.unit_code) == (RoutingLevel.DISTRICT, "511902")  # override
    assert (fault.due_at - DAY).total_seconds() == 24 * 3600
    smoke = grader.assess("sensor.smoke", 1, cam, DAY)
    assert smoke is not None and smoke.tier == DeadlineTier.ON_THE_SPOT


def test_bad_grade_is_named_with_file_row_and_field(tmp_path: Path) -> None:
    data = yaml.safe_load((CONFIG / "grading.yaml").read_text("utf-8"))
    data["rules"][3]["grade"] = "purple"
    data["rules"][5]["colour"] = "red"
    data["rules"][6]["places"] = ["mall"]
    path = tmp_path / "grading.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(GradingTableError) as caught:
        load_tables(path)
    found = messages(caught.value)
    assert "grading.yaml: rules[3].grade: 'purple' is not one of blue, orange, red" in found
    assert "grading.yaml: rules[5].colour: unknown key (remove it or correct its spelling)" in found
    assert len(found) == 2  # schema errors stop before the cross-row checks


def test_cross_row_problems_are_all_listed(tmp_path: Path) -> None:
    data = yaml.safe_load((CONFIG / "grading.yaml").read_text("utf-8"))
    data["rules"].append({"rule": "crowd", "value_min": 20, "value_max": 40, "grade": "red"})  # overlaps rows 0, 1
    data["rules"].append({"rule": "crowd", "places": ["mall"], "grade": "red"})
    data["rules"].append({"rule": "crowd", "places": ["school", "road"], "value_min": 10, "grade": "blue"})
    data["deadlines"] = [d for d in data["deadlines"] if not (d["grade"] == "red" and "category" not in d)]
    path = tmp_path / "grading.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(GradingTableError) as caught:
        load_tables(path)
    found = "\n".join(messages(caught.value))
    n = len(data["rules"])
    assert f"rules[{n - 3}]: contradicts rules[0]: same rule, places and window, values overlap" in found
    assert f"rules[{n - 2}].places[0]: 'mall' is not one of" in found
    assert f"rules[{n - 1}]: contradicts rules[3]: contexts overlap without one inside the other" in found
    assert "deadlines: no row for grade red without category" in found


def test_routing_table_checked(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("levels:\n  - {grade: blue, level: street}\n  - {grade: blue, level: grid}\n", "utf-8")
    with pytest.raises(GradingTableError) as caught:
        load_tables(None, path)
    found = messages(caught.value)
    assert "routing.yaml: levels[0].level: 'street' is not one of grid, township, district, city" in found


async def test_broken_table_refuses_start(tmp_path: Path) -> None:
    from xueliang.gateway.stores.sqlite.database import Database
    from xueliang.gateway.stores.sqlite.outbox import SqliteOutbox

    settings = make_settings(tmp_path)
    settings.tables.grading = broken(tmp_path, {"tier_hours": {"same_day": 24}})
    db = await Database.open(tmp_path / "gw.sqlite3")
    service = CaseService(settings, SqliteOutbox(db))
    with pytest.raises(GradingTableError, match=r"grading\.yaml: tier_hours: no hours for tier on_the_spot"):
        await service.start()
    await db.close()
