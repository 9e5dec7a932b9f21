"""The documented defaults file is the truth: it loads cleanly and equals the settings model's defaults,
so the documentation can never drift from the code."""

from __future__ import annotations

import yaml

from xueliang.gateway.settings import Settings, validating_for
from xueliang.gateway.settings_loading import default_config_text, load_settings


def test_shipped_defaults_equal_the_model_defaults_section_by_section() -> None:
    from_file = load_settings(environ={}, environment="development")
    documented = yaml.safe_load(default_config_text())
    for section in Settings.model_fields:
        assert section in documented, f"config/gateway.yaml does not document section {section!r}"
    with validating_for("development"):
        from_code = Settings.model_validate({"environment": "development"}).model_dump()
    shipped = from_file.model_dump()
    for section in Settings.model_fields:
        if section == "environment":
            continue
        assert shipped[section] == from_code[section], f"config/gateway.yaml section {section!r} differs from the code"
