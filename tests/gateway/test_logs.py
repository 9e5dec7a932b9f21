"""Log lines never carry credentials, whoever writes them; JSON lines carry the camera id."""

from __future__ import annotations

import json
import logging

from xueliang.gateway.logs import JsonFormatter, RedactSecrets, redact


def test_tokens_api_keys_and_url_passwords_are_redacted() -> None:
    line = '127.0.0.1:5 - "WebSocket /api/wall/ws?token=eyJhbGciOi.abc.def&x=1" [accepted]'
    assert redact(line) == '127.0.0.1:5 - "WebSocket /api/wall/ws?token=***&x=1" [accepted]'
    assert redact("key xlk_1a2b3c4d_SecretPart-xyz used") == "key xlk_1a2b3c4d_*** used"
    assert redact("opening rtsp://admin:p%40ss@127.1.0.2:554/x") == "opening rtsp://admin:***@127.1.0.2:554/x"
    assert redact("redis at redis://:s3cret@127.0.0.1:6379/0") == "redis at redis://:***@127.0.0.1:6379/0"
    assert redact("camera 127.1.0.2:80 answered") == "camera 127.1.0.2:80 answered"


def test_the_filter_cleans_records_before_formatting() -> None:
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, '"WebSocket %s" [accepted]', ("/ws?token=abc",), None
    )
    record.camera_id = "cam-7"
    assert RedactSecrets().filter(record)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == '"WebSocket /ws?token=***" [accepted]' and entry["camera_id"] == "cam-7"
