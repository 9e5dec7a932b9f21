"""Open the pair of UDP sockets (even RTP port, RTP+1 for RTCP) one RTP/AVP UDP session sends from."""

from __future__ import annotations

import asyncio
import socket

_ATTEMPTS = 32


class _Discard(asyncio.DatagramProtocol):
    """Receiver reports from clients are read and ignored."""


def _bind_pair(address: str) -> tuple[socket.socket, socket.socket] | None:
    rtp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rtp_sock.bind((address, 0))
        port = rtp_sock.getsockname()[1]
        if port % 2 == 0 and port < 65535:
            rtcp_sock.bind((address, port + 1))
            rtp_sock.setblocking(False)
            rtcp_sock.setblocking(False)
            return rtp_sock, rtcp_sock
    except OSError:
        pass
    rtp_sock.close()
    rtcp_sock.close()
    return None


async def open_udp_pair(address: str) -> tuple[asyncio.DatagramTransport, asyncio.DatagramTransport, int]:
    """Bind RTP on an even free port of ``address`` and RTCP on the next one; return both and the RTP port."""
    loop = asyncio.get_running_loop()
    for _ in range(_ATTEMPTS):
        pair = _bind_pair(address)
        if pair is None:
            continue
        rtp_sock, rtcp_sock = pair
        port: int = rtp_sock.getsockname()[1]
        rtp, _ = await loop.create_datagram_endpoint(_Discard, sock=rtp_sock)
        rtcp, _ = await loop.create_datagram_endpoint(_Discard, sock=rtcp_sock)
        return rtp, rtcp, port
    raise OSError(f"no free even/odd UDP port pair on {address} after {_ATTEMPTS} attempts")
