"""Damaged camera lists, as they reach the gateway: a workbook cut short (an interrupted copy or
download), a CSV with a quote never closed, numbers that overflow."""

from __future__ import annotations

import io
import zipfile

from openpyxl import Workbook

SHEET = "xl/worksheets/sheet1.xml"


def workbook(rows: int) -> bytes:
    """A valid XLSX camera list of ``rows`` cameras on 127.1.x.y."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["名称", "IP地址", "端口", "密码"])
    for index in range(rows):
        sheet.append([f"点位{index}", f"127.1.{index // 250}.{index % 250 + 1}", 80, "pw"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def truncated_sheet(rows: int = 400) -> bytes:
    """``workbook(rows)`` whose sheet XML stops half way (the ZIP itself is intact)."""
    source = zipfile.ZipFile(io.BytesIO(workbook(rows)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            target.writestr(info.filename, content[: len(content) // 2] if info.filename == SHEET else content)
    return buffer.getvalue()


def unclosed_quote_csv() -> bytes:
    """A CSV whose second row opens a quote that never closes: the rest of the file (over the csv
    module's 128 KiB field limit) becomes one field."""
    lines = ["名称,IP地址,端口", '"广场东,127.1.0.1,80']
    lines += [f"点位{index},127.1.{index // 250}.{index % 250 + 1},80" for index in range(8000)]
    return "\n".join(lines).encode("utf-8")
