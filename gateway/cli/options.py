"""What every ``xueliang`` command shares: the ``--config`` option, loading the settings it names,
and the actor the command's audit entries name."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from xueliang.gateway.errors import ConfigError, ConfigProblem
from xueliang.gateway.settings import Settings
from xueliang.gateway.settings_loading import load_settings

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings file (YAML) over the defaults; also XUELIANG_CONFIG."),
]


def settings_from(config: Path | None, **overrides: object) -> Settings:
    if config is not None and not config.exists():
        raise ConfigError(str(config), [ConfigProblem("(file)", "no such file", "check the path")])
    if config is not None and config.is_dir():
        raise ConfigError(str(config), [ConfigProblem("(file)", "is a directory", "name the YAML file in it")])
    return load_settings(config, environ=None, **overrides)


def actor() -> str:
    """Who a command's audit entries name: ``cli:<login>``."""
    return f"cli:{getpass.getuser()}"
