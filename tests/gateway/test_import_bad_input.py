"""Hostile and broken camera lists: each bad row is named (row, column, what to do) without quoting a
password, the good rows still import, and exported lists cannot run formulas in a spreadsheet."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from tests.gateway.test_importer import write
from xueliang.gateway.cameras.export import to_csv, to_xlsx
from xueliang.gateway.cameras.importer import ImportFileError, parse_camera_file
from xueliang.gateway.cameras.models import RowResult
from xueliang.gateway.cameras.results import ResultWriter, read_results, render
from xueliang.gateway.models import CameraRecord, Location

INJECTION = "=cmd|' /C calc'!A0"


def xlsx(*sheets: tuple[str, list[list[object]]], merge: str = "") -> bytes:
    book = Workbook()
    assert book.active is not None
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    if merge:
        book.worksheets[0].merge_cells(merge)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_excel_unicode_text_utf16_with_tabs_is_read(tmp_path: Path) -> None:
    text = "名称\tIP地址\t端口\n巴州广场\t127.1.0.1\t554\n"
    parsed = parse_camera_file(write(tmp_path, "cams.csv", text.encode("utf-16")))  # BOM + UTF-16 LE
    assert [(r.name, r.host, r.port) for r in parsed.rows] == [("巴州广场", "127.1.0.1", 554)]


def test_full_width_and_spaced_headers_are_recognised(tmp_path: Path) -> None:
    text = "设备 名称,ＩＰ地址,  PORT  ,User_Name\ncam,127.1.0.1,8080,admin\n"
    parsed = parse_camera_file(write(tmp_path, "cams.csv", text.encode("gbk")))
    assert [(r.name, r.host, r.port, r.username) for r in parsed.rows] == [("cam", "127.1.0.1", 8080, "admin")]


def test_two_columns_for_one_field_are_refused_naming_both(tmp_path: Path) -> None:
    text = "名称,IP地址,设备IP\ncam,127.1.0.1,127.1.0.2\n"
    with pytest.raises(ImportFileError, match=r"columns 2 \('IP地址'\) and 3 \('设备IP'\) both name the camera's host"):
        parse_camera_file(write(tmp_path, "cams.csv", text.encode()))


def test_a_row_with_more_cells_than_the_header_is_refused_without_quoting_the_password(tmp_path: Path) -> None:
    text = (
        "name,password,ip\n"
        "shifted,hunter2,xyzzy word,127.1.0.1\n"  # an unquoted comma inside the password
        "good,pw,127.1.0.2\n"
        "trailing separators,pw,127.1.0.3,,\n"  # empty cells past the header are harmless
    )
    parsed = parse_camera_file(write(tmp_path, "cams.csv", text.encode()))
    assert [(r.row, r.name) for r in parsed.rows] == [(3, "good"), (4, "trailing separators")]
    assert [(p.row, p.column) for p in parsed.problems] == [(2, "row")]
    assert "4 cells, but the header names 3 columns" in parsed.problems[0].message
    assert "double quotes" in parsed.problems[0].message
    assert parsed.invalid == {2: ("shifted", "")}
    shown = " ".join(str(p) for p in parsed.problems) + repr(parsed.invalid)
    assert "hunter2" not in shown and "xyzzy" not in shown


def test_a_camera_id_used_twice_in_the_list_is_refused_on_its_second_row(tmp_path: Path) -> None:
    text = "点位编号,IP地址\nP-001,127.1.0.1\nP-002,127.1.0.2\nP-001,127.1.0.3\n"
    parsed = parse_camera_file(write(tmp_path, "cams.csv", text.encode()))
    assert [(r.id, r.host) for r in parsed.rows] == [("P-001", "127.1.0.1"), ("P-002", "127.1.0.2")]
    assert [str(p) for p in parsed.problems] == [
        "row 4, id: 与第 2 行编号重复 / same camera id as row 2: give each camera its own id"
    ]
    assert parsed.invalid[4] == ("", "127.1.0.3")


def test_line_breaks_in_a_cell_become_spaces_and_control_characters_are_named(tmp_path: Path) -> None:
    text = 'name,ip,district\n"广场\r\n东侧",127.1.0.1,东城\nbad\x00name,127.1.0.2,西城\nok,127.1.0.3,"南\t城"\n'
    parsed = parse_camera_file(write(tmp_path, "cams.csv", text.encode()))
    assert [(r.row, r.name, r.location.district) for r in parsed.rows] == [(2, "广场 东侧", "东城"), (4, "ok", "南 城")]
    assert [str(p) for p in parsed.problems] == [
        "row 3, name: contains the control character U+0000 at position 4; delete it"
    ]


def test_a_renamed_csv_or_an_old_xls_says_what_it_is(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match=r"cams.xlsx is not an XLSX workbook .* a CSV renamed .xlsx"):
        parse_camera_file(write(tmp_path, "cams.xlsx", "名称,IP\n广场,127.1.0.1\n".encode()))
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    with pytest.raises(ImportFileError, match=r"Excel 97-2003 \(.xls\) or password-protected workbook"):
        parse_camera_file(write(tmp_path, "old.xls", ole))


def test_the_camera_sheet_is_found_behind_an_instructions_sheet(tmp_path: Path) -> None:
    data = xlsx(("填写说明", [["IP地址必填，端口默认80"]]), ("东城", [["名称", "IP地址"], ["广场", "127.1.0.1"]]))
    parsed = parse_camera_file(write(tmp_path, "cams.xlsx", data))
    assert [(r.row, r.name) for r in parsed.rows] == [(2, "广场")]


def test_camera_lists_on_several_sheets_are_refused_instead_of_reading_only_the_first(tmp_path: Path) -> None:
    data = xlsx(("东城", [["名称", "IP"], ["a", "127.1.0.1"]]), ("西城", [["名称", "IP"], ["b", "127.1.0.2"]]))
    with pytest.raises(
        ImportFileError, match=r"camera lists on 2 sheets \('东城'、'西城'\); one import reads one sheet"
    ):
        parse_camera_file(write(tmp_path, "cams.xlsx", data))


def test_a_cell_merged_down_a_column_gives_its_value_to_every_row(tmp_path: Path) -> None:
    rows: list[list[object]] = [["名称", "IP", "区县", "乡镇街道"]]
    rows += [["a", "127.1.0.1", "东城", "一街"], ["b", "127.1.0.2", None, "二街"], ["c", "127.1.0.3", None, None]]
    rows += [["d", "127.1.0.4", "西城", None]]
    parsed = parse_camera_file(write(tmp_path, "cams.xlsx", xlsx(("cams", rows), merge="C2:C4")))
    places = [(r.name, r.location.district, r.location.township) for r in parsed.rows]
    assert places == [("a", "东城", "一街"), ("b", "东城", "二街"), ("c", "东城", ""), ("d", "西城", "")]


def camera(name: str, address: str = "") -> CameraRecord:
    return CameraRecord(id="cam-1", name=name, host="127.1.0.1", location=Location(district="-2", address=address))


@pytest.mark.parametrize("name", [INJECTION, "+1+1", "-2", "@SUM(A1)", "\t=1", "'=already guarded"])
def test_exported_csv_cannot_run_formulas_and_still_round_trips(tmp_path: Path, name: str) -> None:
    data = to_csv([camera(name, address='=HYPERLINK("http://x")')])
    line = data.decode("utf-8-sig").splitlines()[1]
    cells = next(iter(__import__("csv").reader([line])))
    assert all(not cell.startswith(("=", "+", "-", "@", "\t")) for cell in cells if cell)
    back = parse_camera_file(write(tmp_path, "export.csv", data)).rows[0]
    expected = " ".join(name.split())  # a tab in a name is read back as a space
    assert (back.name, back.location.district, back.location.address) == (expected, "-2", '=HYPERLINK("http://x")')


def test_exported_xlsx_holds_text_not_formulas_and_survives_control_characters(tmp_path: Path) -> None:
    data = to_xlsx([camera(INJECTION), camera("bad\x00\x0bname")])
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    names = [(sheet.cell(row, 2).value, sheet.cell(row, 2).data_type) for row in (2, 3)]
    assert names == [(INJECTION, "s"), ("badname", "s")]
    assert parse_camera_file(write(tmp_path, "export.xlsx", data)).rows[0].name == INJECTION


def test_the_result_file_cannot_run_formulas_and_reads_back_the_same(tmp_path: Path) -> None:
    result = RowResult(2, INJECTION, "127.1.0.1:80", "invalid", reason="-port: bad")
    assert render([result]).splitlines()[1].startswith(f"2,'{INJECTION},127.1.0.1:80,invalid,,'-port: bad,")
    writer = ResultWriter(tmp_path / "result.csv")
    writer.open()
    writer.finish([result])
    assert read_results(tmp_path / "result.csv") == [result]
