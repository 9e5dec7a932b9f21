"""Waiting in tests for a condition that a thread or another task makes true (a bound, not a figure)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest


async def until(condition: Callable[[], bool], what: str, limit: float = 20.0) -> None:
    """Wait for ``condition`` (polling); fail with ``what`` if it does not come within ``limit`` s."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        await asyncio.sleep(0.05)
