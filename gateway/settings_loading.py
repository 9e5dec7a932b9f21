"""Loading the gateway's settings (``xueliang.gateway.settings.Settings``) and reporting what is wrong.

Sources, later ones winning: ``config/gateway.yaml`` (the documented defaults, shipped in the
package), an optional user file (``--config FILE`` or ``XUELIANG_CONFIG``), then environment
variables ``XUELIANG_<SECTION>__<KEY>`` (e.g. ``XUELIANG_HTTP__PORT=9000``).

Refused at load, as one ``ConfigError`` listing every problem: a YAML key given twice, a file that
is not UTF-8 text, an ``XUELIANG_`` variable naming no setting or holding unparsable JSON, a real
secret in a settings file in production (secrets come from the environment), and whatever the model
refuses. Each problem names its key path and where it was given (the file and line, or the
variable); an unknown key gets a 'did you mean'.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib.resources
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings import EnvSettingsSource, SettingsError

from xueliang.gateway.errors import ConfigError, ConfigProblem
from xueliang.gateway.settings import ENV_PREFIX, Environment, Settings, is_placeholder, validating_for
from xueliang.gateway.validation_messages import readable


def default_config_text() -> str:
    return importlib.resources.files("xueliang.config").joinpath("gateway.yaml").read_text("utf-8")


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error instead of the
    last one silently winning."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            with contextlib.suppress(TypeError):  # an unhashable key is refused by the base class
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} given twice (first on line {seen[key]})", key_node.start_mark
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "(file)"
        what = getattr(exc, "problem", None) or str(exc)
        hint = "keep one of them" if "given twice" in what else "fix the syntax"
        raise ConfigError(source, [ConfigProblem(where, f"not valid YAML: {what}", hint)]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(source, [ConfigProblem("(top)", "must be a mapping of sections", "see config/gateway.yaml")])
    if bad := [key for key in data if not isinstance(key, str)]:
        problems = [
            ConfigProblem(repr(key), "a section name must be text", "see config/gateway.yaml for the sections")
            for key in bad
        ]
        raise ConfigError(source, problems)
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _hint(error_type: str, key: str) -> str:
    if error_type == "extra_forbidden":
        return "remove it or correct its spelling; `xueliang config show` prints the valid keys"
    if error_type == "missing":
        return "add this key"
    if _is_secret(key):
        return "set it in the environment, never in a file under version control"
    return "see config/gateway.yaml for the documented default and type"


# A section-level validator names the exact key inside its section as "sub.key: message".
_INTERNAL_LOC = re.compile(r"[\[(]")  # e.g. "lax-or-strict[...]", "function-after[...]"
_NESTED_KEY = re.compile(r"^([a-z_][a-z0-9_.]*): (.*)$", re.DOTALL)


def _is_secret(key: str) -> bool:
    """Settings whose values are never echoed in a message."""
    leaf = key.rsplit(".", 1)[-1]
    return "secret" in leaf or leaf.endswith("key") or "password" in leaf or "credential" in leaf


def problems_from(error: ValidationError) -> list[ConfigProblem]:
    """One problem per key path: pydantic's internal validator names are dropped from the path, and
    the alternatives of a union (an IPv4 or an IPv6 network) are said in one message."""
    problems: dict[str, ConfigProblem] = {}
    for item in error.errors(include_url=False):
        parts = [str(part) for part in item["loc"] if not _INTERNAL_LOC.search(str(part))]
        where = ".".join(parts) or "(top)"
        message = readable(item["msg"])
        # a section-level validator may name several keys inside its section, one "sub.key: message" a line
        lines = message.split("\n")
        if item["type"] != "value_error" or not all(_NESTED_KEY.match(line) for line in lines):
            lines = [message]
        for line in lines:
            key, text = where, line
            if item["type"] == "value_error" and (nested := _NESTED_KEY.match(line)):
                inner = nested.group(1)
                key, text = (inner if where == "(top)" else f"{where}.{inner}"), nested.group(2)
            scalar = isinstance(item["input"], str | int | float | bool)
            if item["type"] not in ("extra_forbidden", "missing") and scalar and not _is_secret(key):
                text = f"{text} (got {item['input']!r})"
            if key in problems:
                known = problems[key]
                problems[key] = ConfigProblem(key, f"{known.message}; or: {text}", known.hint)
            else:
                problems[key] = ConfigProblem(key, text, _hint(item["type"], key))
    return list(problems.values())


@dataclasses.dataclass
class _Raw:
    """The merged raw values, the sources they came from, the user file as read, and the environment."""

    merged: dict[str, Any]
    source: str
    file: Path | None
    text: str
    data: dict[str, Any]
    environ: Mapping[str, str]


def _read_sources(user_file: Path | None, environ: Mapping[str, str] | None) -> _Raw:
    sources = ["config/gateway.yaml (defaults)"]
    merged = _read_yaml(default_config_text(), "config/gateway.yaml")
    if user_file is None and (env_file := (environ or os.environ).get(f"{ENV_PREFIX}CONFIG")):
        user_file = Path(env_file)
    text, data = "", {}
    if user_file is not None:
        try:
            text = user_file.read_text("utf-8-sig")
        except OSError as exc:
            problem = ConfigProblem("(file)", f"cannot read: {exc.strerror}", "check the path")
            raise ConfigError(str(user_file), [problem]) from exc
        except UnicodeDecodeError as exc:
            problem = ConfigProblem(
                "(file)",
                f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}): a binary file?",
                "give a YAML text file saved as UTF-8",
            )
            raise ConfigError(str(user_file), [problem]) from exc
        data = _read_yaml(text, str(user_file))
        merged = _merge(merged, data)
        sources.append(str(user_file))
    env_values = _env_values(environ)
    if env_values:
        sources.append("environment")
    env = os.environ if environ is None else environ
    return _Raw(_merge(merged, env_values), ", ".join(sources), user_file, text, data, env)


def raw_settings(user_file: Path | None = None, environ: Mapping[str, str] | None = None) -> tuple[dict[str, Any], str]:
    """The merged raw values of every source, and a description of the sources."""
    raw = _read_sources(user_file, environ)
    return raw.merged, raw.source


class _EnvSource(EnvSettingsSource):
    """pydantic-settings' environment parsing, over a given mapping instead of ``os.environ``."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(Settings, env_prefix=ENV_PREFIX, env_nested_delimiter="__")

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): value for key, value in self._environ.items()}


# Variables with the prefix that are not settings: XUELIANG_CONFIG names the user file; other tools of
# the project (the reference intake, the camera simulator) read their own XUELIANG_* variables.
_NOT_SETTINGS = ("config",)


def _env_values(environ: Mapping[str, str] | None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    ours = {name: value for name, value in environ.items() if name.upper().startswith(ENV_PREFIX)}
    problems = _unknown_env(ours)
    try:
        values = dict(_EnvSource(ours)())
    except SettingsError:
        values = {}
        problems += _unparsable_env(ours)
    if problems:
        raise ConfigError("environment", problems)
    return values


def _unknown_env(ours: Mapping[str, str]) -> list[ConfigProblem]:
    """A settings variable naming no section (``XUELIANG_HTPP__PORT``, ``XUELIANG_ENVIRONMNET``) would be
    ignored silently; a variable of another tool (no ``__``, not close to a setting) is left alone."""
    problems = []
    for name in ours:
        rest = name.upper().removeprefix(ENV_PREFIX).lower()
        head = rest.split("__", 1)[0]
        if head in Settings.model_fields or rest in _NOT_SETTINGS:
            continue
        close = difflib.get_close_matches(head, [*Settings.model_fields, *_NOT_SETTINGS], n=1, cutoff=0.8)
        if "__" in rest or close:
            hint = (
                f"did you mean {ENV_PREFIX}{close[0].upper()}?" if close else "see config/gateway.yaml for the sections"
            )
            problems.append(ConfigProblem(name.upper(), f"no setting {head!r}: this variable would be ignored", hint))
    return problems


def _unparsable_env(ours: Mapping[str, str]) -> list[ConfigProblem]:
    """Which variables pydantic-settings could not parse (it names only the field); values never echoed."""
    problems = []
    for name, value in ours.items():
        try:
            _EnvSource({name: value})()
        except SettingsError:
            problems.append(
                ConfigProblem(
                    name.upper(),
                    "not valid JSON: a list or mapping setting is given as JSON",
                    "e.g. XUELIANG_SECURITY__ALLOWED_NETWORKS='[\"10.0.0.0/8\"]', or set the keys one by one "
                    "(XUELIANG_HTTP__PORT=9000)",
                )
            )
    return problems


# Secrets come from the environment (house rule); a real one in a settings file is refused in production.
_SECRET_KEYS = (
    ("security", "secret_key"),
    ("security", "camera_key"),
    ("events", "forwarder", "secret"),
    ("events", "callback", "secret"),
)


def _secrets_in_file(raw: _Raw) -> list[ConfigProblem]:
    def given(value: Any) -> bool:
        return value is not None and not is_placeholder(str(value))

    problems = []
    for parts in _SECRET_KEYS:
        value: Any = raw.data
        for part in parts:
            value = value.get(part) if isinstance(value, dict) else None
        if given(value):
            env = ENV_PREFIX + "__".join(parts).upper()
            problems.append(
                ConfigProblem(
                    ".".join(parts),
                    f"a secret in a settings file is refused in production mode{_where(raw, [*parts])}",
                    f"remove it from the file and set {env} in the environment",
                )
            )
    wall = raw.data.get("wall")
    servers = wall.get("ice_servers") if isinstance(wall, dict) else None
    for index, server in enumerate(servers if isinstance(servers, list) else []):
        if isinstance(server, dict) and given(server.get("credential")):
            path = ["wall", "ice_servers", str(index), "credential"]
            problems.append(
                ConfigProblem(
                    ".".join(path),
                    f"a secret in a settings file is refused in production mode{_where(raw, path)}",
                    f"remove the ice_servers from the file and set {ENV_PREFIX}WALL__ICE_SERVERS (JSON) in the "
                    "environment",
                )
            )
    return problems


def _keys_beside(parts: list[str]) -> list[str]:
    """The valid keys of the mapping holding the key path ``parts`` (empty where not a model)."""
    kind: Any = Settings
    for part in parts[:-1]:
        if get_origin(kind) in (dict, list):
            kind = get_args(kind)[-1]
        elif isinstance(kind, type) and issubclass(kind, BaseModel) and part in kind.model_fields:
            kind = kind.model_fields[part].annotation
        else:
            return []
        options = [arg for arg in get_args(kind) if arg is not type(None)]
        if get_origin(kind) not in (dict, list) and len(options) == 1:  # X | None
            kind = options[0]
    return list(kind.model_fields) if isinstance(kind, type) and issubclass(kind, BaseModel) else []


def _line_of(text: str, parts: list[str]) -> int | None:
    """The line of the key path ``parts`` in a YAML text, if it is there."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for part in parts:
        if isinstance(node, yaml.MappingNode):
            found = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part]
            if not found:
                return None
            line, node = found[-1][0].start_mark.line + 1, found[-1][1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            return None
    return line


def _where(raw: _Raw, parts: list[str]) -> str:
    """Where a key was given: `` (site.yaml, line 3)`` or `` (from XUELIANG_HTTP__PROT)``."""
    env = ENV_PREFIX + "__".join(parts).upper()
    if any(name.upper() == env for name in raw.environ):
        return f" (from {env})"
    if raw.file is not None and (line := _line_of(raw.text, parts)) is not None:
        return f" ({raw.file}, line {line})"
    return ""


def _located(problem: ConfigProblem, raw: _Raw) -> ConfigProblem:
    parts = problem.key.split(".")
    hint = problem.hint
    if problem.message.startswith("Extra inputs are not permitted"):
        close = difflib.get_close_matches(parts[-1], _keys_beside(parts), n=1, cutoff=0.6)
        if close:
            hint = f"did you mean {'.'.join([*parts[:-1], close[0]])}? {hint}"
    return ConfigProblem(problem.key, problem.message + _where(raw, parts), hint)


def load_settings(
    user_file: Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Load and validate; raises ``ConfigError`` listing every problem with its key path (and where it was
    given: the file and line, or the environment variable)."""
    raw = _read_sources(user_file, environ)
    merged = _merge(raw.merged, overrides)
    environment = str(merged.get("environment", Environment.PRODUCTION))
    problems = _secrets_in_file(raw) if environment != Environment.DEVELOPMENT else []
    with validating_for(environment):
        try:
            settings = Settings.model_validate(merged)
        except ValidationError as exc:
            problems += [_located(problem, raw) for problem in problems_from(exc)]
    if problems:
        raise ConfigError(raw.source, problems)
    return settings
