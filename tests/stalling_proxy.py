"""A TCP proxy on loopback that can stall: the outage where sockets stay open and nothing comes, which a
clean server stop never shows (used by the Redis outage tests and the RTSP read-timeout tests)."""

from __future__ import annotations

import asyncio
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit


class StallingProxy:
    """A loopback TCP proxy to the service at ``target_url`` (its host and port); after ``stall()`` it
    holds every byte in both directions (connections stay open, nothing is answered) until ``resume()``."""

    def __init__(self, target_url: str) -> None:
        self._parts = parts = urlsplit(target_url)
        if parts.port is None:
            raise ValueError(f"{target_url}: the proxy needs the service's port in the URL")
        self._target = (parts.hostname or "127.0.0.1", parts.port)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        """``target_url`` through the proxy."""
        userinfo = self._parts.netloc.rpartition("@")[0]
        return urlunsplit(self._parts._replace(netloc=f"{userinfo}{'@' if userinfo else ''}127.0.0.1:{self.port}"))

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def __aenter__(self) -> StallingProxy:
        self._server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._pumps):
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        await self._server.wait_closed()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:  # the service is down: the client sees its connection closed, not a hang
            writer.close()
            return
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                await self._flowing.wait()
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            return  # the other side went away: close ours (finally)
        finally:
            sink.close()
