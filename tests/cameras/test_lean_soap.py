"""The sweep's lean SOAP path against misbehaving HTTP peers on loopback: chunked answers and
closed connections, web pages, silence, resets; each ends in the status provisioning would give."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import ipaddress
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from xueliang.connectors.onvif import AddressRefused, MalformedResponse, OnvifSettings, Unreachable
from xueliang.connectors.onvif.replay import system_date_time_response
from xueliang.gateway.cameras.endpoints import MediaEndpoint
from xueliang.gateway.cameras.guard import NetworkGuard
from xueliang.gateway.cameras.health import HealthChecker
from xueliang.gateway.cameras.lean_soap import CameraConnection
from xueliang.gateway.cameras.settings import SweepSettings
from xueliang.gateway.models import CameraRecord, CameraStatus, StreamProfile

from .conftest import CAPTURES

URI = "rtsp://127.0.0.1:554/Streaming/Channels/3?transportmode=unicast&profile=Profile_3"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def checker(timeout_s: float = 2.0, onvif: OnvifSettings | None = None) -> HealthChecker:
    settings = SweepSettings(timeout_s=timeout_s, connect_timeout_s=1)
    return HealthChecker(settings, onvif or OnvifSettings(), NetworkGuard([ipaddress.ip_network("127.0.0.0/8")]))


def camera(port: int) -> CameraRecord:
    profile = StreamProfile(token="Profile_2", encoding="H264", stream_uri=URI)
    return CameraRecord(
        id="cam-1", name="test", host="127.0.0.1", port=port, username="admin", profiles=[profile],
        analysis_profile="Profile_2", status=CameraStatus.ONLINE,
    )  # fmt: skip


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> int:
        app = web.Application()
        app.router.add_route("POST", "/{path:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return int(runner.addresses[0][1])

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_chunked_answers_on_connections_the_camera_closes(serve: Callable[[Handler], Awaitable[int]]) -> None:
    stream_uri = (CAPTURES / "hikvision" / "media" / "GetStreamUri.Response.xml").read_bytes()
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen.append("GetStreamUri" if b"GetStreamUri" in body else "GetSystemDateAndTime")
        response = web.StreamResponse(headers={"Content-Type": "application/soap+xml", "Connection": "close"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        answer = stream_uri if b"GetStreamUri" in body else system_date_time_response(datetime.now(UTC))
        for start in range(0, len(answer), 100):  # many small chunks
            await response.write(answer[start : start + 100])
        await response.write_eof()
        return response

    port = await serve(handler)
    media = MediaEndpoint(f"http://127.0.0.1:{port}/onvif/Media", 1)
    health, _ = await checker().check(camera(port), "pw", media)
    assert health.status is CameraStatus.ONLINE and health.error == "" and not health.needs_probe
    assert health.stream_uri == URI
    assert health.clock_offset_s is not None and abs(health.clock_offset_s) < 2  # 0.0 is a measured offset too
    assert seen == ["GetSystemDateAndTime", "GetStreamUri"]


async def test_a_web_page_is_not_onvif(serve: Callable[[Handler], Awaitable[int]]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<!DOCTYPE html><html>login</html>", content_type="text/html")

    port = await serve(handler)
    health, _ = await checker().check(camera(port), "pw", None)
    assert health.status is CameraStatus.UNSUPPORTED and "web page" in health.error


async def test_an_answer_that_is_not_xml_or_not_soap_is_not_onvif(serve: Callable[[Handler], Awaitable[int]]) -> None:
    """The lean path reads answers with the connector's own rule (``soap.interpret_answer``)."""
    answers = iter([b"OK 200 ready", b'<?xml version="1.0"?><Envelope xmlns="urn:not-soap"><Body/></Envelope>'])

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=next(answers), content_type="application/soap+xml")

    port = await serve(handler)
    garbage, _ = await checker().check(camera(port), "pw", None)
    assert garbage.status is CameraStatus.UNSUPPORTED and "not XML" in garbage.error
    foreign, _ = await checker().check(camera(port), "pw", None)
    assert foreign.status is CameraStatus.UNSUPPORTED and "not SOAP" in foreign.error


async def test_silence_is_a_timeout_and_a_reset_is_unreachable() -> None:
    writers: list[asyncio.StreamWriter] = []
    stop = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read(65536)
        await stop.wait()  # never answers

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        writer.transport.abort()

    quiet = await asyncio.start_server(silent, "127.0.0.1", 0)
    rude = await asyncio.start_server(reset, "127.0.0.1", 0)
    try:
        health, _ = await checker(timeout_s=0.5).check(camera(quiet.sockets[0].getsockname()[1]), "pw", None)
        assert health.status is CameraStatus.OFFLINE and "did not answer in time" in health.error
        health, _ = await checker().check(camera(rude.sockets[0].getsockname()[1]), "pw", None)
        assert health.status is CameraStatus.OFFLINE and "Camera unreachable" in health.error
    finally:
        stop.set()
        for writer in writers:
            writer.close()
        for server in (quiet, rude):
            server.close()
            await server.wait_closed()


class RecordingExecutor(concurrent.futures.ThreadPoolExecutor):
    """A real (bounded) thread pool that notes the functions it runs and on which thread."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.ran: list[tuple[str, int]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        def noted() -> Any:
            target = fn.func if isinstance(fn, functools.partial) else fn
            self.ran.append((getattr(target, "__name__", repr(target)), threading.get_ident()))
            return fn(*args, **kwargs)

        return super().submit(noted)


async def test_answers_over_the_threshold_are_parsed_off_the_event_loop(
    serve: Callable[[Handler], Awaitable[int]],
) -> None:
    stream_uri = (CAPTURES / "hikvision" / "media" / "GetStreamUri.Response.xml").read_bytes()
    clock = system_date_time_response(datetime.now(UTC))
    threshold = 1000
    assert len(clock) < threshold < len(stream_uri)

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        answer = stream_uri if b"GetStreamUri" in body else clock
        return web.Response(body=answer, content_type="application/soap+xml")

    port = await serve(handler)
    executor = RecordingExecutor()
    loop = asyncio.get_running_loop()
    loop.set_default_executor(executor)
    media = MediaEndpoint(f"http://127.0.0.1:{port}/onvif/Media", 1)
    health, _ = await checker(onvif=OnvifSettings(parse_in_executor_bytes=threshold)).check(camera(port), "pw", media)
    assert health.status is CameraStatus.ONLINE and health.stream_uri == URI, health
    parsed = [thread for name, thread in executor.ran if name == "parse_xml"]
    assert len(parsed) == 1  # GetStreamUri's answer; the small clock answer stays on the loop
    assert parsed[0] != threading.get_ident()


@pytest.mark.parametrize(
    "url", ["http://admin:s3cr3t@[::1/onvif/media", "http://admin:s3cr3t@cam:99999/onvif", "ftp://admin:s3cr3t@cam/x"]
)
async def test_an_unusable_service_address_is_malformed_and_hides_its_password(url: str) -> None:
    """Not a bare ValueError out of the sweep (an unparsable address or port), no password shown."""
    connection = CameraConnection("cam-1", 1.0, 5.0, 1 << 20)
    with pytest.raises(MalformedResponse, match="unusable service address") as caught:
        await connection.call(url, "urn:ns", "GetStreamUri", b"")
    assert "s3cr3t" not in str(caught.value)


async def test_a_policy_is_checked_on_the_resolved_address_and_the_checked_address_is_used() -> None:
    """With the node's guard, a host outside the allowed networks is never connected to (the media
    XAddr a camera gives included), and a name is connected to by the address that was checked."""
    seen: list[str] = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("sockname")[0])
        writer.close()

    forbidden = await asyncio.start_server(count, "127.0.0.2", 0)
    allowed = await asyncio.start_server(count, "127.0.0.1", 0)
    guard = NetworkGuard([ipaddress.ip_network("127.0.0.1/32")])
    connection = CameraConnection("cam-1", 1.0, 5.0, 1 << 20, policy=guard)
    try:
        port = forbidden.sockets[0].getsockname()[1]
        with pytest.raises(AddressRefused, match=r"not connecting to 127\.0\.0\.2 .*outside the allowed networks"):
            await connection.call(f"http://127.0.0.2:{port}/onvif/media", "urn:ns", "GetStreamUri", b"")
        port = allowed.sockets[0].getsockname()[1]
        with pytest.raises(Unreachable) as caught:  # reached (by its checked address), then it hung up
            await connection.call(f"http://localhost:{port}/onvif/device", "urn:ns", "GetSystemDateAndTime", b"")
        assert not isinstance(caught.value, AddressRefused), caught.value
        assert seen and set(seen) == {"127.0.0.1"}  # never the forbidden listener (127.0.0.2)
    finally:
        connection.close()
        forbidden.close()
        allowed.close()
