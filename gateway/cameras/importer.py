"""Reading camera lists that technicians bring: CSV (UTF-8 with or without BOM, or GB18030) and
XLSX, with Chinese or English column headers. Each row becomes a ``CameraRow`` or a list of
precise problems (row number, column, what to do); one bad row never stops the others."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import Field, ValidationError

from xueliang.gateway.cameras.errors import ImportFileError
from xueliang.gateway.cameras.models import CameraSpec, normalise_host
from xueliang.gateway.models import Location, PatrolPolicy

__all__ = ["CameraRow", "ImportFileError", "ParsedFile", "RowProblem", "parse_camera_file"]

# Canonical field -> accepted headers (compared lower-cased, spaces/underscores removed).
HEADERS: dict[str, tuple[str, ...]] = {
    "id": ("id", "cameraid", "编号", "设备编号", "点位编号"),
    "name": ("name", "cameraname", "名称", "设备名称", "摄像机名称", "点位名称"),
    "host": ("address", "ip", "host", "ipaddress", "ip地址", "设备ip", "设备地址"),
    "port": ("port", "端口", "onvif端口"),
    "username": ("username", "user", "用户名", "账号", "帐号"),
    "password": ("password", "密码"),
    "region_code": ("regioncode", "region", "行政区划代码", "区划代码"),
    "district": ("district", "county", "区县", "区/县", "所属区县"),
    "township": ("township", "street", "乡镇街道", "街道", "乡镇", "所属街道"),
    "grid_code": ("gridcode", "grid", "网格编码", "网格", "网格代码"),
    "street_address": ("location", "streetaddress", "place", "安装地址", "详细地址", "位置", "安装位置"),
    "lat": ("lat", "latitude", "纬度"),
    "lon": ("lon", "lng", "longitude", "经度"),
    "category": ("category", "placetype", "类别", "场所类型", "点位类型", "场所类别"),
    "priority": ("priority", "patrolpriority", "优先级", "巡查优先级"),
}
REQUIRED = ("host",)
T = TypeVar("T")

CATEGORIES: dict[str, str] = {
    "道路": "road",
    "路口": "road",
    "广场": "square",
    "车站": "station",
    "站点": "station",
    "学校": "school",
    "校园": "school",
    "小区": "community",
    "社区": "community",
    "医院": "hospital",
    "商业": "commercial",
    "商场": "commercial",
    "公园": "park",
    "河道": "river",
    "其他": "other",
}
KNOWN_CATEGORIES = frozenset(CATEGORIES.values()) | {"industry"}
PRIORITY_WORDS = {"重点": 1, "高": 2, "中": 3, "一般": 3, "低": 4, "最低": 5}
PRIORITY_WORDS |= {"key": 1, "high": 2, "normal": 3, "low": 4}


class CameraRow(CameraSpec):
    """One valid row of a camera list, ready to provision."""

    row: int = Field(description="1-based line/row number in the file (header = 1)")


@dataclass(slots=True)
class RowProblem:
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.column}: {self.message}"


@dataclass(slots=True)
class ParsedFile:
    rows: list[CameraRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    total: int = 0
    invalid: dict[int, tuple[str, str]] = field(default_factory=dict)  # row -> (name, address) as written


def _norm(header: str) -> str:
    return "".join(str(header).lower().replace("\ufeff", "").split()).replace("_", "").replace("-", "")


def _column_map(headers: list[str]) -> tuple[dict[int, str], list[str]]:
    lookup = {_norm(alias): canonical for canonical, aliases in HEADERS.items() for alias in aliases}
    mapping: dict[int, str] = {}
    unknown: list[str] = []
    for index, header in enumerate(headers):
        canonical = lookup.get(_norm(header))
        if canonical is None:
            if str(header).strip():
                unknown.append(str(header))
        else:
            mapping[index] = canonical
    missing = [c for c in REQUIRED if c not in mapping.values()]
    if missing:
        accepted = ", ".join(HEADERS["host"])
        raise ImportFileError(f"no camera address column: name one of {accepted} in the first row")
    return mapping, unknown


def _category(value: str) -> str:
    text = value.strip()
    if not text:
        return ""
    english = CATEGORIES.get(text, text.lower())
    if english not in KNOWN_CATEGORIES:
        known = ", ".join(sorted(KNOWN_CATEGORIES))
        raise ValueError(f"unknown category {value!r}; use one of {known} or 道路/广场/车站/学校/小区…")
    return english


def _priority(value: str) -> int:
    text = value.strip()
    if not text:
        return 3
    word = PRIORITY_WORDS.get(text, PRIORITY_WORDS.get(text.lower()))
    if word is not None:
        return word
    number = int(float(text))
    if not 1 <= number <= 5:
        raise ValueError("priority must be 1 (key place) .. 5, or 重点/高/中/低")
    return number


def _row(number: int, values: dict[str, str], problems: list[RowProblem]) -> CameraRow | None:
    found: list[RowProblem] = []

    def convert(column: str, parse: Callable[[str], T], default: T) -> T:
        raw = values.get(column, "")
        try:
            return parse(raw) if raw.strip() or column in REQUIRED else default
        except ValueError as exc:
            found.append(RowProblem(number, column, str(exc)))
            return default

    host = convert("host", normalise_host, "")
    port = convert("port", lambda v: int(float(v)), 80)
    lat: float | None = convert("lat", float, None)
    lon: float | None = convert("lon", float, None)
    category = convert("category", _category, "")
    priority = convert("priority", _priority, 3)
    region = values.get("region_code", "").strip()
    if region and not (len(region) == 6 and region.isdigit()):
        found.append(RowProblem(number, "region_code", f"{region!r} is not a 6-digit region code (行政区划代码)"))
    if found:
        problems.extend(found)
        return None
    try:
        return CameraRow(
            row=number,
            id=values.get("id", "").strip(),
            name=values.get("name", "").strip() or host,
            host=host,
            port=port,
            username=values.get("username", "").strip(),
            password=values.get("password", ""),
            location=Location(
                region_code=region,
                district=values.get("district", "").strip(),
                township=values.get("township", "").strip(),
                grid_code=values.get("grid_code", "").strip(),
                address=values.get("street_address", "").strip(),
                lat=lat,
                lon=lon,
            ),
            category=category,
            policy=PatrolPolicy(priority=priority),
        )
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            column = str(error["loc"][-1]) if error["loc"] else "row"
            problems.append(RowProblem(number, column, error["msg"]))
        return None


def _cells(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _csv_records(data: bytes) -> Iterator[list[str]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise ImportFileError("not UTF-8 or GB18030 text")
    try:
        delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    yield from csv.reader(io.StringIO(text), delimiter=delimiter)


def _xlsx_records(data: bytes) -> Iterator[list[str]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(f"not a readable XLSX workbook ({exc})") from exc
    try:
        sheet = book.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield [_cells(v) for v in row]
    finally:
        book.close()


def parse_camera_file(path: Path, data: bytes | None = None) -> ParsedFile:
    """Parse a CSV or XLSX camera list. Raises ``ImportFileError`` only for the file as a whole."""
    data = path.read_bytes() if data is None else data
    is_xlsx = path.suffix.lower() in (".xlsx", ".xlsm") or data[:2] == b"PK"
    records = _xlsx_records(data) if is_xlsx else _csv_records(data)
    parsed = ParsedFile()
    header = next(records, None)
    if header is None:
        raise ImportFileError("the file is empty: the first row must name the columns")
    mapping, parsed.unknown_columns = _column_map(header)
    for number, record in enumerate(records, start=2):
        if not any(cell.strip() for cell in record):
            continue
        parsed.total += 1
        values = {mapping[i]: cell for i, cell in enumerate(record) if i in mapping}
        row = _row(number, values, parsed.problems)
        if row is not None:
            parsed.rows.append(row)
        else:
            address = values.get("host", "").strip()
            port = values.get("port", "").strip()
            parsed.invalid[number] = (values.get("name", "").strip(), f"{address}:{port}" if port else address)
    return parsed
