"""The registry as a spreadsheet (CSV with a BOM, or XLSX) technicians can edit and import again.

The columns the importer reads come first under the names it accepts (``id``, ``name``,
``host``, ``port``, ...), so an exported list round-trips; read-only columns (status, identity,
last error) follow and are ignored on import. Passwords are never exported; importing a row
without a password keeps the password the camera has on record.

Formula injection: a text cell starting with ``= + - @`` (or a tab / carriage return) is a formula
to Excel and WPS (``=cmd|' /C calc'!A0`` in a camera's name runs a program on the technician's PC
when the export is opened). CSV text cells get a leading ``'`` (:func:`neutralise`), which the
importer takes off again (:func:`unneutralise`), so a list still round-trips; XLSX text cells are
written as text cells, never formulas, with the characters XML cannot hold left out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence

from xueliang.gateway.models import CameraQuery, CameraRecord
from xueliang.gateway.stores.base import CameraRegistry

COLUMNS = (
    "id", "name", "host", "port", "username", "region_code", "district", "township", "grid_code", "location",
    "lat", "lon", "category", "priority", "status", "manufacturer", "model", "serial", "firmware",
    "analysis_profile", "stream_uri", "snapshot_uri", "last_seen", "last_error",
)  # fmt: skip
PAGE = 5000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
GUARD = "'"


def neutralise(value: str) -> str:
    """``"=cmd|..."`` -> ``"'=cmd|..."``: a text cell a spreadsheet will not run as a formula. A text
    that only looks guarded (``"'=x"``) gets a guard too, so :func:`unneutralise` gives it back whole."""
    return GUARD + value if value.lstrip(GUARD).startswith(FORMULA_STARTS) else value


def unneutralise(value: str) -> str:
    """The inverse of :func:`neutralise`, for text cells read back from an exported CSV list."""
    return value[1:] if value.startswith(GUARD) and value.lstrip(GUARD).startswith(FORMULA_STARTS) else value


def _csv_cells(row: Sequence[str | int | float]) -> list[str | int | float]:
    return [neutralise(cell) if isinstance(cell, str) else cell for cell in row]


def row_of(camera: CameraRecord) -> list[str | int | float]:
    location = camera.location
    analysis = next((p for p in camera.profiles if p.token == camera.analysis_profile), None)
    return [
        camera.id, camera.name, camera.host, camera.port, camera.username, location.region_code, location.district,
        location.township, location.grid_code, location.address, "" if location.lat is None else location.lat,
        "" if location.lon is None else location.lon, camera.category, camera.policy.priority, camera.status.value,
        camera.manufacturer, camera.model, camera.serial, camera.firmware, camera.analysis_profile,
        analysis.stream_uri if analysis else "", analysis.snapshot_uri if analysis else "",
        camera.last_seen.isoformat() if camera.last_seen else "", camera.last_error,
    ]  # fmt: skip


async def all_cameras(registry: CameraRegistry, query: CameraQuery | None = None) -> AsyncIterator[CameraRecord]:
    """Every camera matching ``query`` (its limit/offset ignored), read page by page."""
    base = query or CameraQuery()
    offset = 0
    while True:
        page = await registry.list(base.model_copy(update={"limit": PAGE, "offset": offset}))
        for camera in page:
            yield camera
        if len(page) < PAGE:
            return
        offset += PAGE


def to_csv(cameras: list[CameraRecord]) -> bytes:
    """UTF-8 with a BOM, so Excel opens Chinese names correctly. CPU work: call it in a thread."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(_csv_cells(row_of(c)) for c in cameras)
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(cameras: list[CameraRecord]) -> bytes:
    """An XLSX workbook, one sheet. CPU work: call it in a thread."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = Workbook(write_only=True)
    sheet = book.create_sheet("cameras")
    sheet.append(list(COLUMNS))
    for camera in cameras:
        cells: list[WriteOnlyCell | int | float] = []
        for value in row_of(camera):
            if isinstance(value, str):
                cell = WriteOnlyCell(sheet, ILLEGAL_CHARACTERS_RE.sub("", value))
                cell.data_type = "s"  # openpyxl makes a string starting with "=" a formula
                cells.append(cell)
            else:
                cells.append(value)
        sheet.append(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
