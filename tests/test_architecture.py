"""The import rules of the design card, checked on the source: dependencies point one way."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# part -> parts of ours it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "connectors": set(),
    "inference": set(),
    "events": {"inference"},
    "gateway": {"connectors", "inference", "events"},
    "api": {"gateway", "connectors", "inference", "events"},
}
# The process runner starts the HTTP app: the one place the gateway reaches up into the API.
EXCEPTIONS = {("gateway/serve.py", "api")}


def imported_parts(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name.split(".")[1] for name in names if name.startswith("xueliang.") and name.count(".") >= 1}


def test_parts_import_only_what_the_design_card_allows() -> None:
    violations = []
    for part, allowed in ALLOWED.items():
        for path in sorted((ROOT / part).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for other in imported_parts(path) - allowed - {part, "config"}:
                if (relative, other) not in EXCEPTIONS:
                    violations.append(f"{relative} imports xueliang.{other}")
    assert violations == []


def test_nothing_imports_tests_or_benchmarks() -> None:
    offenders = []
    for part in ALLOWED:
        for path in (ROOT / part).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "from tests" in text or "import tests" in text or "from benchmarks" in text:
                offenders.append(path.relative_to(ROOT).as_posix())
    assert offenders == []


def test_no_asyncio_wait_for_in_the_product() -> None:
    """``asyncio.wait_for`` on Python 3.11 loses a cancellation that arrives as the awaited thing
    completes; in a service loop that is a node that never stops. ``async with asyncio.timeout()``
    does not lose it."""
    offenders = []
    for part in ALLOWED:
        for path in sorted((ROOT / part).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr == "wait_for"
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "asyncio"
                ):
                    offenders.append(f"{path.relative_to(ROOT).as_posix()}:{node.lineno}")
    assert offenders == []
