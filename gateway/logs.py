"""Logging set-up: text or one JSON object per line, with the camera or case id when given.

Modules log through ``logging.getLogger(__name__)`` with ``%s`` arguments; a line about one camera
or case passes ``extra={"camera_id": ...}`` or ``extra={"case_code": ...}`` (or names it in the text).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

CONTEXT_FIELDS = ("camera_id", "case_code", "incident_id", "node", "user")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = [f"{field}={getattr(record, field)}" for field in CONTEXT_FIELDS if hasattr(record, field)]
        return f"{text} [{' '.join(context)}]" if context else text


# Credentials that must never reach a log line, whoever logs it (uvicorn logs WebSocket paths with
# their query string, where a wall page may carry ?token=): login tokens, API keys, URL passwords.
_SECRETS = re.compile(r"((?:token|api_key|key|password)=)[^&\s\"']+|(xlk_[0-9a-f]+_)[\w-]+|(://[^/:@\s]*:)[^@/\s]+(@)")


def redact(text: str) -> str:
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2) or m.group(3)) + "***" + (m.group(4) or ""), text)


class RedactSecrets(logging.Filter):
    """Replaces credentials in every record's message before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure(level: str = "INFO", json_format: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonFormatter() if json_format else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("zeep", "aioice", "aiortc", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
