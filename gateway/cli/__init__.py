"""The ``xueliang`` command line. ``main`` turns the gateway's errors into readable messages and
exit codes (0 done, 1 the work failed, 2 usage, configuration or stores that cannot be opened, 130
interrupted); no user mistake ends in a traceback, nor does a terminal that cannot show Chinese."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from xueliang.gateway import logs
from xueliang.gateway.cli.app import app
from xueliang.gateway.cli.console import err
from xueliang.gateway.errors import ConfigError, GatewayError, StoreUnavailable
from xueliang.gateway.security import DEV_SECRETS_FILE
from xueliang.gateway.settings import NodeSettings

__all__ = ["app", "main"]

#: where the demo keeps the secrets it generated (development mode, the default data_dir)
DEMO_SECRETS = (NodeSettings.model_fields["data_dir"].default / DEV_SECRETS_FILE).as_posix()


def _tolerant_streams() -> None:
    """A terminal whose locale cannot encode Chinese (LANG=C, an ASCII serial console) shows it as
    ``\\uXXXX`` instead of ending the command with ``UnicodeEncodeError``."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def _managing_demo_data() -> bool:
    """A ``users`` or ``cameras`` command run beside the demo's data: likely meant for the demo.
    Never said to ``run`` or ``config``: development mode is what lets placeholder secrets through."""
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "")
    return command in {"users", "cameras"} and Path(DEMO_SECRETS).is_file()


def main() -> None:
    _tolerant_streams()
    # Commands print their own results; the log says only what goes wrong (a library imported on the
    # way sets the root logger to INFO). ``run`` and ``demo`` configure logging from the settings.
    logs.configure("WARNING")
    try:
        app()
    except ConfigError as exc:
        err.print(f"[bold red]configuration error[/] in {exc.source}:")
        for problem in exc.problems:
            err.print(
                f"  [red]✗[/] [bold]{problem.key}[/]: {problem.message}"
                + (f"\n      fix: {problem.hint}" if problem.hint else "")
            )
        if _managing_demo_data() and any("placeholder secret" in p.message for p in exc.problems):
            err.print(
                f"  note: {DEMO_SECRETS} is the demo's (`make run`, development mode); only to manage the "
                "demo's own users and cameras, run this command with XUELIANG_ENVIRONMENT=development"
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
