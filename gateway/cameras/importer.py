"""Reading camera lists that technicians bring: CSV (UTF-8 with or without BOM, GB18030, or UTF-16 with a BOM) and
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
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import Field, ValidationError

from xueliang.gateway.cameras.errors import ImportFileError
from xueliang.gateway.cameras.export import unneutralise
from xueliang.gateway.cameras.models import CameraSpec, normalise_host
from xueliang.gateway.cameras.settings import DEFAULT_MAX_IMPORT_ROWS
from xueliang.gateway.cameras.workbook import Records, check_xlsx, xlsx_records
from xueliang.gateway.models import Location, PatrolPolicy
from xueliang.gateway.validation_messages import readable

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
TEXT_COLUMNS = ("id", "name", "username", "region_code", "district", "township", "grid_code", "street_address")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # left after line breaks and tabs became spaces
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
    """``"IP 地址"``, ``"ＩＰ地址"`` (full-width, as a Chinese IME types it), ``"ip_address"`` -> one key."""
    text = unicodedata.normalize("NFKC", str(header)).lower().replace("\ufeff", "")
    return "".join(text.split()).replace("_", "").replace("-", "")


def _lookup() -> dict[str, str]:
    return {_norm(alias): canonical for canonical, aliases in HEADERS.items() for alias in aliases}


def _names_address(headers: list[str]) -> bool:
    """Whether a first row is a camera list's header (it names the one required column)."""
    lookup = _lookup()
    return any(lookup.get(_norm(header)) == "host" for header in headers)


def _column_map(headers: list[str]) -> tuple[dict[int, str], list[str]]:
    lookup = _lookup()
    mapping: dict[int, str] = {}
    unknown: list[str] = []
    for index, header in enumerate(headers):
        canonical = lookup.get(_norm(header))
        if canonical is None:
            if str(header).strip():
                unknown.append(str(header))
        elif canonical in mapping.values():
            first = next(i for i, c in mapping.items() if c == canonical)
            raise ImportFileError(
                f"columns {first + 1} ({headers[first]!r}) and {index + 1} ({header!r}) both name the camera's "
                f"{canonical}: keep one of them, or rename the other (e.g. 备注) so it is not read"
            )
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


def _clean_text(value: str) -> str:
    """A text cell as stored: line breaks and tabs (Alt+Enter in a cell) made single spaces;
    ``ValueError`` for any other control character."""
    text = " ".join(value.split())
    bad = CONTROL.search(text)
    if bad is not None:
        code = f"U+{ord(bad.group()):04X}"
        raise ValueError(f"contains the control character {code} at position {bad.start() + 1}; delete it")
    return text


def _row(number: int, values: dict[str, str], problems: list[RowProblem], *, guarded: bool) -> CameraRow | None:
    """One row's camera, or None with its problems added; ``guarded``: a CSV, whose text cells may
    carry an export's formula guard (``'=...``, undone here)."""
    found: list[RowProblem] = []

    def convert(column: str, parse: Callable[[str], T], default: T) -> T:
        raw = values.get(column, "")
        try:
            return parse(raw) if raw.strip() or column in REQUIRED else default
        except (ValueError, OverflowError) as exc:  # OverflowError: a number too large for its type
            found.append(RowProblem(number, column, str(exc) or f"{raw!r} is out of range"))
            return default

    if guarded:
        values = {k: unneutralise(v.strip()) if k in TEXT_COLUMNS else v for k, v in values.items()}
    text = {column: convert(column, _clean_text, "") for column in TEXT_COLUMNS}
    host = convert("host", normalise_host, "")
    port = convert("port", _whole_number, 80)
    lat: float | None = convert("lat", _finite, None)
    lon: float | None = convert("lon", _finite, None)
    category = convert("category", _category, "")
    priority = convert("priority", _priority, 3)
    region = text["region_code"]
    if region and not (len(region) == 6 and region.isdigit()):
        found.append(RowProblem(number, "region_code", f"{region!r} is not a 6-digit region code (行政区划代码)"))
    if found:
        problems.extend(found)
        return None
    try:
        return CameraRow(
            row=number,
            id=text["id"],
            name=text["name"] or host,
            host=host,
            port=port,
            username=text["username"],
            password=values.get("password", ""),
            location=Location(
                region_code=region,
                district=text["district"],
                township=text["township"],
                grid_code=text["grid_code"],
                address=text["street_address"],
                lat=lat,
                lon=lon,
            ),
            category=category,
            policy=PatrolPolicy(priority=priority),
        )
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            column = str(error["loc"][-1]) if error["loc"] else "row"
            problems.append(RowProblem(number, column, readable(error["msg"])))
        return None


def _csv_records(data: bytes) -> Records:
    # Excel's "Unicode text" is UTF-16 with a BOM (and tabs); without the BOM it would read as GB18030 noise.
    encodings = ("utf-16",) if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # gb18030 decodes any byte string; UTF-16 can be cut short
        raise ImportFileError("not UTF-8, GB18030 or UTF-16 text: save the sheet again as CSV UTF-8 (逗号分隔)")
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


def parse_camera_file(path: Path, data: bytes | None = None, *, max_rows: int = DEFAULT_MAX_IMPORT_ROWS) -> ParsedFile:
    """Parse a CSV or XLSX camera list (``data``, or read from ``path``) of at most ``max_rows`` rows
    after the header. Raises ``ImportFileError`` only for the file as a whole."""
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImportFileError(f"cannot read the camera list {path}: {exc.strerror or exc}") from exc
    is_xlsx = data[:2] == b"PK"
    if not is_xlsx and path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        check_xlsx(path.name, data)
    records = xlsx_records(data, _names_address) if is_xlsx else _csv_records(data)
    try:
        return _parse_records(records, max_rows, guarded=not is_xlsx)
    finally:
        records.close()


def _parse_records(records: Records, max_rows: int, *, guarded: bool) -> ParsedFile:
    parsed = ParsedFile()
    header = next(records, None)
    if header is None:
        raise ImportFileError("the file is empty: the first row must name the columns")
    mapping, parsed.unknown_columns = _column_map(header)
    width = len(header)
    while width and not str(header[width - 1]).strip():
        width -= 1  # trailing empty header cells name nothing
    first_with_id: dict[str, int] = {}
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
        if any(cell.strip() for cell in record[width:]):
            # The values are shifted (a password cut at a comma): provisioning them would lose data, and
            # checking them would quote a piece of a password as, say, the address.
            parsed.problems.append(RowProblem(number, "row", _overflow_message(record, width)))
            parsed.invalid[number] = (_one_line(values.get("name", "")), "")
            continue
        row = _row(number, values, parsed.problems, guarded=guarded)
        if row is not None and row.id:
            earlier = first_with_id.setdefault(row.id, number)
            if earlier != number:
                message = f"与第 {earlier} 行编号重复 / same camera id as row {earlier}: give each camera its own id"
                parsed.problems.append(RowProblem(number, "id", message))
                row = None
        if row is not None:
            parsed.rows.append(row)
        else:
            address = values.get("host", "").strip()
            port = values.get("port", "").strip()
            parsed.invalid[number] = (_one_line(values.get("name", "")), f"{address}:{port}" if port else address)
    return parsed


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _overflow_message(record: list[str], width: int) -> str:
    """Why a row with values right of the last named column is refused; no cell is quoted (one of
    them may be a password)."""
    last = max(i for i, cell in enumerate(record) if cell.strip()) + 1
    return (
        f"{last} cells, but the header names {width} columns: a value with the separator (, or ;) in it "
        "shifted the cells after it; put that value in double quotes, or name the extra columns in the first row"
    )
