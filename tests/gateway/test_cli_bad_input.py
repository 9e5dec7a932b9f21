"""The ``xueliang`` command under bad arguments and hostile surroundings, run as a real subprocess
(exit codes, pipes, signals, locale): a terminal that cannot show Chinese, a pipe closed early,
Ctrl-C during an import, stores that cannot be opened, directories where files belong, ports out of
range, user names and passwords the API would refuse. Never a traceback; exit codes 0 done, 1 the
work failed, 2 usage or setup error, 130 interrupted."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xueliang.gateway.cameras.results import read_results
from xueliang.gateway.cli.app import app

XUELIANG = [sys.executable, "-m", "xueliang.gateway"]
# A terminal whose locale is plain C without Python's UTF-8 coercion: stdout encodes as ASCII.
ASCII_TERMINAL = {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XUELIANG_", "LC_", "PYTHONIO", "PYTHONUTF8"))}
    env.update(XUELIANG_ENVIRONMENT="development", XUELIANG_NODE__DATA_DIR=str(data_dir), NO_COLOR="1", COLUMNS="200")
    env.update(extra)
    return env


def cli(data_dir: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    ran = subprocess.run(
        [*XUELIANG, *args],
        capture_output=True,
        env=environment(data_dir, **env),
        input=stdin.encode(),
        timeout=60,
        check=False,
    )
    out, err = ran.stdout.decode("utf-8", "replace"), ran.stderr.decode("utf-8", "replace")
    assert "Traceback" not in out + err, out + err
    return subprocess.CompletedProcess(ran.args, ran.returncode, out, err)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_terminal_that_cannot_show_chinese_gets_escapes_not_a_crash(tmp_path: Path) -> None:
    """Old code: UnicodeEncodeError traceback (exit 1) for help and for the import's summary."""
    helped = cli(tmp_path, "cameras", "--help", **ASCII_TERMINAL)
    assert helped.returncode == 0 and "\\u6444\\u50cf\\u673a" in helped.stdout  # 摄像机
    source = tmp_path / "cams.csv"
    source.write_text("address,port\nnot an address!,80\n", encoding="utf-8")
    imported = cli(tmp_path, "cameras", "import", str(source), **ASCII_TERMINAL)
    assert imported.returncode == 1, imported.stdout + imported.stderr  # the row failed: the work's own verdict
    assert "\\u7ed3\\u679c\\u6587\\u4ef6 result file" in imported.stdout  # 结果文件
    assert [r.status for r in read_results(tmp_path / "cams.result.csv")] == ["invalid"]


def run_into_closed_pipe(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head -1` once head has gone: every write gets EPIPE
    try:
        ran = subprocess.run(
            [*XUELIANG, *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=environment(data_dir),
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    return subprocess.CompletedProcess(ran.args, ran.returncode, "", ran.stderr.decode("utf-8", "replace"))


def test_a_pipe_closed_early_ends_quietly_and_the_import_still_finishes(tmp_path: Path) -> None:
    """Pins what nothing tested: no BrokenPipeError traceback nor 'Exception ignored' noise, and an
    import whose output nobody reads still writes its whole result file."""
    for args in (("config", "show", "--defaults"), ("users", "list"), ("version",)):
        ran = run_into_closed_pipe(tmp_path, *args)
        assert ran.returncode != 0 and "Traceback" not in ran.stderr and "Exception" not in ran.stderr, ran
    source = tmp_path / "cams.csv"
    source.write_text("address\n" + "".join(f"bad address {i}\n" for i in range(50)), encoding="utf-8")
    ran = run_into_closed_pipe(tmp_path, "cameras", "import", str(source))
    assert "Traceback" not in ran.stderr, ran.stderr
    assert len(read_results(tmp_path / "cams.result.csv")) == 50


# Ctrl-C as at a terminal, even when the suite runs in a background job (SIGINT ignored, inherited):
# SIGINT back to its default, then the command.
WITH_CTRL_C = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])",
]


def interrupted_import(tmp_path: Path, rows: int) -> tuple[int, str]:
    """Import ``rows`` rows naming one camera that accepts the connection and never answers (the
    other rows settle at once: duplicates of it, then a bad address), and Ctrl-C while the import
    waits for that camera."""
    with socket.socket() as camera:
        camera.bind(("127.0.0.1", 0))
        camera.listen(4)
        port = camera.getsockname()[1]
        source = tmp_path / "cams.csv"
        lines = [f"127.0.0.1,{port}"] * (rows - 1) + ["no way,80"] if rows > 1 else [f"127.0.0.1,{port}"]
        source.write_text("address,port\n" + "\n".join(lines) + "\n", encoding="utf-8")
        process = subprocess.Popen(
            [*WITH_CTRL_C, *XUELIANG, "cameras", "import", str(source), "--concurrency", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment(tmp_path, XUELIANG_ONVIF__TIMEOUT_S="30", XUELIANG_CAMERAS__PROBE_TIMEOUT_S="30"),
        )
        try:
            camera.settimeout(60)
            connection, _ = camera.accept()  # the import is probing the camera now: the other rows are settled
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
            connection.close()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = flat(out.decode() + err.decode())
    assert "Traceback" not in text, text
    return process.returncode, text


def test_ctrl_c_during_an_import_says_what_was_kept_and_how_to_resume(tmp_path: Path) -> None:
    """Old code: exit 130 without a word. Rows 3-6 are settled at once, row 2's camera never answers:
    the four settled rows must be in the result file and the message must say so."""
    code, text = interrupted_import(tmp_path, 5)
    assert code == 130, text
    result_file = tmp_path / "cams.result.csv"
    assert f"interrupted after 4 of 5 rows; they are in {result_file}" in text
    assert f"--resume {result_file}" in text
    assert sorted(r.row for r in read_results(result_file)) == [3, 4, 5, 6]


def test_ctrl_c_before_any_row_is_done_gives_no_resume_advice(tmp_path: Path) -> None:
    """A file that holds no row is no use to --resume."""
    code, text = interrupted_import(tmp_path, 1)
    assert code == 130 and "interrupted before any row was done" in text and "--resume" not in text, text


def damaged_database(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "gateway.sqlite3").write_bytes(b"this is no database, but twice as long as a header " * 200)


def test_stores_that_cannot_be_opened_are_a_setup_error_exit_2(tmp_path: Path) -> None:
    """Old code: exit 1, the code an import uses for 'some rows failed'."""
    damaged = tmp_path / "damaged"
    damaged_database(damaged)
    for args in (("users", "list"), ("cameras", "list")):
        ran = cli(damaged, *args)
        assert ran.returncode == 2, ran.stderr
        assert "is damaged or is not a gateway database" in flat(ran.stderr) and "restore it from a backup" in flat(
            ran.stderr
        )
    with pytest.raises(sqlite3.DatabaseError):  # left as it was
        sqlite3.connect(damaged / "gateway.sqlite3").execute("SELECT * FROM sqlite_master").fetchall()

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        source = tmp_path / "cams.csv"
        source.write_text("address\n127.0.0.1\n", encoding="utf-8")
        redis = {
            "XUELIANG_NODE__MODE": "scaleout",
            "XUELIANG_STORAGE__REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "XUELIANG_EVENTS__CODES__NODE_TAG": "G07",
        }
        for args in (("users", "list"), ("cameras", "import", str(source))):
            ran = cli(tmp_path / "var", *args, **redis)
            assert ran.returncode == 2, ran.stderr
            assert f"Redis at redis://127.0.0.1:{port}/0 cannot be reached" in flat(ran.stderr)
            assert "correct storage.redis_url" in flat(ran.stderr)


def test_users_the_api_would_refuse_are_refused_before_anything_is_stored(tmp_path: Path) -> None:
    """Old code: 'bad name!' and 'x' were added (exit 0) though the help and the API allow 2-64 letters,
    digits, _ . -; an empty --password-stdin added the user with a random password nobody saw."""
    for name in ("bad name!", "x", "李"):
        ran = cli(tmp_path, "users", "add", name)
        assert ran.returncode == 2 and f"{name!r} is not 2-64 letters, digits, _ . -" in ran.stderr, ran.stderr
    empty = cli(tmp_path, "users", "add", "wang.tech", "--password-stdin", stdin="")
    assert empty.returncode == 2 and "nothing read from stdin" in empty.stderr, empty.stderr
    listed = cli(tmp_path, "users", "list")
    assert listed.returncode == 0 and "wang.tech" not in listed.stdout and "bad name" not in listed.stdout
    assert cli(tmp_path, "users", "add", "wang.tech", "--password-stdin", stdin="a-long-password\n").returncode == 0


def test_a_directory_where_a_file_belongs_is_a_usage_error(tmp_path: Path) -> None:
    """Old code: import of a directory exit 1, --result a directory a traceback (IsADirectoryError after
    the node was opened), export into a directory exit 1, config check of a directory 'no such file'."""
    source = tmp_path / "cams.csv"
    source.write_text("address\nnot an address\n", encoding="utf-8")
    folder = tmp_path / "folder"
    folder.mkdir()
    for args in (
        ("cameras", "import", str(folder)),
        ("cameras", "import", str(source), "--result", str(folder)),
        ("cameras", "import", str(source), "--resume", str(folder)),
        ("cameras", "export", str(folder)),
    ):
        ran = cli(tmp_path / "var", *args)
        assert ran.returncode == 2 and "is a directory" in ran.stderr, (args, ran.stderr)
    assert not (tmp_path / "cams.result.csv").exists()
    checked = cli(tmp_path, "config", "check", str(folder))
    assert checked.returncode == 2 and "is a directory" in checked.stderr and "no such file" not in checked.stderr


def test_a_settings_file_from_a_pipe_is_read(tmp_path: Path) -> None:
    """Old code: 'no such file' for /dev/stdin and for process substitution (<(...)): not a regular file."""
    ran = cli(tmp_path, "config", "check", "/dev/stdin", stdin="environment: development\nhttp:\n  port: 9123\n")
    assert ran.returncode == 0 and "configuration valid (development" in ran.stdout, ran.stderr
    wrong = cli(tmp_path, "config", "check", "/dev/stdin", stdin="http:\n  port: 99999\n")
    assert wrong.returncode == 2 and "http.port" in wrong.stderr


def test_a_port_out_of_range_in_the_address_is_refused_before_any_camera_is_asked(tmp_path: Path) -> None:
    """Old code: 127.0.0.1:99999 went to the network and blamed the camera for 'an unusable address';
    127.0.0.1:0 silently became port 80."""
    for address in ("127.0.0.1:99999", "127.0.0.1:0"):
        ran = cli(tmp_path, "cameras", "probe", address)
        assert ran.returncode == 2, ran.stderr
        assert f"{address!r}: the port after ':' must be a number from 1 to 65535" in flat(ran.stderr)


def test_numbers_out_of_range_are_usage_errors_and_the_help_says_what_exit_codes_mean(tmp_path: Path) -> None:
    """Old code: discover accepted --timeout -1 and --port 0; the help named no exit codes."""
    runner = CliRunner()
    for option in (["--timeout", "-1"], ["--timeout", "0"], ["--port", "0"], ["--port", "70000"]):
        result = runner.invoke(app, ["cameras", "discover", "--address", "127.0.0.1", *option])
        assert result.exit_code == 2 and "Invalid value" in result.output, (option, result.output)
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0
    help_text = flat(top.output)
    assert "Exit codes: 0 done; 1 the work failed" in help_text and "2 usage or setup error" in help_text
    assert "130 interrupted" in help_text
    imported = flat(runner.invoke(app, ["cameras", "import", "--help"]).output)
    assert "Ctrl-C stops it (exit 130)" in imported and "--resume" in imported


def test_a_command_prints_its_result_and_no_log_chatter(tmp_path: Path) -> None:
    """Old code: every command wrote 'INFO:xueliang.gateway.node:node ... open' to stderr (a library
    imported on the way sets the root logger to INFO), and an import one INFO line per failed row."""
    assert cli(tmp_path, "users", "add", "li.op", "--password-stdin", stdin="a-long-password\n").returncode == 0
    listed = cli(tmp_path, "users", "list")
    assert listed.returncode == 0 and "li.op" in listed.stdout
    assert listed.stderr == ""


def test_an_unknown_key_or_user_is_a_failed_command_exit_1(tmp_path: Path) -> None:
    """Pins the other side of the exit code line: the setup is fine, the thing named does not exist."""
    revoked = cli(tmp_path, "users", "revoke-key", "0123456789ab")
    assert revoked.returncode == 1 and "`xueliang users keys` lists the key ids" in flat(revoked.stderr)
    enabled = cli(tmp_path, "users", "enable", "nobody")
    assert enabled.returncode == 1 and "nobody" in enabled.stderr
