"""Commands: run, demo, config (check/show/gen-key), users (add/list/disable/enable/keys/revoke-key), version."""

from __future__ import annotations

import asyncio
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer
from cryptography.fernet import Fernet

from xueliang.gateway import __version__
from xueliang.gateway.cli.cameras import cameras_app
from xueliang.gateway.cli.console import out, table
from xueliang.gateway.cli.options import ConfigOption, settings_from
from xueliang.gateway.settings_loading import default_config_text

app = typer.Typer(
    help="Xueliang Gateway (雪亮网关): cameras over ONVIF, patrol analytics, cases, live walls.",
    epilog="Exit codes: 0 done; 1 the work failed (rows or cameras failed, unknown user or key); "
    "2 usage or setup error (bad option, configuration, data_dir or Redis cannot be opened); 130 interrupted.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Check and show the configuration.", no_args_is_help=True)
users_app = typer.Typer(help="Manage the people (and roles) who may use the gateway.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(users_app, name="users")
app.add_typer(cameras_app, name="cameras")


@app.command()
def version() -> None:
    """Print the gateway's version."""
    out.print(f"xueliang-gateway {__version__}")


@app.command()
def run(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Listen address (overrides http.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (overrides http.port).")] = None,
) -> None:
    """Start the gateway (API, stores and services) until Ctrl-C."""
    overrides: dict[str, object] = {}
    if host or port:
        overrides["http"] = {k: v for k, v in (("host", host), ("port", port)) if v}
    from xueliang.gateway.serve import serve

    serve(settings_from(config, **overrides))


@app.command()
def demo(
    config: ConfigOption = None,
    port: Annotated[int | None, typer.Option(help="Listen port (overrides http.port).")] = None,
) -> None:
    """Start the gateway in development mode with the demo: simulated cameras, footage, intake."""
    overrides: dict[str, object] = {"environment": "development", "demo": {"enabled": True}}
    if port:
        overrides["http"] = {"port": port}
    from xueliang.gateway.serve import serve

    serve(settings_from(config, **overrides))


@config_app.command("check")
def config_check(
    file: Annotated[
        Path | None, typer.Argument(help="Settings file to check (default: defaults + environment).")
    ] = None,
) -> None:
    """Validate a settings file with the defaults and environment; list every problem with its key path."""
    settings = settings_from(file)
    out.print(f"[green]✓[/] configuration valid ({settings.environment.value}, {settings.node.mode} mode)")


@config_app.command("show")
def config_show(
    defaults: Annotated[bool, typer.Option("--defaults", help="Print the documented defaults file instead.")] = False,
    config: ConfigOption = None,
) -> None:
    """Print the effective settings (secrets masked), or the documented defaults."""
    if defaults:
        sys.stdout.write(default_config_text())
        return
    settings = settings_from(config)
    out.print_json(settings.model_dump_json(indent=2))


@config_app.command("gen-key")
def config_gen_key() -> None:
    """Print fresh secrets (as environment assignments) for every secret setting."""
    sys.stdout.write(f"XUELIANG_SECURITY__SECRET_KEY={secrets.token_urlsafe(48)}\n")
    sys.stdout.write(f"XUELIANG_SECURITY__CAMERA_KEY={Fernet.generate_key().decode()}\n")
    sys.stdout.write(f"XUELIANG_EVENTS__FORWARDER__SECRET={secrets.token_urlsafe(32)}\n")
    sys.stdout.write(f"XUELIANG_EVENTS__CALLBACK__SECRET={secrets.token_urlsafe(32)}\n")


UserArgument = Annotated[str, typer.Argument(help="Login name of the user (see `xueliang users list`).")]


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Login name (2-64 letters, digits, _ . -).")],
    role: Annotated[str, typer.Option(help="admin, technician or operator.")] = "operator",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    config: ConfigOption = None,
) -> None:
    """Add a user. Without --password-stdin a random password is generated and printed once."""
    from xueliang.gateway.cli import users

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    created = asyncio.run(users.add(settings_from(config), username, role, password))
    out.print(f"[green]✓[/] user [bold]{username}[/] added as {role}")
    if password is None:
        out.print(f"  password (shown once): [bold]{created}[/]")


@users_app.command("list")
def users_list(config: ConfigOption = None) -> None:
    """List users with their roles and state."""
    from xueliang.gateway.cli import users

    rows = table("username", "role", "state", "created")
    for user in asyncio.run(users.list_all(settings_from(config))):
        rows.add_row(
            user.username,
            user.role.value,
            "disabled" if user.disabled else "active",
            f"{user.created_at:%Y-%m-%d %H:%M}",
        )
    out.print(rows)


@users_app.command("disable")
def users_disable(username: UserArgument, config: ConfigOption = None) -> None:
    """Disable a user: their tokens stop working at once."""
    from xueliang.gateway.cli import users

    asyncio.run(users.set_disabled(settings_from(config), username, disabled=True))
    out.print(f"[green]✓[/] user [bold]{username}[/] disabled")


@users_app.command("enable")
def users_enable(username: UserArgument, config: ConfigOption = None) -> None:
    """Enable a disabled user again."""
    from xueliang.gateway.cli import users

    asyncio.run(users.set_disabled(settings_from(config), username, disabled=False))
    out.print(f"[green]✓[/] user [bold]{username}[/] enabled")


@users_app.command("keys")
def users_keys(config: ConfigOption = None) -> None:
    """List the API keys of machine clients (ids, names, roles, state; never the keys)."""
    from xueliang.gateway.cli import users

    rows = table("key id", "name", "role", "state", "created")
    for key in asyncio.run(users.list_keys(settings_from(config))):
        state = "revoked" if key.revoked else "disabled" if key.disabled else "active"
        rows.add_row(key.key_id, key.name, key.role.value, state, f"{key.created_at:%Y-%m-%d %H:%M}")
    out.print(rows)


@users_app.command("revoke-key")
def users_revoke_key(
    key_id: Annotated[str, typer.Argument(help="The API key's id (the part after xlk_; see `users keys`).")],
    config: ConfigOption = None,
) -> None:
    """Revoke an API key for good: it is refused at once and cannot be enabled again."""
    from xueliang.gateway.cli import users

    asyncio.run(users.revoke_key(settings_from(config), key_id))
    out.print(f"[green]✓[/] API key [bold]{key_id}[/] revoked")


__all__ = ["app"]
