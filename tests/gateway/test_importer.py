"""Camera lists as technicians bring them: CSV with/without BOM, GB18030, XLSX, Chinese or English headers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from openpyxl import Workbook

from tests.cameras.damaged import truncated_sheet, unclosed_quote_csv, workbook
from xueliang.gateway.cameras.importer import ImportFileError, parse_camera_file
from xueliang.gateway.cameras.models import fingerprint_key
from xueliang.gateway.cameras.settings import CameraSettings

CHINESE = (
    "设备名称,IP地址,端口,用户名,密码,行政区划代码,乡镇街道,网格编码,安装地址,纬度,经度,场所类型,巡查优先级\n"
    "巴州广场东,127.1.0.1,80,admin,pw1,511902,东城街道,51190200101,广场东侧,31.85,106.75,广场,重点\n"
    "实验小学门口,127.1.0.2,8080,admin,pw2,511902,西城街道,51190200205,学校正门,,,学校,2\n"
)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_chinese_headers_in_every_common_encoding(tmp_path: Path, encoding: str) -> None:
    parsed = parse_camera_file(write(tmp_path, "cams.csv", CHINESE.encode(encoding)))
    assert parsed.problems == [] and parsed.total == 2
    first, second = parsed.rows
    assert (first.name, first.host, first.port, first.username, first.password) == (
        "巴州广场东",
        "127.1.0.1",
        80,
        "admin",
        "pw1",
    )
    assert first.location.region_code == "511902" and first.location.township == "东城街道"
    assert first.location.grid_code == "51190200101" and first.location.lat == 31.85
    assert (first.category, first.policy.priority) == ("square", 1)
    assert (second.port, second.category, second.policy.priority, second.location.lat) == (8080, "school", 2, None)


def test_english_headers_semicolons_and_bad_rows_each_named(tmp_path: Path) -> None:
    text = (
        "Name;Address;Port;Username;Password;Region Code;Grid;Category;Priority;Lat\n"
        "ok cam;127.1.0.9;80;u;p;511902;g1;road;3;30.1\n"
        "bad port;127.1.0.10;http;u;p;511902;g1;road;3;\n"
        "bad everything;not an ip!;80;u;p;5119;g1;spaceport;9;north\n"
        ";;;;;;;;;\n"
        "no host;;80;u;p;511902;g1;road;3;\n"
    )
    parsed = parse_camera_file(write(tmp_path, "cams.csv", text.encode()))
    assert [r.name for r in parsed.rows] == ["ok cam"]
    assert parsed.total == 4
    by_row = {(p.row, p.column) for p in parsed.problems}
    assert by_row == {
        (3, "port"),
        (4, "host"),
        (4, "region_code"),
        (4, "category"),
        (4, "priority"),
        (4, "lat"),
        (6, "host"),
    }
    messages = " | ".join(str(p) for p in parsed.problems)
    assert "row 4, region_code: '5119' is not a 6-digit region code" in messages
    assert "row 6, host: empty" in messages


def test_xlsx_with_numbers_as_cells(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["名称", "IP", "端口", "密码", "区划代码", "类别"])
    sheet.append(["车站北", "127.1.0.3", 80, "pw", 511902, "车站"])
    sheet.append(["bad", "127.1.0.4", 70000, "pw", 511902, "车站"])
    path = tmp_path / "cams.xlsx"
    book.save(path)
    parsed = parse_camera_file(path)
    assert [(r.name, r.port, r.location.region_code, r.category) for r in parsed.rows] == [
        ("车站北", 80, "511902", "station")
    ]
    assert [(p.row, p.column) for p in parsed.problems] == [(3, "port")]


def test_whole_file_errors_are_readable(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="no camera address column"):
        parse_camera_file(write(tmp_path, "a.csv", b"name,foo\nx,y\n"))
    with pytest.raises(ImportFileError, match="empty"):
        parse_camera_file(write(tmp_path, "b.csv", b""))
    with pytest.raises(ImportFileError, match="not a readable XLSX"):
        parse_camera_file(write(tmp_path, "c.xlsx", b"PK\x03\x04 broken"))


KEY = fingerprint_key("node secret one")


def test_fingerprint_changes_with_content_only(tmp_path: Path) -> None:
    a = parse_camera_file(write(tmp_path, "a.csv", CHINESE.encode())).rows[0]
    moved = CHINESE.replace("巴州广场东,127.1.0.1", "巴州广场东,127.1.0.7")
    b = parse_camera_file(write(tmp_path, "b.csv", moved.encode())).rows[0]
    c = parse_camera_file(write(tmp_path, "c.csv", CHINESE.encode("utf-8-sig"))).rows[0]
    assert a.fingerprint(KEY) == c.fingerprint(KEY) != b.fingerprint(KEY)
    repassworded = parse_camera_file(write(tmp_path, "d.csv", CHINESE.replace(",pw1,", ",pw9,").encode())).rows[0]
    assert repassworded.fingerprint(KEY) != a.fingerprint(KEY)  # a new password is a change to provision


def test_fingerprint_is_keyed_so_a_result_file_cannot_confirm_a_guessed_password(tmp_path: Path) -> None:
    row = parse_camera_file(write(tmp_path, "a.csv", CHINESE.replace(",pw1,", ",hunter2,").encode())).rows[0]
    other_node = fingerprint_key("node secret two")
    assert row.fingerprint(KEY) == row.fingerprint(fingerprint_key("node secret one"))
    assert row.fingerprint(KEY) != row.fingerprint(other_node)
    # Someone holding result.csv guesses the password and hashes the row as the file format suggests:
    guessed = row.model_dump_json(exclude={"row"}).encode()
    assert hashlib.sha256(guessed).hexdigest()[:16] not in row.fingerprint(KEY)
    assert hashlib.sha256(guessed).hexdigest()[:32] != row.fingerprint(KEY)
    assert KEY != b"node secret one" and len(KEY) == 32  # derived, not the secret itself


def test_invalid_rows_keep_their_name_and_address_and_ids_are_checked(tmp_path: Path) -> None:
    text = (
        "点位编号,名称,IP,端口\n"
        "P-001,好的,cam01,80\n"  # a single-label host name (LAN search domain) is fine
        "P 002,坏编号,127.1.0.2,80\n"
        ",坏端口,127.1.0.3,99999\n"
        "P-004,IPv6,[FE80::0001],8080\n"
    )
    parsed = parse_camera_file(write(tmp_path, "cams.csv", text.encode()))
    assert [(r.id, r.host, r.port) for r in parsed.rows] == [("P-001", "cam01", 80), ("P-004", "fe80::1", 8080)]
    assert parsed.rows[1].address == "[fe80::1]:8080"
    assert {(p.row, p.column) for p in parsed.problems} == {(3, "id"), (4, "port")}
    assert "not a usable camera id" in str(parsed.problems[0])
    assert parsed.invalid == {3: ("坏编号", "127.1.0.2:80"), 4: ("坏端口", "127.1.0.3:99999")}


def test_numbers_that_overflow_are_row_problems_and_the_other_rows_go_on(tmp_path: Path) -> None:
    text = (
        "名称,IP地址,端口,优先级,纬度\n"
        "好,127.1.0.1,80,1,30.5\n"
        "无穷端口,127.1.0.2,inf,2,\n"
        "巨大优先级,127.1.0.3,80,1e999,\n"
        "小数端口,127.1.0.4,80.5,2,\n"
        "负无穷,127.1.0.5,-inf,-1e999,-inf\n"
        "也好,127.1.0.6,8080.0,2,\n"
    )
    parsed = parse_camera_file(write(tmp_path, "cams.csv", text.encode()))
    assert [(r.name, r.port) for r in parsed.rows] == [("好", 80), ("也好", 8080)]
    assert {(p.row, p.column) for p in parsed.problems} == {
        (3, "port"), (4, "priority"), (5, "port"), (6, "port"), (6, "priority"), (6, "lat"),
    }  # fmt: skip
    messages = {str(p) for p in parsed.problems}
    assert "row 3, port: 'inf' is not a whole number" in messages
    assert "row 4, priority: '1e999' is not a whole number" in messages
    assert "row 5, port: '80.5' is not a whole number" in messages
    assert parsed.invalid[3] == ("无穷端口", "127.1.0.2:inf")


def test_a_csv_field_over_the_csv_limit_is_a_file_error_naming_the_line(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match=r"line \d+ of the CSV cannot be read \(field larger than field limit"):
        parse_camera_file(write(tmp_path, "cams.csv", unclosed_quote_csv()))


def test_a_truncated_or_damaged_workbook_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match=r"damaged after row \d+ of its sheet 'Sheet' \(invalid XML") as cut:
        parse_camera_file(write(tmp_path, "cut.xlsx", truncated_sheet()))
    assert "ParseError" in str(cut.value) and "save it again" in str(cut.value)

    data = bytearray(workbook(50))
    start = data.index(b"xl/worksheets/sheet1.xml") + 60  # inside that part's compressed bytes
    data[start : start + 8] = bytes(8)
    with pytest.raises(ImportFileError, match="XLSX") as damaged:
        parse_camera_file(write(tmp_path, "damaged.xlsx", bytes(data)))
    assert "damaged ZIP container" in str(damaged.value)


def test_a_list_over_the_row_cap_is_refused_naming_the_cap(tmp_path: Path) -> None:
    rows = "".join(f"127.1.0.{n}\n" for n in range(1, 13))
    path = write(tmp_path, "cams.csv", ("IP\n" + rows).encode())
    assert parse_camera_file(path, max_rows=12).total == 12
    with pytest.raises(ImportFileError, match=r"more than 11 rows after the header \(cameras.max_import_rows"):
        parse_camera_file(path, max_rows=11)
    with pytest.raises(ImportFileError, match=r"more than 30 rows"):
        parse_camera_file(write(tmp_path, "cams.xlsx", workbook(31)), max_rows=30)
    assert CameraSettings().max_import_rows == 100_000


def test_an_unreadable_path_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot read the camera list"):
        parse_camera_file(tmp_path)  # a folder
