"""Reading the camera sheet of an XLSX workbook as rows of text cells, for the importer.

- the sheet: the one whose first row names an address column (an instructions sheet before it is
  passed over); a workbook with several such sheets is refused naming them, since reading only one
  would drop the cameras on the others without a word;
- merged cells: a cell merged down a column (a district written once for the ten cameras below it)
  gives its value to every row it spans; read-only openpyxl leaves those rows empty otherwise;
- errors: only ``ImportFileError``, as :mod:`xueliang.gateway.cameras.importer` describes.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable, Generator
from typing import IO, Any
from xml.etree.ElementTree import ParseError as XmlParseError

from lxml.etree import XMLSyntaxError

from xueliang.gateway.cameras.errors import ImportFileError

MAX_COLUMNS = 1024  # cells of an XLSX row read; a camera list has ~15 columns, a sheet up to 16,384
CHUNK = 1 << 20  # bytes of sheet XML read at a time while looking for merged cells
# A merged range as the sheet part lists it after its data: <mergeCell ref="C2:C11"/>.
MERGE_REF = re.compile(rb'<(?:[\w.-]+:)?mergeCell\b[^>]*?\bref="([A-Z]{1,3})(\d+):([A-Z]{1,3})(\d+)"')
Records = Generator[list[str], None, None]  # the rows of a file as text cells, header first
Span = tuple[int, int, int]  # a merged range's column (0-based), first and last row (1-based)

# What openpyxl raises on a damaged workbook, by kind (see the importer's docstring).
XLSX_CONTAINER_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError)
XLSX_XML_ERRORS = (XmlParseError, XMLSyntaxError)
XLSX_CONTENT_ERRORS = (KeyError, ValueError, TypeError, IndexError, OSError)
XLSX_ERRORS = (*XLSX_CONTAINER_ERRORS, *XLSX_XML_ERRORS, *XLSX_CONTENT_ERRORS)


def cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 .xls, and any password-protected workbook


def check_xlsx(name: str, data: bytes) -> None:
    """A file named .xlsx/.xls that is not a ZIP: say what it is likely to be, and what to do."""
    if data.startswith(OLE2):
        raise ImportFileError(
            f"{name} is an Excel 97-2003 (.xls) or password-protected workbook, which cannot be read: "
            "save it from Excel or WPS as .xlsx without a password, or as CSV"
        )
    raise ImportFileError(
        f"{name} is not an XLSX workbook (an XLSX starts as a ZIP file; this may be a CSV renamed .xlsx): "
        "save it from Excel or WPS as .xlsx, or give it its real name (.csv)"
    )


def xlsx_records(data: bytes, is_camera_header: Callable[[list[str]], bool]) -> Records:
    """The rows of the workbook's camera sheet (the one whose header ``is_camera_header``)."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except XLSX_ERRORS as exc:
        raise ImportFileError(f"not a readable XLSX workbook ({xlsx_problem(exc)}); save it again or send CSV") from exc
    row, title = 0, "?"
    try:
        sheet = _camera_sheet(book.worksheets, is_camera_header)
        title = sheet.title
        merged = _MergedDown(_sheet_spans(sheet))
        for row, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield merged.fill(row, [cell_text(v) for v in cells[:MAX_COLUMNS]])
    except ImportFileError:
        raise  # a ValueError too: not a damaged workbook
    except XLSX_ERRORS as exc:
        raise ImportFileError(
            f"the XLSX workbook is damaged after row {row} of its sheet {title!r} ({xlsx_problem(exc)}): "
            "open it in Excel or WPS and save it again, or send it as CSV"
        ) from exc
    finally:
        book.close()


def _camera_sheet(sheets: list[Any], is_camera_header: Callable[[list[str]], bool]) -> Any:
    """The one sheet whose first row names an address column; the first sheet when none does (the
    header check then says which column it needs). No sheet at all: IndexError, mapped by the caller."""
    found = []
    for sheet in sheets:
        sheet.reset_dimensions()  # read the rows present, not a (possibly huge) declared size
        header = next(sheet.iter_rows(max_row=1, values_only=True), ())
        if is_camera_header([cell_text(v) for v in header[:MAX_COLUMNS]]):
            found.append(sheet)
    if len(found) > 1:
        names = "、".join(repr(s.title) for s in found)
        raise ImportFileError(
            f"the workbook has camera lists on {len(found)} sheets ({names}); one import reads one sheet: "
            "move them onto one sheet, or save each sheet as its own file and import each"
        )
    return found[0] if found else sheets[0]


def _sheet_spans(sheet: Any) -> dict[int, list[Span]]:
    """The merged ranges of a read-only sheet. openpyxl keeps them to itself in read-only mode, so
    its private ``_get_source`` gives the sheet part; should an openpyxl release drop it, the
    import goes on without filling merged cells (each such row then names its empty field)."""
    get_source = getattr(sheet, "_get_source", None)
    if get_source is None:
        return {}
    with get_source() as source:
        return _merged_spans(source)


def _merged_spans(source: IO[bytes]) -> dict[int, list[Span]]:
    """Merged ranges by first row, as vertical spans of their first column. They follow the sheet's
    data, so the part is streamed (not parsed) up to them."""
    tail = found = b""
    while chunk := source.read(CHUNK):
        if found:
            found += chunk
            continue
        block = tail + chunk
        at = block.find(b"mergeCell")
        if at >= 0:
            found = block[max(at - 16, 0) :]
        tail = block[-32:]
    spans: dict[int, list[Span]] = {}
    for first_col, first_row, _, last_row in MERGE_REF.findall(found):
        top, bottom = int(first_row), int(last_row)
        if bottom > top:
            spans.setdefault(top, []).append((_column_index(first_col), top, bottom))
    return spans


def _column_index(letters: bytes) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + letter - ord("A") + 1
    return index - 1


class _MergedDown:
    """Copies a merged cell's value into the rows below it that the merge spans, row by row."""

    def __init__(self, spans: dict[int, list[Span]]) -> None:
        self.spans = spans
        self.active: list[tuple[int, int, str]] = []  # column, last row, value

    def fill(self, row: int, cells: list[str]) -> list[str]:
        self.active = [span for span in self.active if span[1] >= row]
        for column, _, value in self.active:
            if column < MAX_COLUMNS:
                cells.extend([""] * (column + 1 - len(cells)))
                cells[column] = value
        for column, _, last_row in self.spans.pop(row, ()):
            self.active.append((column, last_row, cells[column] if column < len(cells) else ""))
        return cells


def xlsx_problem(exc: BaseException) -> str:
    if isinstance(exc, XLSX_CONTAINER_ERRORS):
        kind = "damaged ZIP container"
    elif isinstance(exc, XLSX_XML_ERRORS):
        kind = "invalid XML in a part"
    else:
        kind = "unreadable content"
    kind_of = type(exc)
    name = kind_of.__qualname__ if kind_of.__module__ == "builtins" else f"{kind_of.__module__}.{kind_of.__qualname__}"
    return f"{kind}: {name}: {exc}"
