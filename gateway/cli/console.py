"""Where the commands print, and their tables.

A table never cuts a value: ids, addresses and URIs are what a technician copies into the next
command, so a narrow terminal wraps them inside their cell instead of ending them with "…", and
output into a pipe or a file (no terminal to fit) is as wide as its longest row.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Column, Table

#: the width of output that goes into a pipe or a file: wide enough for any row
PIPE_WIDTH = 1000


def _console(stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else PIPE_WIDTH)


out = _console(stderr=False)
err = _console(stderr=True)


def table(*headers: str, title: str | None = None) -> Table:
    """A table whose cells wrap (fold) rather than being cut short."""
    return Table(*(Column(header, overflow="fold") for header in headers), title=title)
