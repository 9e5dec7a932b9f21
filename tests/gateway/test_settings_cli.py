"""Settings loading and the CLI, run as a real subprocess (the console script)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from xueliang.gateway.errors import ConfigError
from xueliang.gateway.settings_loading import load_settings

XUELIANG = [sys.executable, "-m", "xueliang.gateway"]


def cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("XUELIANG_")}
    full_env.update(env or {})
    return subprocess.run(
        [*XUELIANG, *args], capture_output=True, text=True, env=full_env, input=stdin, timeout=60, check=False, cwd=cwd
    )


def test_config_check_names_typo_wrong_type_and_missing_secret(tmp_path: Path) -> None:
    bad = tmp_path / "gateway.yaml"
    bad.write_text("http:\n  prot: 9000\nstorage:\n  job_queue_capacity: lots\n")
    result = cli("config", "check", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    text = " ".join(result.stderr.split())
    assert "http.prot" in text and "Extra inputs are not permitted" in text
    assert "storage.job_queue_capacity" in text and "'lots'" in text
    assert "security.secret_key" in text and "placeholder secret refused" in text
    assert "fix:" in text


def test_config_check_names_every_missing_secret_in_one_pass() -> None:
    """Old code: the intake's callback secret was reported only once the forwarder's was set, so a
    technician fixed them one run at a time; and every message began with pydantic's "Value error, "."""
    result = cli("config", "check")
    assert result.returncode == 2
    text = " ".join(result.stderr.split())
    for key, variable in (
        ("security.secret_key", "XUELIANG_SECURITY__SECRET_KEY"),
        ("security.camera_key", "XUELIANG_SECURITY__CAMERA_KEY"),
        ("events.forwarder.secret", "XUELIANG_EVENTS__FORWARDER__SECRET"),
        ("events.callback.secret", "XUELIANG_EVENTS__CALLBACK__SECRET"),
    ):
        assert f"{key}: placeholder secret refused in production mode; set {variable}" in text
    assert "Value error" not in text


def test_a_command_beside_the_demos_data_says_how_to_reach_it(tmp_path: Path) -> None:
    """Old code: after `make run`, `xueliang users add` in the same folder failed on placeholder
    secrets with no word on why (the demo runs in development mode, the CLI in production)."""
    (tmp_path / "var").mkdir()
    plain = cli("users", "list", cwd=tmp_path)
    assert plain.returncode == 2 and "XUELIANG_ENVIRONMENT=development" not in " ".join(plain.stderr.split())
    (tmp_path / "var" / "dev-secrets.json").write_text("{}")
    beside = cli("users", "list", cwd=tmp_path)
    text = " ".join(beside.stderr.split())
    assert beside.returncode == 2 and "placeholder secret refused" in text
    assert "var/dev-secrets.json is the demo's" in text and "XUELIANG_ENVIRONMENT=development" in text
    for production in (("config", "check"), ("run",)):  # never advised where it would switch the guard off
        refused = cli(*production, cwd=tmp_path)
        assert refused.returncode == 2 and "XUELIANG_ENVIRONMENT=development" not in " ".join(refused.stderr.split())
    dev = cli("users", "list", cwd=tmp_path, env={"XUELIANG_ENVIRONMENT": "development"})
    assert dev.returncode == 0, dev.stderr


def test_tables_in_a_pipe_show_every_value_whole(tmp_path: Path) -> None:
    """Old code: into a pipe rich assumed 80 columns and cut a long user name (or a camera id, an
    address) with "…", so a script or a technician copying it got a wrong value."""
    env = {"XUELIANG_ENVIRONMENT": "development", "XUELIANG_NODE__DATA_DIR": str(tmp_path / "data")}
    name = "district-7.township-12.grid-0042.night-shift-operator.li"
    assert cli("users", "add", name, env=env).returncode == 0
    listed = cli("users", "list", env=env)
    assert listed.returncode == 0 and name in listed.stdout, listed.stdout


def test_config_check_passes_with_real_secrets_and_env_overrides(tmp_path: Path) -> None:
    keys = cli("config", "gen-key").stdout.split()
    env = dict(line.split("=", 1) for line in keys)
    env["XUELIANG_HTTP__PORT"] = "9100"
    result = cli("config", "check", env=env)
    assert result.returncode == 0, result.stderr
    assert "configuration valid (production" in result.stdout
    shown = cli("config", "show", env=env)
    assert '"port": 9100' in shown.stdout
    assert env["XUELIANG_SECURITY__SECRET_KEY"] not in shown.stdout


def test_missing_config_file_and_bad_yaml_are_readable(tmp_path: Path) -> None:
    missing = cli("config", "check", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("http: [unclosed\n")
    result = cli("config", "check", str(broken))
    assert result.returncode == 2 and "not valid YAML" in result.stderr and "Traceback" not in result.stderr


def test_every_command_has_help() -> None:
    """Walks the whole command tree, so a command added later is checked too."""
    import typer.main
    from typer.testing import CliRunner

    from xueliang.gateway.cli.app import app

    def tree(command: Any, prefix: list[str]) -> list[tuple[list[str], Any]]:  # a click (or typer-bundled) command
        found = [(prefix, command)]
        for name, sub in (getattr(command, "commands", None) or {}).items():
            found += tree(sub, [*prefix, name])
        return found

    commands = tree(typer.main.get_command(app), [])
    assert {("cameras", "import"), ("users", "revoke-key")} <= {tuple(path) for path, _ in commands}
    runner = CliRunner()
    for path, command in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output
        assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
    assert cli("--help").returncode == 0  # and the real console entry point answers too


def test_users_add_list_disable_through_the_cli(tmp_path: Path) -> None:
    env = {"XUELIANG_ENVIRONMENT": "development", "XUELIANG_NODE__DATA_DIR": str(tmp_path)}
    added = cli("users", "add", "wang.tech", "--role", "technician", env=env)
    assert added.returncode == 0, added.stderr
    assert "password (shown once)" in added.stdout
    with_pw = cli("users", "add", "li.op", "--role", "operator", "--password-stdin", env=env, stdin="a-long-password\n")
    assert with_pw.returncode == 0 and "shown once" not in with_pw.stdout
    duplicate = cli("users", "add", "li.op", env=env)
    assert duplicate.returncode == 1 and "li.op" in duplicate.stderr and "Traceback" not in duplicate.stderr
    bad_role = cli("users", "add", "zhao", "--role", "boss", env=env)
    assert bad_role.returncode == 2 and "unknown role 'boss'" in bad_role.stderr
    assert cli("users", "disable", "li.op", env=env).returncode == 0
    listed = cli("users", "list", env=env).stdout
    assert "wang.tech" in listed and "technician" in listed and "disabled" in listed
    unknown = cli("users", "disable", "nobody", env=env)
    assert unknown.returncode == 1 and "nobody" in unknown.stderr


def test_environment_variables_override_files_and_are_validated_too(tmp_path: Path) -> None:
    user_file = tmp_path / "site.yaml"
    user_file.write_text("environment: development\nhttp:\n  port: 9001\n")
    settings = load_settings(user_file, environ={"XUELIANG_HTTP__HOST": "0.0.0.0"})
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 9001)
    with pytest.raises(ConfigError) as caught:
        load_settings(user_file, environ={"XUELIANG_HTTP__PORT": "99999"})
    assert [p.key for p in caught.value.problems] == ["http.port"]


def test_union_errors_are_one_readable_problem_and_secrets_are_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            environ={},
            security={"secret_key": "k" * 40, "camera_key": "not-a-fernet-key", "allowed_networks": ["10.0.0.0/33"]},
            events={"forwarder": {"secret": "s" * 20}, "callback": {"secret": "c" * 20}},
        )
    problems = {p.key: p for p in caught.value.problems}
    assert set(problems) == {"security.allowed_networks.0", "security.camera_key"}
    network = problems["security.allowed_networks.0"].message
    assert "IPv4 network" in network and "IPv6 network" in network and "[" not in network.split("(got")[0]
    assert "not-a-fernet-key" not in str(caught.value) and "Fernet key" in problems["security.camera_key"].message
