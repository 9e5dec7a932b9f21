"""Conversions both backends share, so they store and answer alike.

Times are kept as UTC epoch seconds (float) and handed back as aware UTC datetimes; payloads as
compact JSON; camera queries reduce to exact-match index filters plus a case-insensitive needle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from xueliang.gateway.errors import StoreError
from xueliang.gateway.models import CameraQuery, CameraRecord
from xueliang.gateway.stores.base import JSON

# CameraQuery field -> index name, the filters both backends keep an index for.
CAMERA_INDEXES: tuple[tuple[str, str], ...] = (
    ("status", "status"),
    ("region_code", "region_code"),
    ("township", "township"),
    ("grid_code", "grid_code"),
    ("category", "category"),
)


def encode_json(payload: Mapping[str, Any], what: str) -> str:
    """Compact JSON of ``payload``; ``StoreError`` naming ``what`` if it is not serialisable."""
    try:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what}: payload is not a JSON object of plain values ({exc}); convert it first") from exc


def decode_json(text: str | None) -> JSON:
    if not text:
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise StoreError(f"stored payload is not a JSON object: {text[:80]!r}")
    return value


def parse_message_id(topic: str, message_id: str) -> tuple[int, int]:
    """``(ms, seq)`` of a bus message id ``"ms-seq"``; ``StoreError`` if it is not one."""
    ms, sep, seq = message_id.partition("-")
    if not (sep and ms.isdigit() and seq.isdigit()):
        raise StoreError(f"bus topic {topic}: {message_id!r} is not a message id (ms-seq); ack the ids read() returned")
    return int(ms), int(seq)


def to_epoch(moment: datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def from_epoch_or_none(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def camera_index_values(camera: CameraRecord) -> dict[str, str]:
    """The indexed fields of ``camera``, by index name."""
    return {
        "status": str(camera.status),
        "region_code": camera.location.region_code,
        "township": camera.location.township,
        "grid_code": camera.location.grid_code,
        "category": camera.category,
    }


def camera_search_text(camera: CameraRecord) -> str:
    """What ``CameraQuery.search`` matches: name, host and address, case-folded."""
    return "\n".join((camera.name, camera.host, camera.location.address)).casefold()


def query_filters(query: CameraQuery) -> dict[str, str]:
    """The exact-match filters ``query`` asks for (empty fields do not filter), by index name."""
    filters: dict[str, str] = {}
    for field_name, index in CAMERA_INDEXES:
        value = getattr(query, field_name)
        if value is not None and value != "":
            filters[index] = str(value)
    return filters


def query_needle(query: CameraQuery) -> str | None:
    return query.search.casefold() if query.search else None
