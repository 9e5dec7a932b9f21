"""The configurable field mapping from a ``Case`` to the intake's schema (config/intake_mapping.yaml).

Each entry maps a target field (dotted: nested object) to a source: a dotted path into the case with
optional filters (``observed_at|iso``), a literal (``=text``) or a template (``{title_zh}（{code}）``).
The case's times are given in the local time zone (``events.timezone``), so ``|date`` is the local
date, the one the case code carries, and ``|iso`` shows the local offset.
``FieldMapping.load`` checks every entry against the ``Case`` schema and raises
``MappingTableError`` listing every problem; ``apply`` is then a plain walk.
"""

from __future__ import annotations

import enum
import importlib.resources
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel

from xueliang.events.codes import to_local
from xueliang.events.errors import MappingError, MappingTableError, TableProblem
from xueliang.events.models import Case

_TARGET = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.]+)\}")


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


FILTERS: dict[str, Callable[[Any], Any]] = {
    "iso": _iso,
    "date": lambda v: v.date().isoformat() if isinstance(v, datetime) else v,
    "epoch_ms": lambda v: int(v.timestamp() * 1000) if isinstance(v, datetime) else v,
    "str": lambda v: "" if v is None else str(_plain(v)),
    "int": lambda v: None if v is None else int(v),
    "float": lambda v: None if v is None else float(v),
    "upper": lambda v: str(_plain(v)).upper() if v is not None else None,
    "lower": lambda v: str(_plain(v)).lower() if v is not None else None,
}


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _schema_has(model: type[BaseModel], path: list[str]) -> bool:
    current: Any = model
    for part in path:
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return False
        annotation = fields[part].annotation
        nested = [
            a
            for a in getattr(annotation, "__args__", (annotation,))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        current = nested[0] if nested else annotation
    return True


def _lookup(case: Case, path: list[str], zone: ZoneInfo) -> Any:
    current: Any = case
    for part in path:
        if current is None:
            return None
        current = getattr(current, part)
    return to_local(current, zone) if isinstance(current, datetime) else current


@dataclass(frozen=True, slots=True)
class _Source:
    literal: str | None = None
    template: str | None = None
    path: tuple[str, ...] = ()
    filters: tuple[Callable[[Any], Any], ...] = ()

    def value(self, case: Case, zone: ZoneInfo) -> Any:
        if self.literal is not None:
            return self.literal
        if self.template is not None:
            return _PLACEHOLDER.sub(
                lambda m: str(_plain(_lookup(case, m.group(1).split("."), zone)) or ""), self.template
            )
        value = _lookup(case, list(self.path), zone)
        for apply in self.filters:
            value = apply(value)
        return _plain(value)


class FieldMapping:
    """Checked mapping; ``apply(case)`` gives the intake's JSON body."""

    def __init__(self, fields: dict[tuple[str, ...], _Source], source: str, timezone: str) -> None:
        self._fields = fields
        self.source = source
        self.zone = ZoneInfo(timezone)

    @classmethod
    def load(cls, path: Path | None = None, timezone: str = "Asia/Shanghai") -> FieldMapping:
        name = path.name if path is not None else "intake_mapping.yaml"
        try:
            if path is None:
                text = importlib.resources.files("xueliang.config").joinpath("intake_mapping.yaml").read_text("utf-8")
            else:
                text = path.read_text("utf-8-sig")
            data = yaml.safe_load(text)
        except OSError as exc:
            raise MappingTableError([TableProblem(name, "(file)", f"cannot read: {exc.strerror}")]) from exc
        except yaml.YAMLError as exc:
            raise MappingTableError([TableProblem(name, "(file)", f"not valid YAML: {exc}")]) from exc
        return cls.parse(data, name, timezone)

    @classmethod
    def parse(cls, data: Any, name: str, timezone: str = "Asia/Shanghai") -> FieldMapping:
        problems: list[TableProblem] = []
        if not isinstance(data, dict) or set(data) != {"fields"} or not isinstance(data["fields"], dict):
            raise MappingTableError(
                [TableProblem(name, "(top)", "must be a mapping with one key `fields` (target: source)")]
            )
        fields: dict[tuple[str, ...], _Source] = {}
        for target, spec in data["fields"].items():
            where = f"fields.{target}"
            if not isinstance(target, str) or not _TARGET.match(target):
                problems.append(TableProblem(name, where, "target must be a dotted name of letters, digits, _"))
                continue
            if not isinstance(spec, str) or not spec:
                problems.append(TableProblem(name, where, f"source must be a non-empty text, got {spec!r}"))
                continue
            parsed = _parse_source(spec, name, where, problems)
            if parsed is not None:
                fields[tuple(target.split("."))] = parsed
        targets = sorted(fields)
        for index, target in enumerate(targets[:-1]):
            following = targets[index + 1]
            if following[: len(target)] == target:
                problems.append(
                    TableProblem(
                        name,
                        f"fields.{'.'.join(following)}",
                        f"clashes with fields.{'.'.join(target)} (a value cannot also be an object)",
                    )
                )
        if problems:
            raise MappingTableError(problems)
        return cls(fields, name, timezone)

    def apply(self, case: Case) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for target, source in self._fields.items():
            try:
                value = source.value(case, self.zone)
            except (TypeError, ValueError) as exc:
                raise MappingError(f"case {case.code}: field {'.'.join(target)}: {exc}") from exc
            node = body
            for part in target[:-1]:
                node = node.setdefault(part, {})
            node[target[-1]] = value
        return body


def _parse_source(spec: str, name: str, where: str, problems: list[TableProblem]) -> _Source | None:
    if spec.startswith("="):
        return _Source(literal=spec[1:])
    if "{" in spec:
        bad = [p for p in _PLACEHOLDER.findall(spec) if not _schema_has(Case, p.split("."))]
        for path in bad:
            problems.append(TableProblem(name, where, f"template part {{{path}}} is not a field of the case"))
        return None if bad else _Source(template=spec)
    path, *filter_names = (part.strip() for part in spec.split("|"))
    ok = True
    if not _schema_has(Case, path.split(".")):
        problems.append(TableProblem(name, where, f"{path!r} is not a field of the case"))
        ok = False
    for filter_name in filter_names:
        if filter_name not in FILTERS:
            problems.append(TableProblem(name, where, f"unknown filter {filter_name!r} (known: {', '.join(FILTERS)})"))
            ok = False
    if not ok:
        return None
    return _Source(path=tuple(path.split(".")), filters=tuple(FILTERS[f] for f in filter_names))
