"""Waiting in tests for a condition another task or thread makes true (a liveness bound, not a figure)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` when it never gets there (a liveness bound)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout_s:.0f} s waiting for: {what}")
        await asyncio.sleep(0.05)
