"""Case codes (一案一码): unique across nodes, and readable by people on a receipt.

Form: ``<region 6 digits>-<YYYYMMDD>-<node tag>-<sequence 6 digits>``, e.g. ``511902-20250301-N01-000042``:
the district the camera is in, the local date it was observed, the node that raised it, and that
node's count for the district and day.

Why it is unique across nodes: the node tag is unique per node (configured, checked at start by the
gateway in scale-out), and each node's sequence per (region, day) is durable and strictly
increasing (an ``INSERT .. ON CONFLICT DO UPDATE .. RETURNING`` in the node's own SQLite file,
committed before the code is used). Two nodes never share a tag, one node never reuses a number, so
no two cases share a code. A crash after drawing a number leaves a gap, never a repeat. (A Redis
store can draw the sequence with ``INCR`` on ``seq:<region>:<day>:<tag>`` with the same guarantee.)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

CODE_PATTERN = re.compile(r"^(?P<region>\d{6})-(?P<day>\d{8})-(?P<node>[A-Z0-9]{2,8})-(?P<seq>\d{6,})$")
UNKNOWN_REGION = "000000"


class SequenceSource(Protocol):
    async def next_sequence(self, scope: str) -> int:
        """The next number of ``scope`` (1, 2, ...), committed durably before it returns."""


def to_local(at: datetime, zone: ZoneInfo) -> datetime:
    """``at`` in ``zone``; a naive ``at`` is taken as UTC (the gateway's times are UTC), never as the host's zone."""
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(zone)


def sequence_scope(region_code: str, day: str, node_tag: str) -> str:
    return f"{region_code}:{day}:{node_tag}"


def format_code(region_code: str, day: str, node_tag: str, sequence: int) -> str:
    return f"{region_code}-{day}-{node_tag}-{sequence:06d}"


def is_case_code(text: str) -> bool:
    return CODE_PATTERN.match(text) is not None


class CaseCodes:
    """Draws case codes for one node."""

    def __init__(self, node_tag: str, sequences: SequenceSource, timezone: str = "Asia/Shanghai") -> None:
        self.node_tag = node_tag
        self._sequences = sequences
        self._zone = ZoneInfo(timezone)

    async def next_code(self, region_code: str, observed_at: datetime) -> str:
        region = region_code if re.fullmatch(r"\d{6}", region_code) else UNKNOWN_REGION
        day = to_local(observed_at, self._zone).strftime("%Y%m%d")
        sequence = await self._sequences.next_sequence(sequence_scope(region, day, self.node_tag))
        return format_code(region, day, self.node_tag, sequence)
