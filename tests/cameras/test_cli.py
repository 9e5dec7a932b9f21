"""``xueliang cameras ...`` run as subprocesses against the real simulator and the configured
stores: import (progress, summary, result file, exit code, resume), list, export, probe,
discover; readable errors, never a traceback; help on every command."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from lxml import etree
from openpyxl import load_workbook

from xueliang.connectors.onvif.simulator import CameraSimulator
from xueliang.gateway.cameras.results import read_results

from .conftest import ALLOWED, SIM_PASSWORD
from .damaged import truncated_sheet, unclosed_quote_csv


@dataclass
class Ran:
    code: int
    out: str

    def __str__(self) -> str:
        return f"exit {self.code}\n{self.out}"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    settings = {
        "environment": "development",
        "node": {"data_dir": str(tmp_path / "var")},
        "security": {"allowed_networks": ALLOWED},
        "cameras": {"probe_timeout_s": 3},
        "onvif": {"timeout_s": 3},
    }
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


async def xueliang(*args: str, stdin: str = "") -> Ran:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "250", "TERM": "dumb"}
    env.pop("XUELIANG_CONFIG", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "xueliang.gateway", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    text = output.decode()
    assert "Traceback" not in text, text
    assert process.returncode is not None
    return Ran(process.returncode, text)


def camera_csv(sim: CameraSimulator, path: Path) -> Path:
    lines = ["名称,IP地址,端口,用户名,密码,区划代码,乡镇街道,类别"]
    lines += [
        f"点位{c.index},{c.address},{sim.http_port},admin,{SIM_PASSWORD},511902,东城街道,道路" for c in sim.cameras
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    return path


async def test_help_on_every_command() -> None:
    top = await xueliang("cameras", "--help")
    assert top.code == 0
    for command in ("import", "discover", "probe", "list", "export"):
        assert command in top.out
    for command, option in (("import", "--resume"), ("probe", "--password-stdin"), ("discover", "--cidr")):
        ran = await xueliang("cameras", command, "--help")
        assert ran.code == 0 and option in ran.out, ran


async def test_import_list_export_and_resume(sim: CameraSimulator, config: Path, tmp_path: Path) -> None:
    sim.cameras[3].faults.wrong_password = True
    source = camera_csv(sim, tmp_path / "cams.csv")
    first = await xueliang("cameras", "import", str(source), "--concurrency", "4", "-c", str(config))
    assert first.code == 1, first  # one row failed
    assert "auth_failed" in first.out and "online" in first.out and "7" in first.out
    result_file = tmp_path / "cams.result.csv"
    assert str(result_file) in first.out.replace("\n", "") and "--resume" in first.out
    assert {r.status for r in read_results(result_file)} == {"online", "auth_failed"}

    listed = await xueliang("cameras", "list", "--status", "auth_failed", "-c", str(config))
    assert listed.code == 0 and "点位3" in listed.out and "1 of 1 camera" in listed.out, listed
    wrong = await xueliang("cameras", "list", "--status", "sleeping", "-c", str(config))
    assert wrong.code == 2 and "unknown status 'sleeping'" in wrong.out

    sim.cameras[3].faults.wrong_password = False
    resumed = await xueliang(
        "cameras", "import", str(source), "--resume", str(result_file), "--result", str(tmp_path / "r2.csv"),
        "-c", str(config),
    )  # fmt: skip
    assert resumed.code == 0, resumed
    assert {r.row: r.status for r in read_results(tmp_path / "r2.csv")} == {
        row: ("online" if row == 5 else "skipped") for row in range(2, 10)
    }

    workbook = tmp_path / "registry.xlsx"
    exported = await xueliang("cameras", "export", str(workbook), "-c", str(config))
    assert exported.code == 0 and "8 camera(s) written" in exported.out, exported
    book = load_workbook(workbook, read_only=True)  # read-only workbooks hold the file until closed
    try:
        rows = [[str(v or "") for v in row] for row in book.worksheets[0].iter_rows(values_only=True)]
    finally:
        book.close()
    assert rows[0][:4] == ["id", "name", "host", "port"] and len(rows) == 9
    assert all(SIM_PASSWORD not in "".join(r) for r in rows)
    bad = await xueliang("cameras", "export", str(tmp_path / "x.pdf"), "-c", str(config))
    assert bad.code == 2 and "use csv or xlsx" in bad.out


async def test_import_errors_are_readable(config: Path, tmp_path: Path) -> None:
    missing = await xueliang("cameras", "import", str(tmp_path / "nope.csv"), "-c", str(config))
    assert missing.code == 2 and "does not exist" in missing.out
    headerless = tmp_path / "bad.csv"
    headerless.write_text("name,foo\nx,y\n", encoding="utf-8")
    unreadable = await xueliang("cameras", "import", str(headerless), "-c", str(config))
    assert unreadable.code == 1 and "no camera address column" in unreadable.out


async def test_a_damaged_camera_list_is_an_error_message_not_a_traceback(config: Path, tmp_path: Path) -> None:
    workbook = tmp_path / "cut.xlsx"
    workbook.write_bytes(truncated_sheet())
    cut = await xueliang("cameras", "import", str(workbook), "-c", str(config))  # asserts: no traceback
    assert cut.code == 1 and "XLSX workbook is damaged after row" in cut.out, cut
    quoted = tmp_path / "quoted.csv"
    quoted.write_bytes(unclosed_quote_csv())
    bad_csv = await xueliang("cameras", "import", str(quoted), "-c", str(config))
    assert bad_csv.code == 1 and "of the CSV cannot be read" in bad_csv.out, bad_csv
    assert not (tmp_path / "cut.result.csv").exists()  # refused before anything was written


async def test_probe_shows_the_camera_or_says_why_not(sim: CameraSimulator, config: Path) -> None:
    camera = sim.cameras[0]
    address = f"{camera.address}:{sim.http_port}"
    shown = await xueliang("cameras", "probe", address, "--user", "admin", "--password-stdin", "-c", str(config),
                           stdin=SIM_PASSWORD + "\n")  # fmt: skip
    assert shown.code == 0, shown
    assert camera.manufacturer in shown.out and camera.model in shown.out and camera.serial in shown.out
    assert "Profile_2" in shown.out and "analysis" in shown.out and "/Streaming/Channels/102" in shown.out
    assert "PTZ: yes, 3 presets" in shown.out

    refused = await xueliang("cameras", "probe", address, "--user", "admin", "--password-stdin", "-c", str(config),
                             stdin="wrong\n")  # fmt: skip
    assert refused.code == 1 and "摄像机拒绝了用户名或密码" in refused.out and "username or password" in refused.out
    outside = await xueliang("cameras", "probe", "127.9.9.9:80", "-c", str(config))
    assert outside.code == 1 and "127.9.9.9 is outside the allowed networks" in outside.out
    nonsense = await xueliang("cameras", "probe", "not a host", "-c", str(config))
    assert nonsense.code == 2 and "is not an IP address or host name" in nonsense.out


MATCHES = """<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
 <s:Header><a:RelatesTo>{relates_to}</a:RelatesTo></s:Header>
 <s:Body><d:ProbeMatches><d:ProbeMatch>
  <a:EndpointReference><a:Address>urn:uuid:cam-{host}</a:Address></a:EndpointReference>
  <d:Types>dn:NetworkVideoTransmitter</d:Types>
  <d:Scopes>onvif://www.onvif.org/name/SIM%20{host} onvif://www.onvif.org/hardware/DS-2CD2T47G2-L</d:Scopes>
  <d:XAddrs>http://{host}:{port}/onvif/device_service</d:XAddrs>
 </d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>"""


class Responder(asyncio.DatagramProtocol):
    """One camera's WS-Discovery listener."""

    def __init__(self, host: str, http_port: int) -> None:
        self.host, self.http_port = host, http_port
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message_id = etree.fromstring(data).findtext("{*}Header/{*}MessageID")
        reply = MATCHES.format(relates_to=message_id, host=self.host, port=self.http_port)
        assert self.transport is not None
        self.transport.sendto(reply.encode(), addr)


@pytest.fixture
async def responders(sim: CameraSimulator) -> AsyncIterator[int]:
    """WS-Discovery answers from cameras 0 and 1 of the simulator, on one free UDP port."""
    loop = asyncio.get_running_loop()
    transports = []
    port = 0
    for camera in sim.cameras[:2]:
        transport, _ = await loop.create_datagram_endpoint(
            lambda host=camera.address: Responder(host, sim.http_port), local_addr=(camera.address, port)
        )
        port = transport.get_extra_info("sockname")[1]
        transports.append(transport)
    yield port
    for transport in transports:
        transport.close()


async def test_discover_lists_cameras_and_which_are_registered(
    sim: CameraSimulator, responders: int, config: Path, tmp_path: Path
) -> None:
    source = tmp_path / "one.csv"
    source.write_text(
        f"address,port,username,password\n{sim.cameras[1].address},{sim.http_port},admin,{SIM_PASSWORD}\n"
    )
    assert (await xueliang("cameras", "import", str(source), "-c", str(config))).code == 0
    found = await xueliang(
        "cameras", "discover", "--cidr", "127.1.0.0/30", "--port", str(responders),
        "--timeout", "1", "-c", str(config),
    )  # fmt: skip
    assert found.code == 0, found
    lines = {line.split()[1]: line for line in found.out.splitlines() if "127.1.0." in line and "│" in line}
    assert set(lines) == {sim.cameras[0].address, sim.cameras[1].address}
    registered = {address: line.split("│")[-2].strip() for address, line in lines.items()}  # the last column
    assert registered[sim.cameras[0].address] == "no"
    assert registered[sim.cameras[1].address].endswith("(online)")
    assert "2 found" in found.out
    outside = await xueliang("cameras", "discover", "--cidr", "127.9.0.0/30", "-c", str(config))
    assert outside.code == 2 and "outside the allowed networks" in outside.out
    nowhere = await xueliang("cameras", "discover", "-c", str(config))
    assert nowhere.code == 2 and "say where to look" in nowhere.out
