"""Bad configuration gets a precise message: which key (dotted path), where it was given (file and
line, or the environment variable), what is wrong and what to do; the CLI prints it without a
traceback and exits 2. Each case here was accepted silently or crashed before (noted per test)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from cryptography.fernet import Fernet
from pydantic import BaseModel

from xueliang.gateway.errors import ConfigError, ConfigProblem
from xueliang.gateway.settings import Settings
from xueliang.gateway.settings_loading import load_settings

DEV = "environment: development\n"
REAL_SECRETS = {
    "XUELIANG_SECURITY__SECRET_KEY": "k" * 40,
    "XUELIANG_SECURITY__CAMERA_KEY": Fernet.generate_key().decode(),
    "XUELIANG_EVENTS__FORWARDER__SECRET": "f" * 24,
    "XUELIANG_EVENTS__CALLBACK__SECRET": "c" * 24,
}


def problems(text: str | bytes | None = None, tmp_path: Path | None = None, **environ: str) -> dict[str, ConfigProblem]:
    user_file = None
    if text is not None:
        assert tmp_path is not None
        user_file = tmp_path / "site.yaml"
        if isinstance(text, bytes):
            user_file.write_bytes(text)
        else:
            user_file.write_text(text, "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(user_file, environ=environ)
    return {p.key: p for p in caught.value.problems}


def test_misspelt_keys_name_the_line_and_the_nearest_valid_key(tmp_path: Path) -> None:
    # before: "Extra inputs are not permitted" with no line and no suggestion
    found = problems(DEV + "detector:\n  modle_path: x.onnx\nanalytics:\n  pipeline:\n    wrokers: 3\n", tmp_path)
    assert set(found) == {"detector.modle_path", "analytics.pipeline.wrokers"}
    assert "site.yaml, line 3" in found["detector.modle_path"].message
    assert "did you mean detector.model_path?" in found["detector.modle_path"].hint
    assert "site.yaml, line 6" in found["analytics.pipeline.wrokers"].message
    assert "did you mean analytics.pipeline.workers?" in found["analytics.pipeline.wrokers"].hint


def test_a_misspelt_key_from_the_environment_names_the_variable() -> None:
    # before: the key was named, not the variable it came from
    found = problems(XUELIANG_ENVIRONMENT="development", XUELIANG_HTTP__PROT="9000")
    assert "from XUELIANG_HTTP__PROT" in found["http.prot"].message
    assert "did you mean http.port?" in found["http.prot"].hint


def test_a_settings_variable_naming_no_section_is_refused_not_ignored() -> None:
    # before: both variables were silently ignored (the gateway ran on the default port, in production)
    found = problems(XUELIANG_ENVIRONMNET="development", XUELIANG_HTPP__PORT="9000")
    assert set(found) == {"XUELIANG_ENVIRONMNET", "XUELIANG_HTPP__PORT"}
    assert "did you mean XUELIANG_ENVIRONMENT?" in found["XUELIANG_ENVIRONMNET"].hint
    assert "ignored" in found["XUELIANG_HTPP__PORT"].message
    # other tools' variables with the prefix stay allowed
    settings = load_settings(environ={"XUELIANG_ENVIRONMENT": "development", "XUELIANG_SIM_PASSWORD": "x"})
    assert settings.environment == "development"


def test_an_unparsable_json_variable_is_named_and_its_value_not_echoed() -> None:
    # before: pydantic_settings.SettingsError escaped (a traceback), naming only the field
    found = problems(XUELIANG_ENVIRONMENT="development", XUELIANG_SECURITY__ALLOWED_NETWORKS="10.0.0.0/8")
    problem = found["XUELIANG_SECURITY__ALLOWED_NETWORKS"]
    assert "JSON" in problem.message and '["10.0.0.0/8"]' in problem.hint


def test_duplicate_keys_are_refused_with_both_lines(tmp_path: Path) -> None:
    # before: PyYAML kept the last value silently (port 2000, and a repeated section replaced the first)
    found = problems(DEV + "http:\n  port: 1000\n  port: 2000\n", tmp_path)
    assert found["line 4, column 3"].message == "not valid YAML: key 'port' given twice (first on line 3)"
    found = problems(DEV + "http:\n  port: 1000\nhttp:\n  host: 0.0.0.0\n", tmp_path)
    assert "key 'http' given twice (first on line 2)" in found["line 4, column 1"].message


@pytest.mark.parametrize(
    "content", [b"\x00\x01\x02\xff\xfe", "environment: development\n".encode("utf-16")], ids=["binary", "utf-16"]
)
def test_a_binary_or_non_utf8_file_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    # before: UnicodeDecodeError escaped
    found = problems(content, tmp_path)
    assert "not UTF-8 text" in found["(file)"].message and "UTF-8" in found["(file)"].hint


def test_a_non_text_section_name_is_refused(tmp_path: Path) -> None:
    # before: TypeError("keywords must be strings") escaped from pydantic-settings
    found = problems(DEV + "1: x\n", tmp_path)
    assert found["1"].message == "a section name must be text"


def test_real_secrets_in_a_settings_file_are_refused_in_production(tmp_path: Path) -> None:
    # before: accepted; the house rule is secrets from the environment
    env = {k: v for k, v in REAL_SECRETS.items() if k != "XUELIANG_SECURITY__SECRET_KEY"}
    text = "security:\n  secret_key: " + "a" * 40 + "\nwall:\n  ice_servers:\n"
    text += "    - urls: ['turn:127.0.0.1:3478']\n      username: u\n      credential: turn-password\n"
    found = problems(text, tmp_path, **env)
    assert set(found) == {"security.secret_key", "wall.ice_servers.0.credential"}
    assert "line 2" in found["security.secret_key"].message
    assert "XUELIANG_SECURITY__SECRET_KEY" in found["security.secret_key"].hint
    assert "a" * 40 not in str(found) and "turn-password" not in str(found)
    # development accepts them (a lab's file), and placeholders in a file are not secrets
    site = tmp_path / "site.yaml"
    assert load_settings(site, environ={"XUELIANG_ENVIRONMENT": "development"}).http.port == 8080
    site.write_text("security:\n  secret_key: change-me\n")
    assert load_settings(site, environ=REAL_SECRETS).security.secret_key.get_secret_value() == "k" * 40


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("sources:\n  reconnect_initial_s: 50\n  reconnect_max_s: 10\n", "sources", "reconnect_max_s (10.0) must be"),
        (
            "analytics:\n  scheduler:\n    min_interval_s: 5000\n    floor_s: 100\n",
            "analytics.scheduler",
            "floor_s (100.0) must be >= min_interval_s",
        ),
        ("events:\n  forwarder:\n    intake_url: intake.local:9100\n", "events.forwarder.intake_url", "http://"),
        ("events:\n  forwarder:\n    ca_bundle: /nope/ca.pem\n", "events.forwarder.ca_bundle", "no such file"),
        ("events:\n  tables:\n    grading: /nope/grading.yaml\n", "events.tables.grading", "no such file"),
        ("demo:\n  enabled: true\n  video: /nope/footage.avi\n", "demo.video", "no such file"),
    ],
    ids=["source-backoff", "scheduler-floor", "intake-url", "forwarder-ca", "grading-table", "demo-video"],
)
def test_contradictions_and_missing_files_are_refused_at_load(tmp_path: Path, text: str, key: str, words: str) -> None:
    # before: all accepted at load; the missing files failed only at start (a raw FileNotFoundError for
    # the forwarder's CA), the bad intake URL at every delivery attempt
    found = problems(DEV + text, tmp_path)
    assert set(found) == {key}
    assert words in found[key].message and "site.yaml, line" in found[key].message


def test_infinite_and_nan_numbers_are_refused_with_key_and_line(tmp_path: Path) -> None:
    # before: `.inf` was accepted where a field has no upper bound (a retry delay cap of forever, a
    # patrol floor that never forces a visit); `.nan` compared false with every bound check
    text = (
        DEV
        + "events:\n  forwarder:\n    backoff_cap_s: .inf\n"  # line 4
        + "analytics:\n  scheduler:\n    floor_s: .Inf\n"  # line 7
        + "    priority_intervals_s: {1: .nan, 2: 180.0, 3: 300.0, 4: 600.0, 5: 900.0}\n"  # line 8
        + "sources:\n  reconnect_jitter: .NaN\n"  # line 10
    )
    found = problems(text, tmp_path)
    expected = {
        "events.forwarder.backoff_cap_s": 4,
        "analytics.scheduler.floor_s": 7,
        "analytics.scheduler.priority_intervals_s.1": 8,
        "sources.reconnect_jitter": 10,
    }
    assert set(found) == set(expected)
    for key, line in expected.items():
        assert "finite number" in found[key].message, found[key]
        assert f"site.yaml, line {line}" in found[key].message, found[key]


def test_an_infinite_number_from_the_environment_names_the_variable() -> None:
    found = problems(XUELIANG_ENVIRONMENT="development", XUELIANG_EVENTS__FORWARDER__BACKOFF_CAP_S="inf")
    assert set(found) == {"events.forwarder.backoff_cap_s"}
    problem = found["events.forwarder.backoff_cap_s"]
    assert "finite number" in problem.message and "from XUELIANG_EVENTS__FORWARDER__BACKOFF_CAP_S" in problem.message


def _models_under(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    yield model
    for field in model.model_fields.values():
        pending: list[Any] = [field.annotation]
        while pending:
            kind = pending.pop()
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                yield from _models_under(kind)
            pending.extend(get_args(kind))


def test_every_settings_section_refuses_non_finite_numbers() -> None:
    # pydantic's config is per model, not inherited by nested sections: a section added without
    # allow_inf_nan=False would accept `.inf` again
    models = set(_models_under(Settings))
    assert len(models) > 20  # the walk reaches the nested sections of every part
    lax = {f"{m.__module__}.{m.__qualname__}" for m in models if m.model_config.get("allow_inf_nan", True)}
    assert not lax, sorted(lax)


def test_the_cli_prints_env_and_file_problems_without_a_traceback(tmp_path: Path) -> None:
    # before: the bad JSON variable and the binary file ended in a traceback (exit 1)
    binary = tmp_path / "site.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XUELIANG_")}
    command = [sys.executable, "-m", "xueliang.gateway", "config", "check"]
    result = subprocess.run([*command, str(binary)], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "not UTF-8 text" in result.stderr
    env["XUELIANG_SECURITY__ALLOWED_NETWORKS"] = "10.0.0.0/8"
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "XUELIANG_SECURITY__ALLOWED_NETWORKS" in result.stderr
