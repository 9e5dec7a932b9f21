"""The distribution ships every part under the one import root ``xueliang`` and nothing else, so
generic names (api, events, config, gateway) cannot clash with other installed packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from xueliang.gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_only_the_xueliang_root_and_the_config_files(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("xueliang_gateway-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"xueliang", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    assert "xueliang/config/gateway.yaml" in names
    for part in ("gateway", "api", "connectors/onvif", "inference", "events"):
        assert f"xueliang/{part}/__init__.py" in names
    assert not any(name.startswith("xueliang/__init__") for name in names), "xueliang must stay a namespace"


def test_generic_top_level_names_are_not_ours() -> None:
    names = "('api', 'events', 'config', 'gateway', 'inference')"
    code = f"import importlib.util as u; print([n for n in {names} if u.find_spec(n)])"
    found = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert found.stdout.strip() == "[]"


def test_compose_file_matches_the_settings_model() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    assert set(compose["services"]) == {"gateway", "redis"}
    gateway = compose["services"]["gateway"]
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    env = gateway["environment"]
    assert env["XUELIANG_NODE__MODE"] == "scaleout"
    assert env["XUELIANG_STORAGE__REDIS_URL"].startswith("redis://redis:")
    for key in env:
        assert key.startswith("XUELIANG_")
        path = key.removeprefix("XUELIANG_").lower().split("__")
        model: type = Settings
        for part in path:
            assert part in model.model_fields, f"{key}: no setting {'.'.join(path)}"
            annotation = model.model_fields[part].annotation
            model = annotation if isinstance(annotation, type) else object
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") == 2 and "USER xueliang" in dockerfile
