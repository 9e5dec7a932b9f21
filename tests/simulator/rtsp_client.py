"""A minimal RTSP client over TCP for inspecting what the simulator sends (RTP headers, SEI, RTCP)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import struct
from dataclasses import dataclass


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@dataclass
class RtspReply:
    """Status, headers (lower-case names) and body of one RTSP answer."""

    status: int
    headers: dict[str, str]
    body: bytes


class RawRtspClient:
    """Speaks just enough RTSP/1.0 with digest authentication."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, user: str, password: str) -> None:
        self.reader, self.writer, self.user, self.password = reader, writer, user, password
        self.cseq = 0
        self.challenge: dict[str, str] | None = None

    @classmethod
    async def connect(cls, host: str, port: int, user: str, password: str) -> RawRtspClient:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, user, password)

    def _authorization(self, method: str, url: str) -> str | None:
        if self.challenge is None:
            return None
        realm, nonce = self.challenge["realm"], self.challenge["nonce"]
        ha1, ha2 = _md5(f"{self.user}:{realm}:{self.password}"), _md5(f"{method}:{url}")
        response = _md5(f"{ha1}:{nonce}:00000001:abcdef:auth:{ha2}")
        return (f'Digest username="{self.user}", realm="{realm}", nonce="{nonce}", uri="{url}", '
                f'response="{response}", qop=auth, nc=00000001, cnonce="abcdef"')  # fmt: skip

    async def request(self, method: str, url: str, headers: dict[str, str] | None = None) -> RtspReply:
        """Send one request (retrying once after a 401 challenge) and read the reply."""
        for _ in range(2):
            self.cseq += 1
            lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self.cseq}"]
            lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
            auth = self._authorization(method, url)
            if auth:
                lines.append(f"Authorization: {auth}")
            self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            reply = await self._read_reply()
            if reply.status != 401 or self.challenge is not None:
                return reply
            self.challenge = dict(re.findall(r'(\w+)="([^"]*)"', reply.headers["www-authenticate"]))
        return reply

    async def _read_reply(self) -> RtspReply:
        while (await self.reader.readexactly(1)) == b"$":  # interleaved media still in flight: skip it
            _, size = struct.unpack("!BH", await self.reader.readexactly(3))
            await self.reader.readexactly(size)
        head = "R" + (await self.reader.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return RtspReply(status, headers, body)

    async def interleaved(self) -> tuple[int, bytes]:
        """The next interleaved frame: (channel, payload)."""
        header = await self.reader.readexactly(4)
        magic, channel, size = struct.unpack("!cBH", header)
        assert magic == b"$"
        return channel, await self.reader.readexactly(size)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()
