"""``xueliang cameras ...``: import camera lists, discover and probe cameras, list and export the
registry. Works on the configured stores directly (like ``xueliang users``), audited as
``cli:<login>``. Errors are printed readably (Chinese first, English second) with a non-zero exit.
"""

from __future__ import annotations

import asyncio
import getpass
import ipaddress
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from xueliang.gateway.cameras.models import ImportProgress, RowResult
from xueliang.gateway.cli.console import err, out, table
from xueliang.gateway.cli.options import ConfigOption, actor, settings_from
from xueliang.gateway.errors import ConfigError, ConfigProblem
from xueliang.gateway.models import CameraQuery, CameraRecord, CameraStatus

if TYPE_CHECKING:
    from xueliang.connectors.onvif import ProbeResult

cameras_app = typer.Typer(
    help="Cameras (摄像机): import lists, discover, probe, list and export the registry.", no_args_is_help=True
)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


# ---------------------------------------------------------------- import


class _Bar:
    """A rich progress bar fed by the import's progress callback."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None
        self.last: ImportProgress | None = None

    def __call__(self, current: ImportProgress) -> None:
        self.last = current
        eta_s = current.eta_s
        rate = f"{current.rate:.1f}/s"
        eta = "-" if eta_s is None else f"{int(eta_s) // 60}:{int(eta_s) % 60:02d}"
        ok, failed = current.ok + current.skipped, current.failed
        if self.task is None:
            self.task = self.progress.add_task(
                "导入 importing", total=current.total, rate=rate, eta=eta, ok=ok, failed=failed
            )
        self.progress.update(self.task, completed=current.done, rate=rate, eta=eta, ok=ok, failed=failed)


@cameras_app.command("import")
def import_(
    *,
    file: Annotated[
        Path, typer.Argument(help="Camera list: CSV (UTF-8 or GB18030) or XLSX.", exists=True, dir_okay=False)
    ],
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume", help="Result file of an earlier run: skip rows done since.", exists=True, dir_okay=False
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            max=4096,
            help="Rows in flight (default: import_concurrency in the cameras settings).",
        ),
    ] = None,
    result: Annotated[
        Path | None,
        typer.Option("--result", help="Where the per-row result file goes (default: FILE.result.csv).", dir_okay=False),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Provision every camera of a list; writes a per-row result file; exit 1 if any row failed.

    Ctrl-C stops it (exit 130): the rows done so far are in the result file; run again with --resume."""
    from xueliang.gateway.cameras.bulk import BulkImport, ImportReport, default_result_path
    from xueliang.gateway.cameras.service import CameraService
    from xueliang.gateway.node import open_node

    settings = settings_from(config)
    target = result or default_result_path(file)
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TextColumn("ETA {task.fields[eta]}"),
        TextColumn("[green]{task.fields[ok]} ok[/] [red]{task.fields[failed]} failed[/]"),
    )  # fmt: skip

    async def work(bar: _Bar) -> ImportReport:
        async with open_node(settings) as node, CameraService(node) as service:
            importer = BulkImport(service, actor=actor(), concurrency=concurrency, on_progress=bar)
            return await importer.run(file, target, resume=resume)

    bar = _Bar(Progress(*columns, console=out))
    try:
        with bar.progress:
            report = asyncio.run(work(bar))
    except KeyboardInterrupt:
        if bar.last is None or not bar.last.done:
            raise _fail("已中断 interrupted before any row was done", 130) from None
        raise _fail(
            f"已中断 interrupted after {bar.last.done} of {bar.last.total} rows; they are in {target}: "
            f"run again with --resume {target}",
            130,
        ) from None
    except OSError as exc:  # the result file cannot be written (read-only or full disk)
        raise _fail(f"cannot write {exc.filename or target}: {exc.strerror}") from exc
    _summary(report.results, report.progress)
    if report.unknown_columns:
        out.print(f"[yellow]columns not used:[/] {', '.join(report.unknown_columns)}")
    out.print(f"结果文件 result file: [bold]{report.result_path}[/]")
    if report.failed:
        out.print(f"[red]{len(report.failed)} row(s) need attention[/]; fix them and run again with --resume")
        raise typer.Exit(1)


def _summary(results: list[RowResult], progress: ImportProgress) -> None:
    rows = table("status", "rows", "example", title=f"{progress.done} rows in {progress.elapsed_s:.1f} s")
    examples: dict[str, RowResult] = {}
    for row in results:
        examples.setdefault(row.status, row)
    for status, count in sorted(progress.by_status.items(), key=lambda item: -item[1]):
        example = examples.get(status)
        shown = f"row {example.row} {example.address}: {example.reason[:100]}" if example and example.reason else ""
        style = "green" if status in ("online", "skipped") else "red"
        rows.add_row(f"[{style}]{status}[/]", str(count), shown)
    out.print(rows)


# ---------------------------------------------------------------- discover


@cameras_app.command()
def discover(
    *,
    cidr: Annotated[
        list[str] | None, typer.Option("--cidr", help="Range to scan, e.g. 10.1.2.0/24 (repeatable).")
    ] = None,
    address: Annotated[list[str] | None, typer.Option("--address", help="One address to ask (repeatable).")] = None,
    multicast: Annotated[bool, typer.Option("--multicast", help="Ask the local segment (239.255.255.250).")] = False,
    timeout: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds to wait for answers (onvif.discovery).")
    ] = None,
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="WS-Discovery port of the cameras (3702; other values for labs).")
    ] = 3702,
    config: ConfigOption = None,
) -> None:
    """Find ONVIF cameras with WS-Discovery; shows which are registered already."""
    from xueliang.connectors.onvif.discovery import (
        DiscoveryReport,
        discover_multicast,
        discover_unicast,
        expand_targets,
    )
    from xueliang.gateway.cameras.guard import NetworkGuard
    from xueliang.gateway.node import open_node

    targets = [*(cidr or []), *(address or [])]
    if not targets and not multicast:
        raise _fail("say where to look: --cidr 10.1.2.0/24, --address 10.1.2.3 or --multicast", 2)
    settings = settings_from(config)
    guard = NetworkGuard(settings.security.allowed_networks)
    try:
        addresses = expand_targets(targets, settings.onvif.discovery.max_addresses)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    outside = [a for a in addresses if not guard.allows(ipaddress.ip_address(a))]
    if outside:
        raise _fail(
            f"{outside[0]} (and {len(outside) - 1} more) is outside the allowed networks {guard.described}: "
            "add it to security.allowed_networks or fix the range",
            2,
        )

    async def work() -> tuple[DiscoveryReport, dict[str, CameraRecord]]:
        discovery = settings.onvif.discovery
        if multicast:
            report = await discover_multicast(discovery, timeout_s=timeout)
        else:
            report = DiscoveryReport()
        if targets:
            unicast = await discover_unicast(addresses, discovery, port=port, timeout_s=timeout)
            report.devices += unicast.devices
            report.unanswered, report.malformed = unicast.unanswered, report.malformed + unicast.malformed
        async with open_node(settings) as node:
            registered = {}
            for device in report.devices:
                service = urlsplit(device.xaddrs[0]) if device.xaddrs else None
                found = await node.stores.cameras.find_by_address(device.address, (service and service.port) or 80)
                if found is not None:
                    registered[device.address] = found
        return report, registered

    try:
        report, registered = asyncio.run(work())
    except (ValueError, OSError) as exc:
        raise _fail(f"discovery failed: {exc}") from exc
    rows = table("address", "name", "hardware", "device service", "registered", title="ONVIF cameras found")
    for device in sorted(report.devices, key=lambda d: ipaddress.ip_address(d.address)):
        camera = registered.get(device.address)
        rows.add_row(
            device.address, device.name, device.hardware, " ".join(device.xaddrs[:1]),
            f"{camera.id} ({camera.status.value})" if camera else "[yellow]no[/]",
        )  # fmt: skip
    out.print(rows)
    out.print(f"{len(report.devices)} found, {report.unanswered} unanswered, {report.malformed} unreadable answers")


# ---------------------------------------------------------------- probe


def _split_address(address: str, port: int | None) -> tuple[str, int]:
    from xueliang.gateway.cameras.models import normalise_host

    host, found = address, port
    if address.count(":") == 1:  # host:port (an IPv6 literal has several colons)
        host, _, text = address.partition(":")
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise _fail(f"{address!r}: the port after ':' must be a number from 1 to 65535", 2)
        found = port or int(text)
    try:
        return normalise_host(host), found or 80
    except ValueError as exc:
        raise _fail(str(exc), 2) from None


@cameras_app.command()
def probe(
    address: Annotated[str, typer.Argument(help="Camera address: IP or host name, optionally with :port.")],
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="ONVIF HTTP port (default 80).")] = None,
    user: Annotated[str, typer.Option("--user", "-u", help="ONVIF user name.")] = "",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    config: ConfigOption = None,
) -> None:
    """Ask one camera who it is, its profiles, stream and snapshot URIs and PTZ (nothing is stored)."""
    from xueliang.connectors.onvif import OnvifClient, OnvifError, create_session
    from xueliang.gateway.cameras.errors import CameraAddressError
    from xueliang.gateway.cameras.guard import NetworkGuard

    host, port_number = _split_address(address, port)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif user and sys.stdin.isatty():
        password = getpass.getpass(f"password of {user}@{host}: ")
    else:
        password = ""
    settings = settings_from(config)

    async def work() -> ProbeResult:
        guard = NetworkGuard(settings.security.allowed_networks)
        await guard.check(host)
        async with create_session(settings.onvif, policy=guard) as session:  # XAddrs it gives are checked too
            client = OnvifClient(host, port_number, user, password, session=session, settings=settings.onvif)
            async with client:
                return await client.probe()

    try:
        result = asyncio.run(work())
    except CameraAddressError as exc:
        raise _fail(str(exc)) from exc
    except OnvifError as exc:
        raise _fail(f"{exc.message_zh}\n       {exc}") from exc
    _show_probe(result)


def _show_probe(result: ProbeResult) -> None:
    identity = result.identity
    out.print(f"[bold]{result.camera}[/]  {identity.manufacturer} {identity.model}")
    out.print(f"  firmware {identity.firmware}, serial {identity.serial}, hardware {identity.hardware_id}")
    out.print(f"  clock offset {result.clock_offset_s:+.1f} s, Media{result.media_version}"
              + (", services from GetCapabilities" if result.used_capabilities_fallback else ""))  # fmt: skip
    rows = table("token", "name", "encoding", "size", "fps", "stream URI", "snapshot URI", "use")
    for profile in result.profiles:
        use = [
            u
            for u, token in (("analysis", result.analysis_profile), ("live", result.live_profile))
            if token == profile.token
        ]
        rows.add_row(
            profile.token, profile.name, profile.encoding, f"{profile.width}x{profile.height}", f"{profile.fps:g}",
            profile.stream_uri or "-", profile.snapshot_uri or "-", ", ".join(use),
        )  # fmt: skip
    out.print(rows)
    if result.ptz:
        presets = ", ".join(f"{p.token} {p.name}".strip() for p in result.presets[:10])
        more = f" (+{len(result.presets) - 10})" if len(result.presets) > 10 else ""
        out.print(f"  PTZ: yes, {len(result.presets)} presets: {presets}{more}")
    else:
        out.print("  PTZ: no")


# ---------------------------------------------------------------- list / export


def _query(status: str | None, region: str | None, township: str | None, search: str | None) -> CameraQuery:
    try:
        wanted = CameraStatus(status) if status else None
    except ValueError:
        choices = ", ".join(s.value for s in CameraStatus)
        raise ConfigError(
            "--status", [ConfigProblem("status", f"unknown status {status!r}", f"use {choices}")]
        ) from None
    return CameraQuery(status=wanted, region_code=region, township=township, search=search, limit=100_000)


StatusOption = Annotated[str | None, typer.Option("--status", help="online, offline, auth_failed, ...")]
RegionOption = Annotated[str | None, typer.Option("--region", help="6-digit region code (行政区划代码).")]
TownshipOption = Annotated[str | None, typer.Option("--township", help="Township / street name.")]
SearchOption = Annotated[str | None, typer.Option("--search", "-q", help="Part of name, host or address.")]


@cameras_app.command("list")
def list_(
    *,
    status: StatusOption = None,
    region: RegionOption = None,
    township: TownshipOption = None,
    search: SearchOption = None,
    limit: Annotated[int, typer.Option(min=1, help="Most rows shown.")] = 200,
    config: ConfigOption = None,
) -> None:
    """List registered cameras with their status and last error."""
    from xueliang.gateway.node import open_node

    settings = settings_from(config)
    query = _query(status, region, township, search)

    async def work() -> tuple[list[CameraRecord], int]:
        async with open_node(settings) as node:
            shown = query.model_copy(update={"limit": limit})
            return await node.stores.cameras.list(shown), await node.stores.cameras.count(query)

    cameras, total = asyncio.run(work())
    rows = table("id", "name", "address", "status", "region", "township", "category", "last error")
    for camera in cameras:
        style = "green" if camera.status is CameraStatus.ONLINE else "red"
        rows.add_row(
            camera.id, camera.name, f"{camera.host}:{camera.port}", f"[{style}]{camera.status.value}[/]",
            camera.location.region_code, camera.location.township, camera.category, camera.last_error[:60],
        )  # fmt: skip
    out.print(rows)
    out.print(f"{len(cameras)} of {total} camera(s)")


@cameras_app.command()
def export(
    *,
    out_file: Annotated[Path, typer.Argument(metavar="OUT", help="File to write (.csv or .xlsx).", dir_okay=False)],
    format_: Annotated[str | None, typer.Option("--format", help="csv or xlsx (default: from OUT's suffix).")] = None,
    status: StatusOption = None,
    region: RegionOption = None,
    township: TownshipOption = None,
    config: ConfigOption = None,
) -> None:
    """Write the registry (or part of it) to CSV or XLSX; passwords are never exported."""
    from xueliang.gateway.cameras.export import all_cameras, to_csv, to_xlsx
    from xueliang.gateway.node import open_node

    kind = (format_ or out_file.suffix.lstrip(".") or "csv").lower()
    if kind not in ("csv", "xlsx"):
        raise _fail(f"--format {kind!r}: use csv or xlsx", 2)
    settings = settings_from(config)
    query = _query(status, region, township, None)

    async def work() -> tuple[bytes, int]:
        async with open_node(settings) as node:
            cameras = [c async for c in all_cameras(node.stores.cameras, query)]
        return await asyncio.to_thread(to_csv if kind == "csv" else to_xlsx, cameras), len(cameras)

    data, count = asyncio.run(work())
    try:
        out_file.write_bytes(data)
    except OSError as exc:
        raise _fail(f"cannot write {out_file}: {exc.strerror}") from exc
    out.print(f"[green]✓[/] {count} camera(s) written to [bold]{out_file}[/] ({kind})")
