"""When a test runs far longer than any should, the stacks of its event loop's tasks go to stderr.

pytest-timeout shows only the main thread, which in an async test is the event loop's ``select``:
it says that something hangs, not what. This says which task waits where, in the failing test's
captured output. It patches ``run_forever`` to know the running loops; nothing else changes.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import io
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

REPORT_AFTER_S = 120.0  # well past every test's normal run; pytest-timeout ends it at 300 s

_loops: list[asyncio.AbstractEventLoop] = []
_run_forever = asyncio.base_events.BaseEventLoop.run_forever


def _tracked_run_forever(self: asyncio.base_events.BaseEventLoop) -> None:
    _loops.append(self)
    try:
        _run_forever(self)
    finally:
        _loops.remove(self)


asyncio.base_events.BaseEventLoop.run_forever = _tracked_run_forever  # type: ignore[method-assign]


def _report(loop: asyncio.AbstractEventLoop, test: str) -> None:
    out = io.StringIO()
    print(f"\n===== {test}: still running after {REPORT_AFTER_S:g} s; its tasks:", file=out)
    for task in asyncio.all_tasks(loop):
        print(f"--- {task!r}", file=out)
        task.print_stack(limit=20, file=out)
    sys.stderr.write(out.getvalue())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[Any]:
    done = threading.Event()

    def watch() -> None:
        if not done.wait(REPORT_AFTER_S):
            for loop in list(_loops):
                loop.call_soon_threadsafe(_report, loop, item.nodeid)

    threading.Thread(target=watch, name="hang-report", daemon=True).start()
    try:
        yield
    finally:
        done.set()
