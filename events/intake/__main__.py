"""``python -m xueliang.events.intake``: run the reference intake service."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import uvicorn
from pydantic import SecretStr, ValidationError

from xueliang.events.intake.app import create_app
from xueliang.events.intake.settings import IntakeSettings


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m xueliang.events.intake",
        description="Reference intake service (综治中心受理接口参考实现): receives signed cases idempotently, "
        "advances their status and calls the gateway back. For tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9100, help="port to listen on (default 9100; 0: any free)")
    parser.add_argument("--db", type=Path, default=Path("var/intake.sqlite3"), help="SQLite file of received cases")
    parser.add_argument(
        "--secret",
        default=os.environ.get("XUELIANG_INTAKE_SECRET", ""),
        help="shared HMAC secret with the gateway (or XUELIANG_INTAKE_SECRET)",
    )
    parser.add_argument("--key-id", default="gateway", help="key id the gateway signs with (default gateway)")
    parser.add_argument("--callback-url", default="", help="gateway URL for signed status callbacks")
    parser.add_argument("--callback-key-id", default="intake", help="key id of the callbacks (default intake)")
    parser.add_argument("--callback-secret", default="", help="secret of the callbacks (default: --secret)")
    parser.add_argument(
        "--callback-api-key",
        default=os.environ.get("XUELIANG_INTAKE_CALLBACK_API_KEY", ""),
        help="the gateway's API key (role intake) sent with callbacks (or XUELIANG_INTAKE_CALLBACK_API_KEY)",
    )
    parser.add_argument("--step-s", type=float, default=5.0, help="seconds between status steps (default 5)")
    parser.add_argument("--duplicate-status", type=int, default=409, help="answer to a repeated case: 200 or 409")
    parser.add_argument("--seed", type=int, default=None, help="seed of the misbehaviour dice (reproducible)")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if not args.secret:
        print("error: --secret (or XUELIANG_INTAKE_SECRET) is required", file=sys.stderr)
        return 2
    try:
        settings = IntakeSettings(
            db=args.db,
            key_id=args.key_id,
            secret=SecretStr(args.secret),
            callback_url=args.callback_url,
            callback_key_id=args.callback_key_id,
            callback_secret=SecretStr(args.callback_secret) if args.callback_secret else None,
            callback_api_key=SecretStr(args.callback_api_key) if args.callback_api_key else None,
            step_s=args.step_s,
            duplicate_status=args.duplicate_status,
            seed=args.seed,
        )
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper())
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
