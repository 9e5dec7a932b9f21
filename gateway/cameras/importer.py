"""Reading camera lists that technicians bring: CSV (UTF-8 with or without BOM, or GB18030) and
XLSX, with Chinese or English column headers. Each row becomes a ``CameraRow`` or a list of
precise problems (row number, column, what to do); one bad row never stops the others.

Only the file as a whole raises, always as ``ImportFileError`` with what to do:

- the file cannot be read (``OSError``), is empty, or has no address column;
- CSV: ``csv.Error`` (a field over the csv module's limit, usually an unclosed quote);
- XLSX: a damaged container or part (``zipfile.BadZipFile``, ``zlib.error``, ``EOFError``,
  ``NotImplementedError`` for an unknown compression), invalid XML (``xml.etree`` ``ParseError``,
  lxml ``XMLSyntaxError``), and what openpyxl raises on parts it cannot make sense of
  (``KeyError``, ``ValueError``, ``TypeError``, ``IndexError``);
- more than ``max_rows`` rows after the header (``cameras.max_import_rows``): a list is read whole
  into memory, so its size is bounded before it is.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
import zlib
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from xml.etree.ElementTree import ParseError as XmlParseError

from lxml.etree import XMLSyntaxError
from pydantic import Field, ValidationError

from xueliang.gateway.cameras.errors import ImportFileError
from xueliang.gateway.cameras.models import CameraSpec, normalise_host
from xueliang.gateway.cameras.settings import DEFAULT_MAX_IMPORT_ROWS
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
MAX_COLUMNS = 1024  # cells of an XLSX row read; a camera list has ~15 columns, a sheet up to 16,384
T = TypeVar("T")
Records = Generator[list[str], None, None]  # the rows of a file as text cells, header first

# What openpyxl raises on a damaged workbook, by kind (see the module docstring).
XLSX_CONTAINER_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError)
XLSX_XML_ERRORS = (XmlParseError, XMLSyntaxError)
XLSX_CONTENT_ERRORS = (KeyError, ValueError, TypeError, IndexError, OSError)

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
    number = _whole_number(text)
    if not 1 <= number <= 5:
        raise ValueError("priority must be 1 (key place) .. 5, or 重点/高/中/低")
    return number


def _whole_number(value: str) -> int:
    """``"8080"``, ``"8080.0"`` (a number cell saved as text) -> 8080; ``ValueError`` otherwise."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number) or not number.is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


def _finite(value: str) -> float:
    """A coordinate: ``"30.5"`` -> 30.5; ``nan``/``inf`` and non-numbers are ``ValueError``."""
    try:
        number = float(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _row(number: int, values: dict[str, str], problems: list[RowProblem]) -> CameraRow | None:
    found: list[RowProblem] = []

    def convert(column: str, parse: Callable[[str], T], default: T) -> T:
        raw = values.get(column, "")
        try:
            return parse(raw) if raw.strip() or column in REQUIRED else default
        except (ValueError, OverflowError) as exc:  # OverflowError: a number too large for its type
            found.append(RowProblem(number, column, str(exc) or f"{raw!r} is out of range"))
            return default

    host = convert("host", normalise_host, "")
    port = convert("port", _whole_number, 80)
    lat: float | None = convert("lat", _finite, None)
    lon: float | None = convert("lon", _finite, None)
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


def _csv_records(data: bytes) -> Records:
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
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        yield from reader
    except csv.Error as exc:
        raise ImportFileError(
            f'line {reader.line_num} of the CSV cannot be read ({exc}): a quote (") opened and never closed '
            "swallows the rest of the file; fix the quoting there or save the sheet as CSV again"
        ) from exc


def _xlsx_records(data: bytes) -> Records:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (*XLSX_CONTAINER_ERRORS, *XLSX_XML_ERRORS, *XLSX_CONTENT_ERRORS) as exc:
        raise ImportFileError(
            f"not a readable XLSX workbook ({_xlsx_problem(exc)}); save it again or send CSV"
        ) from exc
    row = 0
    try:
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # read the rows present, not a (possibly huge) declared size
        for cells in sheet.iter_rows(values_only=True):
            yield [_cells(v) for v in cells[:MAX_COLUMNS]]
            row += 1
    except (*XLSX_CONTAINER_ERRORS, *XLSX_XML_ERRORS, *XLSX_CONTENT_ERRORS) as exc:
        raise ImportFileError(
            f"the XLSX workbook is damaged after row {row} of its first sheet ({_xlsx_problem(exc)}): "
            "open it in Excel or WPS and save it again, or send it as CSV"
        ) from exc
    finally:
        book.close()


def _xlsx_problem(exc: BaseException) -> str:
    if isinstance(exc, XLSX_CONTAINER_ERRORS):
        kind = "damaged ZIP container"
    elif isinstance(exc, XLSX_XML_ERRORS):
        kind = "invalid XML in a part"
    else:
        kind = "unreadable content"
    kind_of = type(exc)
    name = kind_of.__qualname__ if kind_of.__module__ == "builtins" else f"{kind_of.__module__}.{kind_of.__qualname__}"
    return f"{kind}: {name}: {exc}"


def parse_camera_file(path: Path, data: bytes | None = None, *, max_rows: int = DEFAULT_MAX_IMPORT_ROWS) -> ParsedFile:
    """Parse a CSV or XLSX camera list (``data``, or read from ``path``) of at most ``max_rows`` rows
    after the header. Raises ``ImportFileError`` only for the file as a whole."""
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImportFileError(f"cannot read the camera list {path}: {exc.strerror or exc}") from exc
    is_xlsx = path.suffix.lower() in (".xlsx", ".xlsm") or data[:2] == b"PK"
    records = _xlsx_records(data) if is_xlsx else _csv_records(data)
    try:
        return _parse_records(records, max_rows)
    finally:
        records.close()


def _parse_records(records: Records, max_rows: int) -> ParsedFile:
    parsed = ParsedFile()
    header = next(records, None)
    if header is None:
        raise ImportFileError("the file is empty: the first row must name the columns")
    mapping, parsed.unknown_columns = _column_map(header)
    for number, record in enumerate(records, start=2):
        if number - 1 > max_rows:
            raise ImportFileError(
                f"the camera list has more than {max_rows} rows after the header (cameras.max_import_rows; "
                "empty rows count too): split it into files of at most that many rows"
            )
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
