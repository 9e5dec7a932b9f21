"""The ``xueliang`` command line. ``main`` turns the gateway's errors into readable messages and
non-zero exits; no user mistake ends in a traceback."""

from __future__ import annotations

import sys

from rich.console import Console

from xueliang.gateway.cli.app import app
from xueliang.gateway.errors import ConfigError, GatewayError

__all__ = ["app", "main"]


def main() -> None:
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
    except GatewayError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
