"""The ``xueliang`` command line. ``main`` turns the gateway's errors into readable messages and
exit codes (0 done, 1 the work failed, 2 usage, configuration or stores that cannot be opened, 130
interrupted); no user mistake ends in a traceback, nor does a terminal that cannot show Chinese."""

from __future__ import annotations

import io
import sys

from rich.console import Console

from xueliang.gateway import logs
from xueliang.gateway.cli.app import app
from xueliang.gateway.errors import ConfigError, GatewayError, StoreUnavailable

__all__ = ["app", "main"]


def _tolerant_streams() -> None:
    """A terminal whose locale cannot encode Chinese (LANG=C, an ASCII serial console) shows it as
    ``\\uXXXX`` instead of ending the command with ``UnicodeEncodeError``."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def main() -> None:
    _tolerant_streams()
    # Commands print their own results; the log says only what goes wrong (a library imported on the
    # way sets the root logger to INFO). ``run`` and ``demo`` configure logging from the settings.
    logs.configure("WARNING")
    err = Console(stderr=True)
    try:
        app()
    except ConfigError as exc:
        err.print(f"[bold red]configuration error[/] in {exc.source}:")
        for problem in exc.problems:
            err.print(
                f"  [red]✗[/] [bold]{problem.key}[/]: {problem.message}"
                + (f"\n      fix: {problem.hint}" if problem.hint else "")
            )
        sys.exit(2)
    except StoreUnavailable as exc:  # nothing was done: the data_dir or Redis must be fixed first
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)
    except GatewayError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("已中断 interrupted")
        sys.exit(130)
