"""xs:duration and xs:dateTime values as ONVIF requests carry them."""

from __future__ import annotations

import datetime as dt
import re

_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: str) -> float:
    """Seconds of an xs:duration such as ``PT10S``, ``PT1M30S`` or ``P1D``; ValueError otherwise."""
    match = _DURATION.match(value.strip())
    if match is None or value.strip() in ("P", "PT"):
        raise ValueError(f"{value!r} is not an xs:duration like PT60S")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return parts.get("d", 0.0) * 86400 + parts.get("h", 0.0) * 3600 + parts.get("m", 0.0) * 60 + parts.get("s", 0.0)


def parse_termination(value: str, now: dt.datetime) -> dt.datetime:
    """An InitialTerminationTime / TerminationTime: relative duration or absolute dateTime."""
    text = value.strip()
    if text.startswith("P"):
        return now + dt.timedelta(seconds=parse_duration(text))
    return parse_datetime(text)


def parse_datetime(text: str) -> dt.datetime:
    """An xs:dateTime (``Z`` or an offset); naive values are taken as UTC; ValueError otherwise."""
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
