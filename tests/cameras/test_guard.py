"""The allowed-networks guard: literals, names resolved off the loop (and cached), precise errors."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from xueliang.gateway.cameras.errors import AddressNotAllowed, AddressUnresolvable
from xueliang.gateway.cameras.guard import NetworkGuard


def guard(*networks: str, cache_s: float = 60.0) -> NetworkGuard:
    return NetworkGuard([ipaddress.ip_network(n) for n in networks], dns_cache_s=cache_s)


async def test_literals_inside_pass_and_outside_are_refused_precisely() -> None:
    allowed = guard("10.0.0.0/8", "127.1.0.0/16")
    assert await allowed.check("10.1.2.3") == (ipaddress.ip_address("10.1.2.3"),)
    assert await allowed.check("127.1.0.9") == (ipaddress.ip_address("127.1.0.9"),)
    with pytest.raises(AddressNotAllowed) as caught:
        await guard("10.0.0.0/8").check("127.9.9.9")
    assert str(caught.value) == (
        "127.9.9.9 is outside the allowed networks 10.0.0.0/8: add it to security.allowed_networks or fix the address"
    )
    assert caught.value.host == "127.9.9.9"
    # An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
    assert await allowed.check("::ffff:10.9.9.9")
    with pytest.raises(AddressNotAllowed, match="outside the allowed networks"):
        await allowed.check("::ffff:192.168.1.1")
    with pytest.raises(AddressNotAllowed, match="fe80::1 is outside"):
        await allowed.check("[fe80::1]")


async def test_names_are_resolved_and_every_address_must_be_inside() -> None:
    assert ipaddress.ip_address("127.0.0.1") in await guard("127.0.0.0/8", "::1/128").check("localhost")
    with pytest.raises(AddressNotAllowed, match=r"^localhost resolves to .*127\.0\.0\.1.*outside the allowed networks"):
        await guard("10.0.0.0/8", "::1/128").check("localhost")


@pytest.fixture
async def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names the event loop's resolver is asked for (the real resolver still answers)."""
    loop = asyncio.get_running_loop()
    asked: list[str] = []
    resolve = loop.getaddrinfo

    async def counted(host: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        return await resolve(host, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", counted)
    return asked


async def test_resolved_names_are_cached_for_the_configured_time(lookups: list[str]) -> None:
    cached = guard("127.0.0.0/8", "::1/128", cache_s=3600)
    first = await cached.check("localhost")
    cached.networks = (ipaddress.ip_network("10.0.0.0/8"),)
    with pytest.raises(AddressNotAllowed):  # the cached answer is judged against the networks now
        await cached.check("localhost")
    cached.networks = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert await cached.check("localhost") == first
    assert lookups == ["localhost"]  # resolved once, answered from the cache twice

    uncached = guard("127.0.0.0/8", "::1/128", cache_s=0)
    for _ in range(2):
        assert await uncached.check("localhost") == first
    assert lookups == ["localhost"] * 3  # no cache time: every check asks the resolver


async def test_a_name_that_cannot_resolve_says_so() -> None:
    name = "a" * 64 + ".cameras"  # a DNS label longer than 63: refused before any lookup
    with pytest.raises(AddressUnresolvable, match=f"cannot resolve the camera host name {name}"):
        await guard("127.0.0.0/8").check(name)
