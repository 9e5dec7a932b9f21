"""The gateway connects only to addresses ``security.allowed_networks`` allows, whatever a camera says.

Loopback stands in for the city network: the allowed network is 127.1.0.0/16 (the cameras), and a
"forbidden" listener elsewhere on loopback records whether anything ever connected to it. The
cameras are replayed real captures (Hikvision) with one answer mutated to point at the listener:
a service XAddr, a PullPoint subscription address, an HTTP redirect; and host names that resolve
(or re-resolve, after the check) outside. Each case ends in a precise refusal and zero
connections to the forbidden listener; the refusal is logged once and never shows the password.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from xueliang.connectors.onvif import AddressRefused, NotOnvif, OnvifClient, OnvifSettings, create_session
from xueliang.connectors.onvif.replay import CaptureReplayServer
from xueliang.gateway.cameras.guard import NetworkGuard

CAPTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "onvif-captures"
CAMERA_HOST = "127.1.0.1"  # inside the allowed network
FORBIDDEN_HOST = "127.2.0.1"  # outside it
PASSWORD = "Pa55-w0rd!"
CAPTURED = b"http://10.10.1.60/"  # the Hikvision capture's own address, in every XAddr


class Listener:
    """A TCP listener that counts the connections it gets and answers nothing."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self, host: str) -> Listener:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.close()

        self._server = await asyncio.start_server(accept, host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
def guard() -> NetworkGuard:
    return NetworkGuard([ipaddress.ip_network("127.1.0.0/16")], dns_cache_s=0)


@pytest.fixture
def settings() -> OnvifSettings:
    # rewrite_addresses off: the gateway uses the addresses exactly as the camera gives them
    return OnvifSettings(timeout_s=5, connect_timeout_s=2, rewrite_addresses=False)


@pytest.fixture
async def listen() -> AsyncIterator[Callable[[str], Awaitable[Listener]]]:
    started: list[Listener] = []

    async def start(host: str) -> Listener:
        started.append(await Listener().start(host))
        return started[-1]

    yield start
    for listener in started:
        await listener.stop()


@pytest.fixture
async def forbidden(listen: Callable[[str], Awaitable[Listener]]) -> Listener:
    return await listen(FORBIDDEN_HOST)


@pytest.fixture
async def camera() -> AsyncIterator[CaptureReplayServer]:
    """The Hikvision capture on 127.1.0.1, its addresses pointing at itself (as given, no rewriting)."""
    async with CaptureReplayServer(
        CAPTURES / "hikvision", hosts=(CAMERA_HOST,), rewrite_addresses=False, live_clock=True
    ) as server:
        yield server


def answer(camera: CaptureReplayServer, service: str, method: str, *, forbidden: tuple[bytes, str] | None) -> None:
    """Serve ``method``'s capture with its addresses on the replay itself, except the one named
    by ``forbidden`` (the captured text, the URL that replaces it)."""
    body = (CAPTURES / "hikvision" / service / f"{method}.Response.xml").read_bytes()
    if forbidden is not None:
        assert forbidden[0] in body
        body = body.replace(forbidden[0], forbidden[1].encode())
    camera.answer(service, method, body.replace(CAPTURED, f"http://{CAMERA_HOST}:{camera.port}/".encode()))


def client(camera_host: str, port: int, settings: OnvifSettings, session: Any) -> OnvifClient:
    return OnvifClient(camera_host, port, "admin", PASSWORD, session=session, settings=settings)


async def test_a_service_address_outside_is_refused_before_connecting(
    camera: CaptureReplayServer,
    forbidden: Listener,
    guard: NetworkGuard,
    settings: OnvifSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    outside = f"http://{FORBIDDEN_HOST}:{forbidden.port}/onvif/Media"
    answer(camera, "core", "GetServices", forbidden=(b"http://10.10.1.60/onvif/Media", outside))
    caplog.set_level(logging.WARNING)
    async with create_session(settings, policy=guard) as session:
        for _ in range(2):
            with pytest.raises(AddressRefused) as caught:
                await client(CAMERA_HOST, camera.port, settings, session).probe()
    assert forbidden.connections == 0
    error = caught.value
    assert error.operation == "GetProfiles"
    assert f"not connecting to {FORBIDDEN_HOST} (for {outside})" in str(error)
    assert "outside the allowed networks 127.1.0.0/16" in str(error)
    assert "security.allowed_networks" in str(error)
    assert "security.allowed_networks" in error.message_zh
    refusals = [r.getMessage() for r in caplog.records if "not connecting to" in r.getMessage()]
    assert refusals == [
        f"camera {CAMERA_HOST}:{camera.port}: not connecting to {FORBIDDEN_HOST} (for {outside}): "
        "outside the allowed networks 127.1.0.0/16"
    ]  # two probes, one line
    assert PASSWORD not in caplog.text and PASSWORD not in str(error)


async def test_a_pullpoint_subscription_address_outside_is_refused(
    camera: CaptureReplayServer, forbidden: Listener, guard: NetworkGuard, settings: OnvifSettings
) -> None:
    answer(camera, "core", "GetServices", forbidden=None)
    manager = f"http://{FORBIDDEN_HOST}:{forbidden.port}/onvif/Events/PullSubManager"
    answer(
        camera,
        "events",
        "CreatePullPointSubscription",
        forbidden=(b"http://10.10.1.60/onvif/Events/PullSubManager_2018-02-27T18:28:52Z_5", manager),
    )
    async with (
        create_session(settings, policy=guard) as session,
        client(CAMERA_HOST, camera.port, settings, session).events() as events,
    ):
        assert events.address == manager
        with pytest.raises(AddressRefused, match=f"not connecting to {FORBIDDEN_HOST}"):
            await anext(events)
    assert forbidden.connections == 0  # neither PullMessages nor the Unsubscribe on leaving


async def test_a_redirect_is_never_followed(forbidden: Listener, settings: OnvifSettings) -> None:
    """Even without a policy: a camera answering 307 (POST kept) to elsewhere sends us nowhere."""
    target = f"http://{FORBIDDEN_HOST}:{forbidden.port}/onvif/device_service"

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": target})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, CAMERA_HOST, 0)
    await site.start()
    port = int(runner.addresses[0][1])
    try:
        async with create_session(settings) as session:
            with pytest.raises(NotOnvif) as caught:
                await client(CAMERA_HOST, port, settings, session).sync_clock()
    finally:
        await runner.cleanup()
    assert forbidden.connections == 0
    assert f"answered HTTP 307 redirecting to {target!r}; redirects are not followed" in str(caught.value)


async def test_a_camera_name_resolving_outside_is_refused(
    listen: Callable[[str], Awaitable[Listener]], guard: NetworkGuard, settings: OnvifSettings
) -> None:
    """``localhost`` resolves to 127.0.0.1 (and maybe ::1), outside 127.1.0.0/16."""
    forbidden = await listen("127.0.0.1")
    async with create_session(settings, policy=guard) as session:
        with pytest.raises(AddressRefused, match=r"not connecting to (127\.0\.0\.1|::1) \(for http://localhost:"):
            await client("localhost", forbidden.port, settings, session).sync_clock()
    assert forbidden.connections == 0


async def test_a_name_that_changes_its_answer_after_the_check_is_refused_at_connect(
    listen: Callable[[str], Awaitable[Listener]],
    guard: NetworkGuard,
    settings: OnvifSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name is inside when the guard checks it, outside when the connection is made."""
    forbidden = await listen("127.0.0.1")
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    first = [True]

    async def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "camera.test" and first[0]:
            first[0] = False
            return await real("127.1.0.5", port, *args, **kwargs)
        return await real("127.0.0.1" if host == "camera.test" else host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", rebinding)
    assert await guard.check("camera.test") == (ipaddress.ip_address("127.1.0.5"),)
    async with create_session(settings, policy=guard) as session:
        with pytest.raises(AddressRefused, match=r"not connecting to 127\.0\.0\.1 \(for http://camera\.test:"):
            await client("camera.test", forbidden.port, settings, session).sync_clock()
    assert forbidden.connections == 0


async def test_addresses_inside_still_work(
    camera: CaptureReplayServer, guard: NetworkGuard, settings: OnvifSettings
) -> None:
    """The policy refuses nothing it allows: the replayed camera is probed in full."""
    answer(camera, "core", "GetServices", forbidden=None)
    for service, method in (("media", "GetStreamUri"), ("media", "GetSnapshotUri")):
        answer(camera, service, method, forbidden=None)
    async with create_session(settings, policy=guard) as session:
        result = await client(CAMERA_HOST, camera.port, settings, session).probe()
    assert result.services and result.profiles
    assert all(f"{CAMERA_HOST}:{camera.port}" in xaddr for xaddr in result.services.values())
